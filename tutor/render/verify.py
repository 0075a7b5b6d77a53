"""The text of ``tutor verify``: one block per problem, a line per partial."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..verify.precision import precision
from ..verify.verdict import PartialReport


def render(reports: Sequence[PartialReport]) -> str:
    """Return the reports as plain text, grouped by problem."""
    lines: list[str] = []
    current = None
    for r in reports:
        if r.problem != current:
            lines.append(f"{r.problem}: {' '.join(r.title.split())}")
            current = r.problem
        lines.extend(_render_partial(r))
    failed = sum(not r.passed for r in reports)
    checks = f"{len(reports)} check{'s' * (len(reports) != 1)}"
    lines.append(f"{checks}: " + (f"{failed} FAILED" if failed else "all passed"))
    return "\n".join(lines) + "\n"


def _render_partial(r: PartialReport) -> list[str]:
    from .._mathtext import unicode

    lines = [
        f"  ∂L/∂{r.symbol} = {unicode(r.result)}   [{r.dtype}, {r.variables}]",
        f"    examples   {_examples(r)}",
        f"    tolerance  |TF − SymPy| ≤ γ_{r.k}·S + floor, γ_k = k·u/(1 − k·u), k = {r.k}, "
        f"u = {precision(r.dtype).u_text}",
        "               S: TF's gradient re-evaluated on magnitudes; floor: flushed subnormals",
    ]
    if r.worst is not None:
        w = r.worst
        lines.append(
            f"    worst      {_ratio(w.ratio)}·u·S at {_point(w.values)} "
            f"(SymPy {_num(w.symbolic)}, TF {_num(w.autodiff)}, S = {_num(w.magnitude)})"
        )
    for verdict, c in r.specials.items():
        count = r.counts.get(verdict, 0)
        lines.append(
            f"    {verdict:<10} {count} point{'s' * (count != 1)}, not counted; "
            f"e.g. at {_point(c.values)}: {c.note}"
        )
    lines.append("    result     " + _result(r))
    return lines


def _examples(r: PartialReport) -> str:
    """Say how many points were tried, how they were drawn, and where."""
    boxes = ", ".join(f"{k} ∈ [{_num(lo)}, {_num(hi)}]" for k, (lo, hi) in r.box.items())
    if r.mode == "batch":
        how = f"uniform, seed {r.seed}; SymPy in NumPy float64, TF in one batch"
    else:
        how = f"Hypothesis, seed {r.seed}" + (f"; the last {r.shrinks} shrinking" * bool(r.shrinks))
    return f"{r.examples} ({how}) in {boxes or 'no box'}"


def _result(r: PartialReport) -> str:
    c = r.counterexample
    if c is None:
        return "PASS"
    how = "shrunk" if r.mode == "search" else "the failing point nearest the origin"
    scale = c.u * c.magnitude
    allowed = f"{_ratio(c.bound / scale)}·u·S" if scale else _num(c.bound)
    return (
        f"FAIL at {_point(c.values)} ({how}): SymPy {_num(c.symbolic)}, TF {_num(c.autodiff)}, "
        f"|TF − SymPy| = {_num(c.error)} = {_ratio(c.ratio)}·u·S > tolerance {allowed}"
    )


def _point(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in values.items())


def _num(value: float | None) -> str:
    """Return ``value`` briefly: whole numbers without a point, others to 9 digits."""
    if value is None:
        return "undefined"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.9g}"


def _ratio(value: float) -> str:
    return f"{value:.3g}"
