"""The closed form's own rounding error, for a reference evaluated in NumPy float64."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy

from ..functions import SYMPY, by_sympy
from .precision import FLOAT64, pow_roundings, representable, roundings


@dataclass(frozen=True)
class Magnitude:
    """A closed form's error bound when evaluated in float64: γ_k(2⁻⁵³)·S + F·2⁻¹⁰²².

    ``expr`` is S (the closed form on magnitudes), ``k`` the roundings on its longest
    path, ``floor`` F: the number of results below the normal range, each weighted by
    how much the rest of the expression magnifies it. Below the smallest normal T a
    result errs by less than T whatever happens there (gradual underflow, or a library
    function that loses its relative accuracy), so each such result adds T.
    """

    expr: sympy.Expr
    k: int
    floor: sympy.Expr = sympy.S.Zero


def magnitude(expr: sympy.Expr) -> Magnitude:
    """Return S, k and F of ``expr`` evaluated as :func:`tutor.numeric.evaluate` walks it.

    Add → the sum of the terms' magnitudes, Mul → the product, a power with a
    positive integer exponent n → the base's magnitude to the n (exact:
    (1 + γ_j)ⁿ ≤ 1 + γ_{nj}); other powers and functions to first order: the
    argument's magnitude times |f'| plus |f| for the function's own rounding.
    Used for the float64 reference of batch mode.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> m = magnitude(2 * x * (w * x - y))
    >>> m.expr, m.k
    (2*(Abs(w)*Abs(x) + Abs(y))*Abs(x), 4)
    """
    if expr.is_Symbol:
        return Magnitude(_abs(expr), 0)
    if expr.is_Number or expr in (sympy.pi, sympy.E):
        return Magnitude(_abs(expr), _number_roundings(expr))
    if isinstance(expr, sympy.Add | sympy.Mul):
        return _magnitude_nary(expr)
    if isinstance(expr, sympy.Pow):
        return _magnitude_pow(expr)
    if isinstance(expr, sympy.Piecewise):
        parts = [(magnitude(v), c) for v, c in expr.args]
        return Magnitude(
            sympy.Piecewise(*((m.expr, c) for m, c in parts)),
            max(m.k for m, _ in parts),
            sympy.Piecewise(*((m.floor, c) for m, c in parts)),
        )
    return _magnitude_function(expr)


def _number_roundings(expr: sympy.Expr) -> int:
    if not expr.is_Rational:
        return 1
    return 0 if representable(Fraction(int(expr.p), int(expr.q)), FLOAT64) else 1


def _magnitude_nary(expr: sympy.Expr) -> Magnitude:
    parts = [magnitude(a) for a in expr.args]
    extra = len(parts) - 1
    if isinstance(expr, sympy.Add):
        return Magnitude(
            sympy.Add(*(p.expr for p in parts)),
            max(p.k for p in parts) + extra,
            sympy.Add(*(p.floor for p in parts)) + extra,
        )
    # An error F_i·T in one factor is multiplied by the other factors' magnitudes.
    weighted = [
        p.floor * sympy.Mul(*(q.expr for j, q in enumerate(parts) if j != i))
        for i, p in enumerate(parts)
    ]
    return Magnitude(
        sympy.Mul(*(p.expr for p in parts)),
        sum(p.k for p in parts) + extra,
        sympy.Add(*weighted) + extra,
    )


def _magnitude_pow(expr: sympy.Pow) -> Magnitude:
    base, exponent = expr.args
    mb = magnitude(base)
    if exponent.is_Integer and exponent > 0:
        n = int(exponent)
        floor = n * mb.expr ** (n - 1) * mb.floor + 1
        return Magnitude(mb.expr**n, n * mb.k + pow_roundings(n), floor)
    if exponent == sympy.S.Half:
        root = sympy.sqrt(_abs(base))
        k = mb.k + roundings("sqrt", FLOAT64)
        return Magnitude(mb.expr / (2 * root) + root, k, mb.floor / (2 * root) + 1)
    me = magnitude(exponent)
    slope_base = _abs(exponent) * _abs(base) ** (exponent - 1)
    # An exponent that is a number the float64 exponent holds exactly adds no error.
    slope_exp = (
        sympy.S.Zero
        if me.k == 0 and exponent.is_Number
        else _abs(expr) * _abs(sympy.log(_abs(base)))
    )
    total = slope_base * mb.expr + slope_exp * me.expr + _abs(expr)
    floor = slope_base * mb.floor + slope_exp * me.floor + 1
    c = float(exponent) if exponent.is_Number else None
    return Magnitude(total, max(mb.k, me.k) + pow_roundings(c), floor)


_EXACT = (sympy.Heaviside, sympy.sign)


def _magnitude_function(expr: sympy.Expr) -> Magnitude:
    if isinstance(expr, _EXACT):
        return Magnitude(_abs(expr), 0)
    record = by_sympy(expr.func)
    if record is None:
        raise ValueError(f"no magnitude rule for {expr.func}")
    if record.formula is not None:
        # Evaluated as its formula's operations (the Piecewise SymPy rewrites it to).
        return magnitude(record.formula(SYMPY, *expr.args))
    parts = [magnitude(a) for a in expr.args]
    if record.bound.kind == "exact":
        return Magnitude(
            sympy.Max(*(p.expr for p in parts)),
            max(p.k for p in parts),
            sympy.Max(*(p.floor for p in parts)),
        )
    name = record.name
    (arg,) = expr.args
    slope = _abs(sympy.diff(expr.func(_T), _T).subs(_T, arg))
    k = parts[0].k + roundings(name, FLOAT64)
    return Magnitude(slope * parts[0].expr + _abs(expr), k, slope * parts[0].floor + 1)


_T = sympy.Symbol("t", real=True)


def _abs(expr: sympy.Expr) -> sympy.Expr:
    """|expr|, left unevaluated: SymPy would rewrite |exp(w**(5/3))| with re() and arg()."""
    return sympy.Abs(expr) if expr.is_Symbol or expr.is_Number else sympy.Abs(expr, evaluate=False)
