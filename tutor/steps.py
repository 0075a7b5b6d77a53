"""Turn ∂L/∂s into named rule steps (the rule engine).

:func:`explain` is the seam between the derivation and the rules: it returns
the steps taken and the closed form they reach.
"""

from __future__ import annotations

import sympy

from .model import Step


def explain(expr: sympy.Expr, symbol: sympy.Symbol) -> tuple[tuple[Step, ...], sympy.Expr]:
    """Return the steps from d(expr)/d(symbol) to its closed form, and that closed form."""
    derivative = sympy.Derivative(expr, symbol)
    raw = sympy.diff(expr, symbol)
    result = tidy(raw)
    step = Step(
        rule="by SymPy",
        before=derivative,
        after=result,
        text=f"SymPy differentiates with respect to {symbol}.",
    )
    return (step,), result


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """Return the form a teacher would write: factored when that is no longer."""
    factored = sympy.factor(expr)
    return factored if sympy.count_ops(factored) <= sympy.count_ops(expr) else expr
