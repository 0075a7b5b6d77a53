"""What one comparison concludes: the checks, the verdicts, and the reports of a partial."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from ._evaluate import Hazard
from .bound import Assessment
from .precision import HAZARD_KINDS, Precision

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
    bound: float
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
# The verdict: one rule for a single point and for a batch.


def verdict_codes(
    assessment: Assessment, within: np.ndarray, undefined: np.ndarray | None = None
) -> np.ndarray:
    """Return each point's verdict as an index into :data:`VERDICTS`.

    ``within`` says where the error is within the (finite) bound; ``undefined``
    where the reference has no finite value (a batch's float64 reference).
    A kink is always reported; another hazard only where the error is not
    within the bound, the first of singular, overflow, undefined explaining it.
    Both :func:`tutor.verify.driver.search` (one point at a time) and
    :func:`tutor.verify.batched.batch` decide with this function.
    """
    size = len(within)
    masks = {kind: np.zeros(size, dtype=bool) for kind in HAZARD_KINDS}
    for h in assessment.hazards:
        masks[h.kind] |= h.mask
    codes = np.full(size, VERDICTS.index("fail"), dtype=np.int8)
    for kind in reversed(HAZARD_KINDS[1:]):  # the first kind explains a point first
        codes[masks[kind]] = VERDICTS.index(kind)
    codes[within] = VERDICTS.index("pass")
    codes[masks["kink"]] = VERDICTS.index("kink")
    if undefined is not None:
        codes[undefined] = VERDICTS.index("undefined")
        codes[undefined & masks["overflow"]] = VERDICTS.index("overflow")
    return codes


def judged(check: Check, assessment: Assessment, i: int, within: bool, code: int) -> Check:
    """Return ``check`` (point ``i`` of ``assessment``) with verdict ``code`` and its note."""
    verdict = VERDICTS[code]
    hazards = assessment.hazards_at(i)
    if verdict in ("pass", "fail") or not hazards:
        return dataclasses.replace(check, verdict=verdict)
    note = _hazard_note(hazards, check, within, assessment.precision)
    return dataclasses.replace(check, verdict=verdict, note=note)


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
