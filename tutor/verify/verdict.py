"""What one comparison concludes: the checks, the verdicts, and the reports of a partial."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sympy

from ._evaluate import Hazard
from .precision import Precision

#: What a point's comparison can conclude. Only "fail" is a disagreement.
VERDICTS = ("pass", "fail", "kink", "singular", "overflow", "undefined")


@dataclass(frozen=True)
class Check:
    """One point's comparison of TF's gradient with SymPy's."""

    values: Mapping[str, float]
    symbolic: float | None
    autodiff: float
    error: float
    magnitude: float
    floor: float
    tolerance: float
    u: float
    verdict: str
    note: str = ""

    @property
    def ratio(self) -> float:
        """The error beyond the floor as a multiple of u·S: at most about k where the bound holds.

        The floor (flushed subnormals) is subtracted first: a point where only
        the floor explains the error says nothing about the rounding of normal
        numbers. 0 for no such error, inf when S is 0 but the error is not.
        """
        beyond = self.error - self.floor
        if math.isnan(beyond):
            return math.inf
        if beyond <= 0:
            return 0.0
        return beyond / (self.u * self.magnitude) if self.magnitude > 0 else math.inf


@dataclass(frozen=True)
class PartialReport:
    """What comparing one partial at many points found."""

    problem: str
    title: str
    symbol: str
    result: sympy.Expr
    dtype: str
    variables: str
    mode: str
    k: int
    u: float
    box: Mapping[str, tuple[float, float]]
    examples: int
    counts: Mapping[str, int]
    worst: Check | None = None
    counterexample: Check | None = None
    specials: Mapping[str, Check] = field(default_factory=dict)
    seed: int | None = None
    shrinks: int = 0

    @property
    def passed(self) -> bool:
        """Whether no point disagreed beyond the bound."""
        return self.counterexample is None


# ---------------------------------------------------------------------------------------
# Where points are drawn.


def _verdict(check: Check, hazards: Sequence[Hazard], within: bool, prec: Precision) -> Check:
    """Return ``check`` with its verdict: a kink is always reported, other hazards on a miss."""
    within = within and math.isfinite(check.tolerance)
    kind = hazards[0].kind if hazards else ""
    if kind != "kink" and within:
        return dataclasses.replace(check, verdict="pass")
    if hazards:
        note = _hazard_note(hazards, check, within, prec)
        return dataclasses.replace(check, verdict=kind, note=note)
    return dataclasses.replace(check, verdict="fail")


def _hazard_note(hazards: Sequence[Hazard], check: Check, within: bool, prec: Precision) -> str:
    """Say why the bound does not apply at a point, and what each side returned there."""
    kind = hazards[0].kind
    where = "; ".join(h.text for h in hazards)
    sides = f"SymPy gives {check.symbolic!r}, TF gives {check.autodiff!r}"
    if kind == "kink":
        agree = (
            "they agree within the bound"
            if within
            else "TF takes the branch its rounded values choose, SymPy its own convention"
        )
        return f"at a kink ({where}, within rounding error of the switch): {sides}; {agree}"
    if kind == "singular":
        return f"at a singular point ({where}), within rounding error of it; {sides}"
    if kind == "undefined":
        return f"outside the loss's domain ({where}); {sides}"
    return (
        f"an overflow: {where} reaches the largest {prec.name} within its rounding error; {sides}"
    )
