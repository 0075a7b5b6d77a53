"""The text of ``tutor verify``: one block per problem, a line per partial."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .._mathtext import minus
from ..verify.precision import gamma, precision
from ..verify.verdict import PartialReport

#: What every partial's tolerance means, said once above the reports.
LEGEND = (
    "Each partial passes when |TF − SymPy| ≤ γ_k·S + floor at every point: "
    "γ_k = k·u/(1 − k·u), with k the roundings on the path TensorFlow computes and u "
    "the unit roundoff of the dtype; S is TF's gradient re-evaluated on the terms' "
    "magnitudes (cancellation makes a relative tolerance meaningless); the floor covers "
    "subnormals TensorFlow flushes to zero."
)


def render(reports: Sequence[PartialReport]) -> str:
    """Return the reports as plain text: the legend once, then each problem's partials."""
    lines = [LEGEND, ""]
    current = None
    for r in reports:
        if r.problem != current:
            lines.append(heading(r))
            current = r.problem
        lines.extend(partial_lines(r))
    lines.append(verdict(reports))
    return "\n".join(lines) + "\n"


def heading(r: PartialReport) -> str:
    """Return the line that opens a problem's reports: its id and title."""
    return f"{r.problem}: {' '.join(r.title.split())}"


def verdict(reports: Sequence[PartialReport]) -> str:
    """Return the closing line: how many checks ran, and how many failed."""
    failed = sum(not r.passed for r in reports)
    checks = f"{len(reports)} check{'s' * (len(reports) != 1)}"
    return f"{checks}: " + (f"{failed} FAILED" if failed else "all passed")


def partial_lines(r: PartialReport) -> list[str]:
    """Return one partial's report: the points tried, its tolerance with γ_k as a number,
    the worst point with the bound there, any special points, and PASS or FAIL."""
    from .._mathtext import unicode

    u = precision(r.dtype).u_text
    lines = [
        f"  ∂L/∂{r.symbol} = {unicode(r.result)}   [{r.dtype}, {r.variables}]",
        f"    examples   {_examples(r)}",
        f"    tolerance  |TF − SymPy| ≤ γ_{r.k}·S + floor, γ_{r.k} = {_gamma(r.k)} = "
        f"{_bound(gamma(r.k, r.u))} (k = {r.k}, u = {u})",
    ]
    if r.worst is not None:
        w = r.worst
        lines.append(
            f"    worst      {_ratio(w.ratio)}·u·S at {_point(w.values)} "
            f"(SymPy {_num(w.symbolic)}, TF {_num(w.autodiff)}, S = {_num(w.magnitude)}): "
            f"|TF − SymPy| = {_bound(w.error)} ≤ γ_{r.k}·S + floor = {_bound(w.bound)}"
        )
    for kind, c in r.specials.items():
        count = r.counts.get(kind, 0)
        lines.append(
            f"    {kind:<10} {count} point{'s' * (count != 1)}, not counted; "
            f"e.g. at {_point(c.values)}: {c.note}"
        )
    lines.append("    result     " + _result(r))
    return lines


def _gamma(k: int) -> str:
    """Return γ_k's formula for this k: ``3u/(1 − 3u)``, ``u/(1 − u)`` for one rounding."""
    ku = "u" if k == 1 else f"{k}u"
    return f"{ku}/(1 − {ku})"


def _bound(value: float) -> str:
    """Return a tolerance or an error to four significant digits."""
    return minus(f"{value:.4g}")


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
    allowed = f" = {_ratio(c.bound / scale)}·u·S" if scale else ""
    return (
        f"FAIL at {_point(c.values)} ({how}): SymPy {_num(c.symbolic)}, TF {_num(c.autodiff)}, "
        f"|TF − SymPy| = {_num(c.error)} = {_ratio(c.ratio)}·u·S > tolerance "
        f"γ_{r.k}·S + floor = {_bound(c.bound)}{allowed}"
    )


def _point(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in values.items())


def _num(value: float | None) -> str:
    """Return ``value`` briefly: whole numbers without a point, others to 9 digits."""
    if value is None:
        return "undefined"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return minus(str(int(value)))
    return minus(f"{value:.9g}")


def _ratio(value: float) -> str:
    return minus(f"{value:.3g}")
