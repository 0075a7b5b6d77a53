"""Plain text for the terminal and pipes: derivations, descents, the notebook's lines."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import sympy

from .._clean import clean
from .._mathtext import checking_digits, minus, plain_name, unicode, written
from .._numbers import DIGITS, number, side_by_side
from ..analysis import DEFAULT_TOLERANCE, describe_class, describe_curvature, describe_rate
from ..model import Columns, Derivation, Partial, Problem, Step, Trajectory, Update
from ..steps import held_fixed
from . import latex

#: A minus sign before a number in prose (ASCII in the text the analysis writes).
_NUMBER_MINUS = re.compile(r"(?<![\w.=])-(?=\d|inf\b)|(?<=\d[eE])-(?=\d)")


def seed_line(update: Update, wrt: tuple[str, ...]) -> str:
    """Return the notebook's line for one update: the loss before it, the values after it.

    >>> u = Update(1, {"w": 0.5}, 20.25, {}, {}, {"w": 0.7699999809265137})
    >>> seed_line(u, ("w",))
    'Loss = 20.25,  w = 00.77 '
    """
    parts = [f"Loss = {update.loss:05.2f}"]
    parts += [f"{name} = {update.updated[name]:05.2f}" for name in wrt]
    return ",  ".join(parts) + " "


def seed(traj: Trajectory) -> str:
    """Return the notebook's output for a whole run, one line per update."""
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    return "".join(seed_line(u, wrt) + "\n" for u in traj.updates)


def seed_lines(columns: Columns) -> str:
    """Return the notebook's line of every update in ``columns``."""
    return "".join(seed_line(u, columns.wrt) + "\n" for u in columns.updates())


def partial_label(symbol: str) -> str:
    """Return ``∂L/∂w`` for ``symbol``, the name as every medium writes it (∂L/∂λ)."""
    return f"∂L/∂{plain_name(symbol)}"


def num(value: float, digits: int = DIGITS) -> str:
    """Return a number as the text shows it: ``number`` with a true minus sign (−27)."""
    return minus(number(value, digits))


def prose(text: str) -> str:
    """Return a sentence with a true minus sign in each number in it (w = −1.6, 2e−340).

    >>> prose("w = -1.6, ∂²L/∂w² = 2.0e-340, a--b")
    'w = −1.6, ∂²L/∂w² = 2.0e−340, a--b'
    """
    return _NUMBER_MINUS.sub("−", text)


def equation(*sides: str) -> str:
    """Return the sides joined by ``=``, none repeated next to itself (never ``2 = 2``)."""
    return " = ".join(latex.distinct([side for side in sides if side]))


def mean(summand: str, rows: int, add: bool) -> str:
    """Return ``(1/n) Σᵢ summand``, a sum in brackets so the mean covers all of it."""
    return f"(1/{rows}) Σᵢ {f'[{summand}]' if add else summand}"


def closed_form(partial: Partial, rows: int, data: tuple[str, ...] = ()) -> str:
    """Return the partial's closed form, as a mean over rows when there is data."""
    if not rows:
        return unicode(partial.result)
    body = unicode(latex.row_indexed(partial.result, data))
    return mean(body, rows, isinstance(partial.result, sympy.Add))


#: How much of the step tree a derivation shows: every rule with its sentence, or one line
#: per rule that does work (the default on a terminal).
DETAILS = ("brief", "full")


def step_lines(step: Step, depth: int = 1) -> list[str]:
    """Return the lines of a step tree: ``[rule] before = after`` and its sentence."""
    pad = "  " * depth
    lines = [f"{pad}[{step.rule}] {unicode(step.before)} = {unicode(step.after)}"]
    if step.text:
        lines.append(f"{pad}  {clean(step.text)}")
    if step.rule == "simplify":
        # The algebra's moves continue one chain of equalities: each line is "= next form".
        for move in step.substeps:
            lines.append(f"{pad}  [{move.rule}] = {unicode(move.after)}")
            lines.append(f"{pad}    {clean(move.text)}")
        return lines
    for sub in step.substeps:
        lines.extend(step_lines(sub, depth + 1))
    return lines


#: Rules a brief derivation folds into the line above them: the leaves, and the constant
#: factor (the constants are named once per partial).
_FOLDED = frozenset({"constant", "variable", "held constant", "constant multiple"})
#: Rules that do work worth a line of their own.
_WORKING = frozenset({"chain", "product", "quotient", "general power", "mean over rows"})


def brief_lines(steps: tuple[Step, ...], symbol: str) -> list[str]:
    """Return a partial's steps one line each: the rules that do work, each with its result,
    inner expressions named where they first appear (and called by their name after), then
    the algebra's named moves."""
    brief = _Brief(symbol)
    brief.introduce(steps)
    for step in steps:
        brief.visit(step, 1, top=True)
    return brief.lines


#: Functions the printers write besides the registry's: the derivatives of |u|, max and relu.
_PRINTED_FUNCTIONS = frozenset({"sign", "Abs", "Max", "Min", "H", "Heaviside"})


def _call_pattern() -> re.Pattern[str]:
    """Return the pattern of a function call in printed text: a function's name, its argument."""
    from ..functions import REGISTRY

    known = {r.plain for r in REGISTRY.values()} | set(REGISTRY) | _PRINTED_FUNCTIONS
    names = sorted(known, key=len, reverse=True)
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"({alternatives})\(((?:[^()]|\([^()]*\))*)\)")


class _Brief:
    """The lines of a brief derivation, and the names introduced so far."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.lines: list[str] = []
        self.seen: set[Any] = set()
        self.names: list[tuple[str, str]] = []  # (inner expression as text, its name)

    def named(self, text: str) -> str:
        """Return ``text`` with each named expression written by its name where it is the
        argument of a function: σ(b + wx) reads σ(u) once u = b + wx is said."""
        names = dict(self.names)
        pattern = _call_pattern()

        def call(m: re.Match[str]) -> str:
            argument = names.get(m[2]) or pattern.sub(call, m[2])
            return f"{m[1]}({argument})"

        return pattern.sub(call, text) if names else text

    def introduce(self, steps: tuple[Step, ...]) -> None:
        """Add the line naming every chain rule's inner expression, innermost first, each
        written with the names before it: ``let u = b + wx, v = σ(u), r = 1 − σ(u)``."""
        found: dict[str, Any] = {}
        for step in _preorder(steps):
            named = _chain_name(step)
            if named is not None:
                found.setdefault(unicode(named[0]), named[1])
        order = {name: k for k, name in enumerate(_NAME_ORDER)}
        said = []
        for name in sorted(found, key=lambda n: (order.get(n[:1], len(order)), n)):
            inner = unicode(found[name])
            said.append(f"{name} = {self.named(inner)}")
            self.names += [(inner, name), (self.named(inner), name)]
        if said:
            self.lines.append(f"  let {', '.join(said)}")

    def visit(self, step: Step, depth: int, top: bool = False) -> None:
        """Add the lines of ``step`` and its substeps; the rule at the ``top`` of a partial (or
        of one row) always has its line, so a derivation without a chain still shows one."""
        pad = "  " * depth
        if step.before in self.seen:
            return  # the same derivative again: its line is above
        self.seen.add(step.before)
        if step.rule == "mean over rows":
            self.lines.append(
                f"{pad}[mean over rows] the mean of each row's "
                f"∂/∂{plain_name(self.symbol)}; one row:"
            )
        elif step.rule == "simplify":
            for move in step.substeps or (step,):
                shown = self.named(unicode(move.after))
                # The rule's line above may already show what the pieces put together give.
                if not (self.lines and self.lines[-1].endswith(f"= {shown}")):
                    self.lines.append(f"{pad}[{move.rule}] = {shown}")
            return
        elif step.rule == "chain":
            self.lines.append(f"{pad}{self.chain(step)}")
        elif step.rule == "sum" and _does_work(step):
            terms = _joined([unicode(t) for t in _folded(step)])
            self.lines.append(f"{pad}[sum] term by term: {self.named(terms)}")
        elif top or (step.rule not in _FOLDED and _does_work(step)):
            after = unicode(step.after if step.gives is None else step.gives)
            self.lines.append(
                f"{pad}[{step.rule}] {self.named(unicode(step.before))} = {self.named(after)}"
            )
        row = step.rule == "mean over rows"
        for k, sub in enumerate(step.substeps[1:] if step.rule == "chain" else step.substeps):
            if _does_work(sub, self.seen) or sub.rule == "simplify" or (row and k == 0):
                self.visit(sub, depth, top=row and k == 0)

    def chain(self, step: Step) -> str:
        """Return ``[chain] ∂/∂w[f(u)] = f′(u)·∂u/∂w = result`` on one line."""
        result = self.named(unicode(step.after if step.gives is None else step.gives))
        named = _chain_name(step)
        if named is None:
            return f"[chain] {self.named(unicode(step.before))} = {result}"
        u, outer = unicode(named[0]), step.substeps[0]
        local = unicode(outer.after)
        local = f"({local})" if isinstance(outer.after, sympy.Add) else local
        before = self.named(unicode(step.before))
        return f"[chain] {before} = {local}·∂{u}/∂{plain_name(self.symbol)} = {result}"


#: The order names are handed out in (tutor.steps), for saying them innermost first.
_NAME_ORDER = ("u", "v", "r", "s", "t", "p", "q", "z", "a", "c")


def _chain_name(step: Step) -> tuple[sympy.Symbol, sympy.Expr] | None:
    """Return a chain rule's (name, inner expression), or None for any other step."""
    if step.rule != "chain" or not step.substeps:
        return None
    outer = step.substeps[0].before
    if not isinstance(outer, sympy.Derivative) or not isinstance(step.before, sympy.Derivative):
        return None
    u, whole = outer.variables[0], step.before.expr
    inner = next((a for a in whole.args if outer.expr.xreplace({u: a}) == whole), None)
    return None if inner is None else (u, inner)


def _preorder(steps: tuple[Step, ...]) -> list[Step]:
    out: list[Step] = []
    for step in steps:
        out += [step, *_preorder(step.substeps)]
    return out


def _folded(step: Step) -> list[sympy.Expr]:
    """Return a sum step's terms in its substeps' order (the formula's), each constant factor
    in front: [−y·∂/∂w[log(…)], −(1 − y)·∂/∂w[log(…)]]."""
    place = {sub.before: k for k, sub in enumerate(step.substeps)}
    pulled = {sub.before: sub.after for sub in step.substeps if sub.rule == "constant multiple"}

    def key(term: sympy.Expr) -> int:
        found = [place[d] for d in term.atoms(sympy.Derivative) if d in place]
        return min(found, default=len(place))

    terms = sorted(sympy.Add.make_args(step.after), key=key)
    return [term.xreplace(pulled) for term in terms]


def _joined(terms: list[str]) -> str:
    """Return printed terms as one sum: a − b + c."""
    out = terms[0]
    for term in terms[1:]:
        out += f" − {term[1:]}" if term.startswith("−") else f" + {term}"
    return out


def _does_work(step: Step, seen: set[Any] | None = None) -> bool:
    """Return whether a step, or one below it, applies a rule that does work (new ones only)."""
    if seen is not None and step.before in seen:
        return False
    if step.rule in _WORKING:
        return True
    return any(_does_work(sub, seen) for sub in step.substeps)


def analysis_lines(deriv: Derivation) -> list[str]:
    """Return what theory says about the descent: the Hessian's class, fixed point, bound on η."""
    a = deriv.analysis
    if a is None:
        return []
    problem = deriv.problem
    names = tuple(p.symbol for p in deriv.partials)
    if not a.applies:
        lines = [f"Convergence: {prose(a.reason)}."]
        if a.outcome:
            lines.append(f"  {prose(describe_rate(a, problem))}.")
        if a.start is not None:
            lines.append(f"  curvature at the start: {prose(describe_curvature(a.start, names))}")
        return lines
    lines = [f"Convergence ({prose(a.reason)}):"]
    if len(names) == 1 and not problem.rows:
        s = plain_name(names[0])
        second = equation(f"∂²L/∂{s}²", unicode(a.hessian[0, 0]), num(a.eigenvalues[0]))
        lines.append(f"  {second}: {prose(describe_class(a))}")
    else:
        shown = ", ".join(num(v) for v in a.eigenvalues)
        hessian = unicode(latex.row_indexed(a.hessian, tuple(problem.data)))
        averaged = f"(1/{problem.rows}) Σᵢ " if problem.rows else ""
        lines.append(f"  Hessian H = {averaged}{hessian}; eigenvalues {shown}")
        if problem.rows:
            lines.append(f"  mean over the {problem.rows} rows: H = {_matrix(a)}")
        lines.append(f"  H is {prose(describe_class(a))}")
    if a.fixed_point is not None:
        for name in names:
            formula = a.fixed_point_formula[name] if a.fixed_point_formula else None
            shown = unicode(formula) if formula is not None and formula.free_symbols else ""
            label = "the minimiser nearest the start" if a.flat else "fixed point"
            point = equation(f"{plain_name(name)}*", shown, num(a.fixed_point[name]))
            lines.append(f"  {label}: {point}")
    if a.fixed_point is not None and len(names) == 1 and a.iteration is not None:
        s = plain_name(names[0])
        factor = f"1 − {unicode(sympy.Symbol('eta') * a.hessian[0, 0])}"
        lines.append(
            f"  iteration: {s}ₖ − {s}* = ({factor})ᵏ ({s}₀ − {s}*), factor {num(a.iteration[0][0])}"
        )
    elif a.fixed_point is not None:
        lines.append(f"  iteration: θₖ − θ* = (I − ηH)ᵏ (θ₀ − θ*), |factor| ≤ {num(a.contraction)}")
    if a.condition is not None:
        slow = min(v for v in a.eigenvalues if v > 0)
        lines.append(
            f"  condition number κ = λ_max/λ_min = {num(a.condition)}: along the direction "
            f"of λ_min = {num(slow)} the distance shrinks slowest, by "
            f"|1 − ηλ_min| = {num(abs(1 - a.rate * slow))} per update"
        )
    if a.lr_bound is not None:
        formula = unicode(a.lr_bound_formula) if a.lr_bound_formula is not None else "2/λ_max"
        bound = equation(formula, num(a.lr_bound))
        lines.append(f"  stable for η < {bound}; {prose(describe_rate(a, problem))}")
    else:
        lines.append(f"  {prose(describe_rate(a, problem))}")
    lines += _tolerance_lines(a, problem)
    return lines


def _matrix(a: Any) -> str:
    """Return the mean Hessian's numbers as [[…], […]]."""
    size = len(a.eigenvalues)
    rows = [", ".join(num(a.matrix[i][j]) for j in range(size)) for i in range(size)]
    return "[" + ", ".join(f"[{r}]" for r in rows) + "]"


def _tolerance_lines(a: Any, problem: Any) -> list[str]:
    if a.steps_to_tolerance is None:
        return []
    if a.tolerance_kind == "gradient":
        return [
            f"  every |∂L/∂s| < {minus(f'{problem.tolerance:g}')} (the run's tolerance) after "
            f"{updates(a.steps_to_tolerance)}, by the closed form"
        ]
    return [
        f"  within {minus(f'{DEFAULT_TOLERANCE:g}')} of the fixed point after "
        f"{updates(a.steps_to_tolerance)}"
    ]


def updates(count: int) -> str:
    """Return ``1 update`` or ``n updates``.

    >>> updates(1), updates(20)
    ('1 update', '20 updates')
    """
    return f"{count} update{'' if count == 1 else 's'}"


def overridden_line(problem: Problem) -> str:
    """Return ``overridden: x = 4 (file: 3)`` for the values changed since the file ("" if none).

    The file's own prose may still speak of its values; this says which ones the run replaced.
    """
    if not problem.overridden:
        return ""
    current = {**problem.constants, **problem.values}
    return "overridden: " + ", ".join(
        f"{n} = {num(current[n])} (file: {num(v)})" for n, v in problem.overridden.items()
    )


def loss_line(problem: Problem) -> str:
    """Return ``L = …``: the loss as its file writes it, a mean over the rows with data."""
    loss = written(problem.tree, frozenset(problem.data))
    if not problem.rows:
        return f"L = {loss}"
    from ..expression import Binary

    add = isinstance(problem.tree, Binary) and problem.tree.op in "+-"
    return "L = " + mean(loss, problem.rows, add or loss.startswith("−"))


def derivation(deriv: Derivation, detail: str = "full") -> str:
    """Return the derivation of every partial as plain text, ``brief`` or ``full``."""
    problem = deriv.problem
    lines = [f"{problem.id}: {clean(problem.title)}"]
    if problem.summary.strip():
        lines += ["", *(clean(problem.summary).strip().splitlines())]
    if problem.overridden:
        lines += ["", overridden_line(problem)]
    lines += ["", f"Loss: {loss_line(problem)}"]
    for partial in deriv.partials:
        lines += ["", f"{partial_label(partial.symbol)}:"]
        fixed = held_fixed(problem.loss, problem.symbol(partial.symbol))
        if fixed:
            lines.append(f"  {fixed}")
        if detail == "brief":
            lines.extend(brief_lines(partial.steps, partial.symbol))
        else:
            for step in partial.steps:
                lines.extend(step_lines(step))
        closed = closed_form(partial, problem.rows, tuple(problem.data))
        lines.append(f"  {partial_label(partial.symbol)} = {closed}")
        if detail != "brief":  # brief is the compact view; --detail full adds the LaTeX
            lines.append(
                f"  LaTeX: {latex.partial_symbol(partial.symbol)} = "
                f"{latex.partial_result(partial, problem)}"
            )
    analysis = analysis_lines(deriv)
    if analysis:
        lines += ["", *analysis]
    return "\n".join(lines) + "\n"


def _gradient_lines(
    traj: Trajectory, partial: Partial, values: dict[str, float], symbolic: float, autodiff: float
) -> list[str]:
    rows = traj.problem.rows
    chain = [closed_form(partial, rows, tuple(traj.problem.data))]
    if partial.result.free_symbols and not rows:
        digits = checking_digits(partial.result, values, number(symbolic))
        chain.append(unicode(partial.result, values, digits))
    sympy_shown, tf_shown = side_by_side(symbolic, autodiff, traj.problem.dtype)
    return [
        f"  {equation(partial_label(partial.symbol), *chain, num(symbolic))}",
        *row_lines(partial, traj.problem, values, symbolic),
        f"    SymPy {minus(sympy_shown)}   TF {minus(tf_shown)}   "
        f"TF − SymPy {num(autodiff - symbolic, 3)}",
        f"    LaTeX: {latex.gradient_line(partial, traj.problem, values, symbolic)}",
    ]


#: Up to this many data rows, an update shows every row's gradient; beyond it, the first
#: :data:`FIRST_ROWS` and the mean.
HANDFUL = 6
FIRST_ROWS = 3


def mean_line(results: list[float], mean: float) -> str:
    """Return ``mean of the n rows: (a + b + …)/n = m``, the terms with the digits that make
    the sum check by hand: near a minimum the rows' gradients cancel, and four digits of
    each would add up to a different mean."""
    rows, shown = len(results), number(mean)
    digits = next(
        (
            d
            for d in range(DIGITS, 18)
            if number(sum(float(number(r, d)) for r in results) / rows) == shown
        ),
        17,
    )
    terms = " + ".join(num(r, digits) if r >= 0 else f"({num(r, digits)})" for r in results)
    return f"    mean of the {rows} rows: ({terms})/{rows} = {num(mean)}"


def row_lines(
    partial: Partial, problem: Problem, values: dict[str, float], mean: float
) -> list[str]:
    """Return each row's gradient with its numbers substituted, then their mean ([] without data).

    With more than :data:`HANDFUL` rows, the first :data:`FIRST_ROWS` and the mean of all.
    """
    from ..numeric import evaluate

    rows = problem.rows
    if not rows:
        return []
    shown = range(rows if rows <= HANDFUL else FIRST_ROWS)
    lines, results = [], []
    for i in range(rows):
        at = {**values, **{name: column[i] for name, column in problem.data.items()}}
        results.append(float(evaluate(partial.result, at)))
        if i in shown:
            value = number(results[-1])
            digits = checking_digits(partial.result, at, value)
            lines.append(f"    row {i + 1}: {unicode(partial.result, at, digits)} = {minus(value)}")
    if rows <= HANDFUL:
        lines.append(mean_line(results, mean))
    else:
        lines.append(
            f"    … and {rows - FIRST_ROWS} more rows; the mean of all {rows} is {num(mean)}"
        )
    return lines


def start_block(traj: Trajectory) -> list[str]:
    """Return the loss and both gradients at the starting values (shown when no update runs)."""
    start = traj.start
    shown = ", ".join(f"{plain_name(k)} = {num(v)}" for k, v in start.values.items())
    lines = [f"At the start ({shown}): L = {num(start.loss)}"]
    values = {**traj.problem.constants, **start.values}
    for partial in traj.derivation.partials:
        s = partial.symbol
        lines += _gradient_lines(traj, partial, values, start.symbolic[s], start.autodiff[s])
    return lines


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Any, width: int = 60) -> str:
    """Return the losses as a row of bars (log scale), at most ``width`` wide.

    >>> sparkline([4.0, 2.0, 1.0])
    '█▅▁'
    """
    losses = np.asarray(values, dtype=np.float64)
    finite = losses[np.isfinite(losses) & (losses > 0)]
    if not finite.size:
        return ""
    floor = float(finite.min())
    if len(losses) > width:
        losses = losses[[i * len(losses) // width for i in range(width)]]
    logs = [math.log10(max(v, floor)) if math.isfinite(v) else math.inf for v in losses.tolist()]
    low, high = min(v for v in logs if math.isfinite(v)), max(v for v in logs if math.isfinite(v))
    span = (high - low) or 1.0
    return "".join(
        _BARS[-1] if not math.isfinite(v) else _BARS[round((v - low) / span * (len(_BARS) - 1))]
        for v in logs
    )


def last_values(traj: Trajectory) -> dict[str, float]:
    """Return the descended values after the last update (the start's when none was taken)."""
    columns = traj.columns
    if not len(columns):
        return {n: traj.start.values[n] for n in traj.problem.wrt}
    return dict(zip(columns.wrt, columns.updated[-1].tolist(), strict=True))


def distance_to_minimiser(traj: Trajectory) -> float | None:
    """Return |θ_last − θ*| when the analysis found the fixed point θ*, else None."""
    a = traj.derivation.analysis
    if a is None or a.fixed_point is None or not traj.steps:
        return None
    last = last_values(traj)
    return math.dist([last[n] for n in a.fixed_point], list(a.fixed_point.values()))


def end_curvature(traj: Trajectory) -> str:
    """Return the curvature at the final values of a run on a non-quadratic loss ("" if none)."""
    if traj.end_curvature is None:
        return ""
    names = tuple(p.symbol for p in traj.derivation.partials)
    last = {**traj.start.values, **last_values(traj)}
    at = ", ".join(f"{plain_name(n)} = {num(last[n])}" for n in names)
    return f"Curvature at the end ({at}): {prose(describe_curvature(traj.end_curvature, names))}"


def summary(traj: Trajectory) -> str:
    """Return the closing line of a run: outcome, updates, the loss at the final values,
    the distance to θ*."""
    n = traj.steps
    final = "" if traj.final_loss is None else f", final loss {num(traj.final_loss)}"
    distance = distance_to_minimiser(traj)
    if distance is not None and math.isfinite(distance):
        final += f", distance to the fixed point {num(distance)}"
    return f"{traj.status}: {updates(n)}{final} ({prose(traj.reason)})"


def interrupted(problem: Problem, last: tuple[Columns, int] | None) -> str:
    """Return the line that ends a run stopped by Ctrl-C: how far it got and where.

    ``last`` is the last piece of updates computed and the number of its first update.
    """
    if last is None or not len(last[0]):
        return "interrupted: no update was computed (stopped by Ctrl-C)"
    columns, first = last
    count = first + len(columns) - 1
    after = ", ".join(
        f"{plain_name(n)} = {num(v)}"
        for n, v in zip(columns.wrt, columns.updated[-1].tolist(), strict=True)
    )
    return (
        f"interrupted: {updates(count)}, loss {num(columns.loss[-1])} "
        f"before the last, {after} after it (stopped by Ctrl-C after update {count})"
    )


def descent_heading(problem: Problem, wrt: tuple[str, ...]) -> str:
    """Return the line that opens a run: the symbols descended, η, dtype, style, steps."""
    return (
        f"Gradient descent on {', '.join(plain_name(s) for s in wrt)}: "
        f"η = {num(problem.learning_rate)}, {problem.dtype}, {problem.variables} mode, "
        f"up to {updates(problem.steps)}"
    )


def closing(traj: Trajectory) -> list[str]:
    """Return what follows the updates: the loss as a sparkline, the end's curvature, the
    summary, each paragraph preceded by a blank line."""
    lines = []
    spark = sparkline(traj.columns.loss)
    if spark:
        lines += ["", f"Loss by update: {spark}"]
    end = end_curvature(traj)
    if end:
        lines += ["", end]
    return [*lines, "", summary(traj)]


def trajectory(traj: Trajectory, show_derivation: bool = True, detail: str = "full") -> str:
    """Return a whole run as plain text: derivation (``brief`` or ``full``), the closed
    forms, each update with its numbers substituted, the summary."""
    from .stream import RunText

    lines = [derivation(traj.derivation, detail).rstrip("\n")] if show_derivation else []
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    run = RunText(traj.derivation)
    lines += ["", descent_heading(traj.problem, wrt), *run.header()]
    if not traj.steps:
        lines += ["", *start_block(traj)]
    text = "\n".join(lines) + "\n"
    blocks = "".join("\n" + block for block in run.blocks(traj.columns, 1))
    return text + blocks + "\n".join(closing(traj)) + "\n"
