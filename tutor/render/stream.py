"""A run's updates as text, piece by piece, as fast as they are computed.

Printing each update's formula with SymPy costs milliseconds; a long run has
a million updates. :class:`RunText` prints each formula once, with a mark in
place of every symbol, and then fills the marks with each update's numbers:
the text is the one the printers of :mod:`tutor._mathtext` and
:mod:`tutor.render.latex` give for those numbers, at the cost of string
joins. The digits that make each substituted line check by hand are found for
a whole piece at once, in NumPy.

The closed form is shown once, above the updates (:meth:`RunText.header`);
each update shows its numbers substituted into it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from .._mathtext import checking_digits, minus, plain_name, unicode
from .._numbers import DIGITS, number, side_by_side
from ..model import Columns, Derivation, Partial, Update
from ..numeric import UnsupportedExpression, evaluate
from . import latex


class _Mark(float):
    """A number that prints as a mark: the printers put it where the symbol's value goes."""

    mark: str

    def __new__(cls, sign: float, mark: str) -> _Mark:
        made = super().__new__(cls, sign)
        made.mark = mark
        return made

    def __format__(self, spec: str) -> str:
        return self.mark


#: Marks are characters of Unicode's private use area, which no printer writes.
_FIRST_MARK = 0xE000


@dataclass(frozen=True)
class _Template:
    """A printed formula with a mark per symbol, split into text and symbol positions."""

    parts: tuple[str | int, ...]
    #: How a positive and a negative number look where a symbol stood: "N" is the number's
    #: text (without its sign when negative).
    positive: tuple[str, str]
    negative: tuple[str, str]

    def fill(self, numbers: Sequence[str], shape: Callable[[str], str] = str) -> str:
        """Return the formula with the i-th symbol shown as ``numbers[i]``, the text of
        each number without its sign written as the printer writes it (``shape``)."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = numbers[part]
            if text.startswith("-"):
                out += (self.negative[0], shape(text[1:]), self.negative[1])
            else:
                out += (self.positive[0], shape(text), self.positive[1])
        return "".join(out)


def _template(printer: Any, expr: sympy.Expr, names: Sequence[str]) -> _Template:
    """Return ``printer(expr, values)``'s text with marks for ``names``, split at them."""
    marks = {n: chr(_FIRST_MARK + i) for i, n in enumerate(names)}
    text = printer(expr, {n: _Mark(1.0, m) for n, m in marks.items()})
    index = {m: i for i, m in enumerate(marks.values())}
    parts: list[str | int] = []
    literal: list[str] = []
    for ch in text:
        if ch in index:
            parts += ["".join(literal), index[ch]]
            literal = []
        else:
            literal.append(ch)
    parts.append("".join(literal))
    probe = sympy.Symbol("probe", real=True)
    mark = chr(_FIRST_MARK)
    forms = []
    for sign, shown in ((1.0, mark), (-1.0, "-" + mark)):
        around = printer(probe, {"probe": _Mark(sign, shown)})
        before, _, after = around.partition(mark)
        forms.append((before, after))
    return _Template(tuple(p for p in parts if p != ""), forms[0], forms[1])


@dataclass(frozen=True)
class _PartialText:
    """What each update of one partial prints, prepared once."""

    symbol: str
    label: str
    latex_label: str
    closed: str
    closed_latex: str
    used: tuple[str, ...]
    plain: _Template | None
    tex: _Template | None
    latex_name: str
    #: With data rows: the names each row's gradient uses (data columns too) and its formula.
    row_used: tuple[str, ...] = ()
    row_plain: _Template | None = None


class RunText:
    """The lines of a run's updates, rendered a piece of columns at a time.

    >>> from tutor.problem import load
    >>> from tutor.derivation import derive
    >>> run = RunText(derive(load("seed-w")))
    >>> run.header()[1]
    '  ∂L/∂w = 2x(wx − y)'
    """

    def __init__(self, derivation: Derivation) -> None:
        self.derivation = derivation
        problem = derivation.problem
        self.problem = problem
        self.rate = number(problem.learning_rate)
        self.tex_rate = latex.tex_number(problem.learning_rate)
        self.names = tuple(problem.values)
        self.partials = tuple(self._prepare(p) for p in derivation.partials)

    def _prepare(self, partial: Partial) -> _PartialText:
        from .text import closed_form, partial_label

        problem = self.problem
        substituted = bool(partial.result.free_symbols) and not problem.rows
        names = (*problem.constants, *self.names)
        free = partial.result.free_symbols
        used = tuple(n for n in names if sympy.Symbol(n, real=True) in free)
        row_used = tuple(n for n in (*names, *problem.data) if sympy.Symbol(n, real=True) in free)
        return _PartialText(
            symbol=partial.symbol,
            label=partial_label(partial.symbol),
            latex_label=latex.partial_symbol(partial.symbol),
            closed=closed_form(partial, problem.rows, tuple(problem.data)),
            closed_latex=latex.partial_result(partial, problem),
            used=used,
            plain=_template(unicode, partial.result, used) if substituted else None,
            tex=_template(latex.substituted, partial.result, used) if substituted else None,
            latex_name=latex.latex_name(partial.symbol),
            row_used=row_used if problem.rows else (),
            row_plain=_template(unicode, partial.result, row_used) if problem.rows else None,
        )

    def header(self) -> list[str]:
        """Return the closed forms each update substitutes into, and the update rule."""
        rows = self.problem.rows
        lines = [
            f"Each update evaluates, as the mean over the {rows} rows:"
            if rows
            else "Each update substitutes its numbers into:"
        ]
        for p in self.partials:
            lines.append(f"  {p.label} = {p.closed}")
            lines.append(f"    LaTeX: {p.latex_label} = {p.closed_latex}")
        for p in self.partials:
            s = plain_name(p.symbol)
            lines.append(f"  {s} ← {s} − η·{p.label}, η = {minus(self.rate)}")
        return lines

    def blocks(self, columns: Columns, first: int, rows: Iterable[int] | None = None) -> list[str]:
        """Return the text of each update in ``columns`` (or of the ``rows`` chosen), each
        block of lines ending in a newline; ``first`` is the number of the first row's update."""
        chosen = list(range(len(columns))) if rows is None else list(rows)
        if not chosen:
            return []
        picked = _take(columns, chosen)
        updates = picked.updates()
        digits = {p.symbol: self._digits(p, picked) for p in self.partials if p.plain}
        per_row = {p.symbol: self._rows(p, picked) for p in self.partials if p.row_plain}
        return [
            "\n".join(self._block(u, first + row, i, digits, per_row)) + "\n"
            for i, (row, u) in enumerate(zip(chosen, updates, strict=True))
        ]

    def _block(
        self,
        u: Update,
        step: int,
        i: int,
        digits: Mapping[str, list[int]],
        rows: Mapping[str, list[str]],
    ) -> list[str]:
        problem = self.problem
        lines = [f"Update {step}: L = {minus(number(u.loss))}"]
        values = {**problem.constants, **u.values}
        for p in self.partials:
            s = p.symbol
            symbolic, autodiff = u.symbolic[s], u.autodiff[s]
            result = number(symbolic)
            plain, tex = [], []
            if p.plain is not None and p.tex is not None:
                shown = [number(values[n], digits[s][i]) for n in p.used]
                plain.append(p.plain.fill(shown, minus))
                tex.append(p.tex.fill(shown, latex.tex_text))
            elif not problem.rows:
                plain, tex = [p.closed], [p.closed_latex]
            plain = [c for c in plain if c != minus(result)]
            tex = [c for c in tex if c != latex.tex_text(result)]
            sympy_shown, tf_shown = side_by_side(symbolic, autodiff, problem.dtype)
            old, g, new = latex.update_numbers(s, u, problem.learning_rate, problem.dtype)
            lines += [
                f"  {p.label} = {' = '.join([*plain, minus(result)])}",
                *([] if p.row_plain is None else rows[s][i].split("\n")),
                f"    SymPy {minus(sympy_shown)}   TF {minus(tf_shown)}   "
                f"TF − SymPy {minus(number(autodiff - symbolic, 3))}",
                f"    LaTeX: {' = '.join([p.latex_label, *tex, latex.tex_text(result)])}",
                f"  {plain_name(s)} ← {minus(old)} − {minus(self.rate)}·"
                f"{_parenthesised(minus(g))} = {minus(new)}",
                f"    LaTeX: {self._update_latex(p, old, g, new)}",
            ]
        return lines

    def _update_latex(self, p: _PartialText, old: str, g: str, new: str) -> str:
        """Return the update as :func:`tutor.render.latex.update_line` writes it."""
        value, _, note = new.partition(" (")
        new = latex.tex_text(value)
        if note:
            new = rf"{new}\ \text{{({latex.escape(note)}}}"
        g = rf"\left({latex.tex_text(g)}\right)" if g.startswith("-") else latex.tex_text(g)
        old = latex.tex_text(old)
        return rf"{p.latex_name} \leftarrow {old} - {self.tex_rate}\cdot {g} = {new}"

    def _table(self, columns: Columns) -> dict[str, np.ndarray]:
        """Return each constant's and value's column of numbers, one entry per update."""
        count = len(columns)
        table = {n: np.full(count, v) for n, v in self.problem.constants.items()}
        table.update({n: columns.values[:, k] for k, n in enumerate(self.names)})
        return table

    def _digits(self, p: _PartialText, columns: Columns) -> list[int]:
        """Return, per update, the digits :func:`tutor._mathtext.checking_digits` would choose."""
        j = self.problem.wrt.index(p.symbol)
        shown = [number(v) for v in columns.symbolic[:, j].tolist()]
        return self._checking_digits(p.symbol, p.used, self._table(columns), shown)

    def _rows(self, p: _PartialText, columns: Columns) -> list[str]:
        """Return, per update, the lines of each data row's gradient and their mean, as
        :func:`tutor.render.text.row_lines` writes them."""
        from .text import FIRST_ROWS, HANDFUL, mean_line, num

        problem = self.problem
        partial = self.derivation.partial(p.symbol)
        assert p.row_plain is not None
        count, rows = len(columns), problem.rows
        table = self._table(columns)
        j = problem.wrt.index(p.symbol)
        means = columns.symbolic[:, j].tolist()
        shown = range(rows if rows <= HANDFUL else FIRST_ROWS)
        lines: list[list[str]] = [[] for _ in range(count)]
        results: list[list[float]] = [[] for _ in range(count)]
        for r in shown:
            at = {**table, **{n: np.full(count, float(c[r])) for n, c in problem.data.items()}}
            values = np.broadcast_to(evaluate(partial.result, at), (count,)).tolist()
            texts = [number(v) for v in values]
            digits = self._checking_digits(p.symbol, p.row_used, at, texts)
            for i in range(count):
                numbers = [number(at[n][i], digits[i]) for n in p.row_used]
                formula = p.row_plain.fill(numbers, minus)
                lines[i].append(f"    row {r + 1}: {formula} = {minus(texts[i])}")
                results[i].append(values[i])
        for i in range(count):
            if rows <= HANDFUL:
                lines[i].append(mean_line(results[i], means[i]))
            else:
                lines[i].append(
                    f"    … and {rows - FIRST_ROWS} more rows; the mean of all {rows} is "
                    f"{num(means[i])}"
                )
        return ["\n".join(block) for block in lines]

    def _checking_digits(
        self,
        symbol: str,
        used: tuple[str, ...],
        table: Mapping[str, np.ndarray],
        shown: list[str],
    ) -> list[int]:
        """Return, per entry of the columns in ``table``, the fewest digits (at least four)
        with which the partial, on its ``used`` numbers so printed, prints as ``shown``."""
        partial = self.derivation.partial(symbol)
        count = len(shown)
        digits = [0] * count
        pending = list(range(count))
        for d in range(DIGITS, 18):
            if not pending:
                break
            env = {
                n: np.array([float(number(v, d)) for v in table[n][pending].tolist()]) for n in used
            }
            try:
                value = np.broadcast_to(evaluate(partial.result, env), (len(pending),))
            except (UnsupportedExpression, KeyError, TypeError, ValueError, OverflowError):
                break
            still = []
            for i, v in zip(pending, value.tolist(), strict=True):
                if not math.isfinite(v):
                    # Overflow and its kin: the scalar route decides, as it does for one update.
                    values = {n: float(table[n][i]) for n in used}
                    digits[i] = checking_digits(partial.result, values, shown[i])
                elif number(v) == shown[i]:
                    digits[i] = d
                else:
                    still.append(i)
            pending = still
        else:
            for i in pending:
                digits[i] = 17
            pending = []
        for i in pending:  # evaluation failed: the plain four digits
            digits[i] = DIGITS
        return digits


def _parenthesised(text: str) -> str:
    return f"({text})" if text.startswith(("-", "−")) else text


def _take(columns: Columns, rows: list[int]) -> Columns:
    """Return the chosen rows of ``columns`` (all of them without a copy)."""
    if rows == list(range(len(columns))):
        return columns
    index = np.asarray(rows)
    return Columns(
        columns.names,
        columns.wrt,
        columns.values[index],
        columns.loss[index],
        columns.autodiff[index],
        columns.updated[index],
        None if columns.symbolic is None else columns.symbolic[index],
    )


@dataclass(frozen=True)
class Digest:
    """Which updates of a long run a terminal shows: the first ``head``, every ``every``-th,
    and the last ``tail`` of the ``steps`` planned (a run that stops early shows its last
    ones when it stops).

    >>> digest = Digest.of(1_000_000)
    >>> digest.every, digest.rows(1, 1023)[:6]
    (100000, [0, 1, 2, 3, 4])
    >>> digest.rows(999_000, 1001)
    [996, 997, 998, 999, 1000]
    """

    steps: int
    every: int
    head: int = 5
    tail: int = 5

    @classmethod
    def of(cls, steps: int, between: int = 10) -> Digest:
        """Return the digest of ``steps`` updates with about ``between`` shown in the middle,
        every 1, 2 or 5 times a power of ten."""
        every = 1
        while steps / every > between:
            every = _next_round(every)
        return cls(steps=steps, every=every)

    def shows(self, step: int) -> bool:
        """Return whether update ``step`` (1-based) is shown."""
        return step <= self.head or step > self.steps - self.tail or step % self.every == 0

    def rows(self, first: int, count: int) -> list[int]:
        """Return the rows (0-based) shown of a piece of ``count`` updates from ``first``."""
        last = first + count - 1
        steps = set(range(first, min(last, self.head) + 1))
        steps.update(range(max(first, self.steps - self.tail + 1), last + 1))
        start = -(-first // self.every) * self.every
        steps.update(range(start, last + 1, self.every))
        return sorted(s - first for s in steps)


def _next_round(every: int) -> int:
    """Return the next of 1, 2, 5, 10, 20, 50, …"""
    digits = len(str(every)) - 1
    lead = every // 10**digits
    return {1: 2, 2: 5, 5: 10}[lead] * 10**digits


def gap(after: int, before: int) -> str:
    """Return the line that stands for the updates left out between two shown ones."""
    count = before - after - 1
    which = f"update {after + 1}" if count == 1 else f"updates {after + 1}–{before - 1}"
    return f"\n… {which} not shown (--all shows every update)\n"


def updates_of(columns: Columns, first: int, rows: Sequence[int]) -> tuple[Update, ...]:
    """Return the chosen rows of a piece as updates, numbered from ``first``."""
    return tuple(
        dataclasses.replace(u, step=first + row)
        for row, u in zip(rows, _take(columns, list(rows)).updates(), strict=True)
    )


def last_rows(
    kept: tuple[Columns, int] | None, piece: Columns, first: int, count: int
) -> tuple[Columns, int]:
    """Return the last ``count`` updates of a run so far, and the number of the first of
    them, from those ``kept`` before and the new ``piece`` (whose first update is ``first``)."""
    if kept is not None and len(piece) < count:
        pieces = [kept[0], piece]
        joined = Columns.concat(pieces, piece.names, piece.wrt)
        start = kept[1]
    else:
        joined, start = piece, first
    drop = max(0, len(joined) - count)
    return _take(joined, list(range(drop, len(joined)))), start + drop
