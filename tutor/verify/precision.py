"""The floating-point model of the bound: unit roundoffs, rounding counts, γ_k."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..functions import REGISTRY, by_op

#: Unit roundoff of NumPy's float64, in which the bound itself is evaluated.
U64 = 2.0**-53
#: Smallest positive float64 (subnormal): NumPy's underflow errs by at most this per operation.
EPS64_SUBNORMAL = 2.0**-1074


@dataclass(frozen=True)
class Precision:
    """A floating-point type: unit roundoff, flush-to-zero threshold, largest finite value."""

    name: str
    u: float
    tiny: float
    largest: float
    numpy: Any

    @property
    def u_text(self) -> str:
        """The unit roundoff as a power of two, e.g. ``2⁻²⁴``."""
        exponent = round(-math.log2(self.u))
        return "2⁻" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


FLOAT32 = Precision("float32", 2.0**-24, 2.0**-126, float(np.finfo(np.float32).max), np.float32)
FLOAT64 = Precision("float64", 2.0**-53, 2.0**-1022, float(np.finfo(np.float64).max), np.float64)
PRECISIONS = {"float32": FLOAT32, "float64": FLOAT64}

#: The relative error of each library function, counted in roundings (units of u): the
#: bound c_f with |fl(f(x)) − f(x)| ≤ c_f·u·|f(x)| wherever f(x) is normal, by dtype and
#: function; a view of :mod:`tutor.functions`, which says how each count was found.
ROUNDINGS: dict[str, dict[str, int]] = {
    dtype: {r.name: r.bound.roundings[dtype] for r in REGISTRY.values() if r.bound.roundings}
    for dtype in ("float32", "float64")
}


def roundings(function: str, prec: Precision) -> int:
    """Return c_f of ``function`` in ``prec``: its relative error in units of u.

    >>> roundings("exp", FLOAT32), roundings("tanh", FLOAT64)
    (2, 11)
    """
    record = REGISTRY.get(function) or by_op(function)
    if record is None or not record.bound.roundings:
        raise KeyError(f"no rounding count for {function!r}")
    return record.bound.roundings[prec.name]


def pow_roundings(exponent: float | None) -> int:
    """Return c_f of pow(x, c): ⌈|c|⌉ + 1 roundings, and at least 3.

    Eigen computes x**c as exp2(c·log2 x) with a double-word log2 (documented
    as 3 ulps for float); in float64 the error grows with |c|. Measured over
    4·10⁶ arguments for each of 36 exponents from −64 to 64: float64 2.68u at
    c = 2, 4.72u at 10, 20.5u at ±64, 2.2–2.5u for |c| < 1; float32 at most
    3.3u. ⌈|c|⌉ + 1 is what |c| − 1 multiplications and a final rounding would
    need; it and the floor 3 bound every measurement. A non-constant exponent
    is counted as the parser's largest, 64 (points beyond are reported).

    >>> pow_roundings(2.0), pow_roundings(64.0), pow_roundings(0.5)
    (3, 65, 3)
    """
    size = 64.0 if exponent is None else abs(exponent)
    return max(3, math.ceil(size) + 1)


#: The order in which a point's hazards explain a disagreement. "undefined": an
#: intermediate has no real value (log or sqrt of a negative number, a fractional
#: power of one), so the loss is undefined there, even where SymPy's simplified
#: partial is not (w**0.25 − w**0.25 has the partial 0 everywhere).
HAZARD_KINDS = ("kink", "singular", "overflow", "undefined")


def precision(dtype: str) -> Precision:
    """Return the :class:`Precision` of ``dtype`` ("float32" or "float64")."""
    return PRECISIONS[dtype]


@functools.lru_cache(maxsize=1024)
def gamma(k: int, u: float) -> float:
    """Return γ_k = k·u/(1 − k·u), the bound on the relative error of k roundings.

    >>> gamma(3, 2.0**-24) > 3 * 2.0**-24
    True
    """
    if k * u >= 1:
        raise ValueError(f"γ_{k} is undefined: k·u = {k * u} ≥ 1")
    return k * u / (1 - k * u)


def representable(value: Fraction, prec: Precision) -> bool:
    """Return whether ``value`` is exactly a zero or normal number of ``prec``.

    >>> representable(Fraction(1, 2), FLOAT32), representable(Fraction(1, 10), FLOAT64)
    (True, False)
    """
    with np.errstate(all="ignore"):
        rounded = float(prec.numpy(float(value)))
    if not math.isfinite(rounded):
        return False
    return Fraction(rounded) == value and (rounded == 0 or abs(rounded) >= prec.tiny)
