"""Evaluate SymPy expressions numerically by walking them: NumPy float64 or mpmath.

No code is generated or evaluated: each SymPy node maps to a function of the
chosen backend. NumPy evaluation is vectorised (data rows, batches of points);
mpmath evaluation is the high-precision reference.

>>> import sympy
>>> w = sympy.Symbol("w", real=True)
>>> float(evaluate(2 * w + 1, {"w": 3.0}))
7.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import mpmath
import numpy as np
import sympy

from .functions import LossFunction, by_sympy


def _np_heaviside(z: Any, h0: Any = 0.5) -> Any:
    return np.where(z > 0, 1.0, np.where(z < 0, 0.0, h0))


def _mp_heaviside(z: Any, h0: Any = 0.5) -> Any:
    return mpmath.mpf(1) if z > 0 else (mpmath.mpf(0) if z < 0 else mpmath.mpf(h0))


class _Backend:
    """One arithmetic: the functions derivatives add (sign, H), the registry's for the rest."""

    def __init__(
        self,
        funcs: dict[type, Callable[..., Any]],
        number: Callable[[Any], Any],
        form: Callable[[LossFunction], Callable[..., Any]],
    ) -> None:
        self.funcs = funcs
        self.number = number
        self.form = form

    def function(self, e: sympy.Basic) -> Callable[..., Any] | None:
        """Return how this arithmetic computes the function at the top of ``e``, or None."""
        func = self.funcs.get(type(e)) or self.funcs.get(e.func)
        if func is not None:
            return func
        record = by_sympy(e.func)
        return None if record is None else self.form(record)


_NUMPY = _Backend(
    {sympy.sign: np.sign, sympy.Heaviside: _np_heaviside},
    lambda v: float(v),
    lambda record: record.numpy,
)

_MPMATH = _Backend(
    {sympy.sign: mpmath.sign, sympy.Heaviside: _mp_heaviside},
    lambda v: mpmath.mpf(v.evalf(60)) if not isinstance(v, int) else mpmath.mpf(v),
    lambda record: record.mpmath,
)


class UnsupportedExpression(ValueError):
    """The expression holds a node the numeric walk does not know."""


def evaluate(expr: sympy.Expr, env: Mapping[str, Any], *, precise: bool = False) -> Any:
    """Return ``expr`` evaluated at ``env`` (symbol name → number or array).

    With ``precise``, evaluate in mpmath at the current ``mpmath.mp`` precision
    (scalars only); otherwise in NumPy float64, broadcasting arrays.
    """
    backend = _MPMATH if precise else _NUMPY
    values = {k: (mpmath.mpf(v) if precise else v) for k, v in env.items()}
    with np.errstate(all="ignore"):
        return _walk(expr, values, backend)


def _walk(e: sympy.Basic, env: Mapping[str, Any], b: _Backend) -> Any:
    if e.is_Symbol:
        return env[e.name]
    if e.is_Number or e in (sympy.pi, sympy.E):
        return b.number(e)
    if isinstance(e, sympy.Add):
        args = [_walk(a, env, b) for a in e.args]
        total = args[0]
        for a in args[1:]:
            total = total + a
        return total
    if isinstance(e, sympy.Mul):
        args = [_walk(a, env, b) for a in e.args]
        product = args[0]
        for a in args[1:]:
            product = product * a
        return product
    if isinstance(e, sympy.Pow):
        return _power(e, env, b)
    if isinstance(e, sympy.Piecewise):
        return _piecewise(e, env, b)
    if isinstance(e, sympy.core.relational.Relational):
        return _relation(e, env, b)
    func = b.function(e)
    if func is None:
        raise UnsupportedExpression(f"cannot evaluate {e.func} numerically")
    return func(*(_walk(a, env, b) for a in e.args))


def _power(e: sympy.Pow, env: Mapping[str, Any], b: _Backend) -> Any:
    base = _walk(e.base, env, b)
    exp = e.exp
    if exp == sympy.S.Half:
        return mpmath.sqrt(base) if b is _MPMATH else np.sqrt(base)
    if exp.is_Integer:
        n = int(exp)
        if b is _NUMPY:
            return np.power(np.asarray(base, dtype=np.float64), float(n))
        return base**n
    if b is _NUMPY:
        # NumPy's power is nan for a negative base and a fractional exponent, as TensorFlow
        # is; Python's ** on a float would give a complex number.
        return np.power(np.asarray(base, dtype=np.float64), _walk(exp, env, b))
    return base ** _walk(exp, env, b)


def _piecewise(e: sympy.Piecewise, env: Mapping[str, Any], b: _Backend) -> Any:
    if b is _MPMATH:
        for value, cond in e.args:
            if cond is sympy.true or _walk(cond, env, b):
                return _walk(value, env, b)
        return mpmath.nan
    conds = [np.asarray(True if c is sympy.true else _walk(c, env, b)) for _, c in e.args]
    values = [_walk(v, env, b) for v, _ in e.args]
    return np.select(conds, np.broadcast_arrays(*values), default=math.nan)


def _relation(e: sympy.Basic, env: Mapping[str, Any], b: _Backend) -> Any:
    lhs, rhs = (_walk(a, env, b) for a in e.args)
    ops = {
        "<=": lambda: lhs <= rhs,
        "<": lambda: lhs < rhs,
        ">=": lambda: lhs >= rhs,
        ">": lambda: lhs > rhs,
        "==": lambda: lhs == rhs,
        "!=": lambda: lhs != rhs,
    }
    return ops[e.rel_op]()
