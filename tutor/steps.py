"""Turn ∂L/∂s into named rule steps (the rule engine).

:func:`explain` is the seam between the derivation and the rules: it returns
the steps taken and the closed form they reach. Each :class:`~tutor.model.Step`
says ``before = after`` by one rule from :data:`RULES`; ``after`` may still hold
unevaluated derivatives of pieces, which the step's substeps then resolve.

Every derivation is checked against ``sympy.diff`` before it is returned, so a
wrong rule is an internal error, never a wrong answer shown to a student.

>>> w, x, y = (sympy.Symbol(n, real=True) for n in "wxy")
>>> steps, result = explain((w*x - y)**2, w)
>>> result
2*x*(w*x - y)
>>> [step.rule for step in steps]
['chain', 'simplify']
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeGuard

import numpy as np
import sympy
from sympy import Derivative, S

from ._mathtext import unicode as _m
from .functions import REGISTRY, LossFunction, by_sympy
from .model import Step
from .numeric import UnsupportedExpression, evaluate

#: Every rule name a step may carry.
RULES: tuple[str, ...] = (
    "constant",
    "variable",
    "held constant",
    "sum",
    "constant multiple",
    "product",
    "quotient",
    "power",
    "general power",
    "exponential",
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sigmoid",
    "softplus",
    "huber",
    "relu",
    "abs",
    "max",
    "min",
    "chain",
    "mean over rows",
    "simplify",
    "by SymPy",
)

#: Names tried, in order, for the inner function of a chain rule and for the row index and count.
_INNER_NAMES = ("u", "v", "z", "t", "q")
_INDEX_NAMES = ("i", "j", "k")
_COUNT_NAMES = ("n", "N", "m")

#: ``sympy.factor`` expands before it factors: a sum of two 30th powers takes it seconds, and
#: so does a degree-160 polynomial. Past these bounds ``factor_terms`` tidies without expanding.
_MAX_FACTOR_DEGREE = 12
_MAX_FACTOR_TERMS = 300
_MAX_FACTOR_OPS = 150


def explain(
    expr: sympy.Expr, symbol: sympy.Symbol, *, mean_over_rows: bool = False
) -> tuple[tuple[Step, ...], sympy.Expr]:
    """Return the steps from d(expr)/d(symbol) to its closed form, and that closed form.

    With ``mean_over_rows`` the loss is the mean over data rows of the per-row
    loss ``expr``: the first step says so and holds the per-row derivation as
    its substeps, and the closed form returned is still the per-row partial.
    Raise :class:`RuntimeError` if the steps disagree with ``sympy.diff``.
    """
    root = _derive(expr, symbol)
    result = tidy(root.value)
    verify(expr, symbol, result)
    steps = (root.step, *_simplify_steps(root, result, symbol))
    if mean_over_rows:
        steps = (_mean_step(expr, symbol, steps),)
    return steps, result


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """Return the form a teacher would write: factored when that is no longer, sums led by a plus.

    Only bounded rewrites are tried (``factor``, ``factor_terms``), never ``simplify``.
    """
    candidates = [sympy.factor_terms(expr), expr]
    if _safe_to_factor(expr):
        candidates.insert(0, sympy.factor(expr))
    # min keeps the first of equally long forms, so a factored form wins a tie.
    return min((_tidy_signs(c) for c in candidates), key=sympy.count_ops)


def verify(expr: sympy.Expr, symbol: sympy.Symbol, result: sympy.Expr) -> None:
    """Return None when ``result`` is d(expr)/d(symbol); raise RuntimeError when it is not."""
    reference = sympy.diff(expr, symbol)
    if not equivalent(result, reference, domain=expr):
        raise RuntimeError(
            f"internal error in the rule engine: the steps for d/d{symbol} ({expr}) reached "
            f"{result}, but SymPy's derivative is {reference}; please report this loss"
        )


def equivalent(a: sympy.Expr, b: sympy.Expr, *, domain: sympy.Expr | None = None) -> bool:
    """Return whether ``a`` and ``b`` are equal wherever ``domain`` (default ``a``) is real.

    They are equal when they are the same expression or agree at several random
    real points. When too few points are in the domain, a small difference is
    left to SymPy's ``equals``; a large one is accepted, as nothing shows it is
    not zero (``equals`` can take seconds on large expressions).
    """
    if a == b or (a - b) == 0:
        return True
    verdict = _numeric_verdict(a, b, a if domain is None else domain)
    if verdict is None and sympy.count_ops(a - b) <= _MAX_EQUALS_OPS:
        verdict = (a - b).equals(0)
    return verdict is not False


def rules_used(steps: Iterable[Step]) -> set[str]:
    """Return the names of every rule in a step tree, substeps included."""
    names: set[str] = set()
    for step in steps:
        names |= {step.rule} | rules_used(step.substeps)
    return names


# The derivation: one function per rule, each returning its step and the derivative it reached.


class _Derived(NamedTuple):
    step: Step
    value: sympy.Expr


def _derive(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    """Return the step tree for d(expr)/ds and the (unsimplified) derivative it reaches."""
    if not expr.has(s):
        return _constant(expr, s)
    if expr == s:
        return _variable(s)
    if expr.is_Add:
        return _sum(expr, s)
    if expr.is_Mul:
        return _product(expr, s)
    if expr.is_Pow:
        return _power(expr, s)
    rule = _rule_of(expr.func)
    return _by_sympy(expr, s) if rule is None else _apply(expr, s, rule)


def _constant(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    before = Derivative(expr, s)
    if not expr.free_symbols:
        text = f"{_m(expr)} is a number, and the derivative of a constant is 0."
        return _Derived(Step("constant", before, S.Zero, text), S.Zero)
    if expr.is_Symbol:
        text = (
            f"Treat {_m(expr)} as a constant: this is a partial derivative, so every symbol "
            f"other than {_m(s)} is held fixed, and d/d{_m(s)} {_m(expr)} = 0."
        )
    else:
        text = (
            f"{_m(expr)} does not involve {_m(s)}: in a partial derivative every symbol other than "
            f"{_m(s)} is held fixed, so d/d{_m(s)} ({_m(expr)}) = 0."
        )
    return _Derived(Step("held constant", before, S.Zero, text), S.Zero)


def _variable(s: sympy.Symbol) -> _Derived:
    text = f"The derivative of {_m(s)} with respect to itself is 1."
    return _Derived(Step("variable", Derivative(s, s), S.One, text), S.One)


def _sum(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    parts = [_signed(term) for term in expr.args]
    derived = [_derive(term, s) for _, term in parts]
    after = sympy.Add(*(sgn * Derivative(term, s) for sgn, term in parts))
    value = sympy.Add(*(sgn * d.value for (sgn, _), d in zip(parts, derived, strict=True)))
    text = f"Sum rule: differentiate term by term, d/d{_m(s)} (f ± g) = df/d{_m(s)} ± dg/d{_m(s)}."
    step = Step("sum", Derivative(expr, s), after, text, tuple(d.step for d in derived))
    return _Derived(step, value)


def _signed(term: sympy.Expr) -> tuple[int, sympy.Expr]:
    """Split a term into its sign and the rest, so ``w - y`` reads d/dw w - d/dw y."""
    return (-1, -term) if term.could_extract_minus_sign() else (1, term)


def _product(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    constant, varying = expr.as_independent(s, as_Add=False)
    if constant != 1:
        return _constant_multiple(expr, s, constant, varying)
    numerator, denominator = _split_fraction(expr.args)
    if numerator != 1 and denominator.has(s):
        return _quotient(expr, s, numerator, denominator)
    return _product_rule(expr, s)


def _constant_multiple(expr: sympy.Expr, s: sympy.Symbol, c: sympy.Expr, f: sympy.Expr) -> _Derived:
    inner = _derive(f, s)
    if c.free_symbols:
        # Saying why c is a constant (d/ds c = 0) is the point of a partial derivative.
        why = f"{_m(c)} is held constant (this is a partial derivative with respect to {_m(s)})"
        substeps: tuple[Step, ...] = (_constant(c, s).step, inner.step)
    else:
        why = f"the factor {_m(c)} is a number"
        substeps = (inner.step,)
    text = (
        f"Constant multiple: {why}, so it stays in front: d/d{_m(s)} (c·f) = c · df/d{_m(s)} "
        f"with c = {_m(c)} and f = {_m(f)}."
    )
    step = Step("constant multiple", Derivative(expr, s), c * Derivative(f, s), text, substeps)
    return _Derived(step, c * inner.value)


def _split_fraction(factors: tuple[sympy.Expr, ...]) -> tuple[sympy.Expr, sympy.Expr]:
    """Return (numerator, denominator) of a product: SymPy stores a/b as a*b**-1."""
    top, bottom = [], []
    for f in factors:
        base, exponent = f.as_base_exp()
        if exponent.is_number and exponent.is_negative:
            bottom.append(base**-exponent)
        else:
            top.append(f)
    return sympy.Mul(*top), sympy.Mul(*bottom)


def _quotient(expr: sympy.Expr, s: sympy.Symbol, f: sympy.Expr, g: sympy.Expr) -> _Derived:
    top, bottom = _derive(f, s), _derive(g, s)
    after = (Derivative(f, s) * g - f * Derivative(g, s)) / g**2
    value = (top.value * g - f * bottom.value) / g**2
    text = (
        f"Quotient rule with numerator f = {_m(f)} and denominator g = {_m(g)}: "
        f"d/d{_m(s)} (f/g) = (f'·g − f·g')/g²."
    )
    step = Step("quotient", Derivative(expr, s), after, text, (top.step, bottom.step))
    return _Derived(step, value)


def _product_rule(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    factors = expr.args
    derived = [_derive(f, s) for f in factors]
    after, value = S.Zero, S.Zero
    for k, (f, d) in enumerate(zip(factors, derived, strict=True)):
        others = sympy.Mul(*factors[:k], *factors[k + 1 :])
        after += others * Derivative(f, s)
        value += others * d.value
    listed = ", ".join(_m(f) for f in factors)
    text = (
        f"Product rule on the factors {listed}: differentiate one factor at a time, keeping "
        f"the others, and add: d/d{_m(s)} (f·g) = f'·g + f·g'."
    )
    step = Step("product", Derivative(expr, s), after, text, tuple(d.step for d in derived))
    return _Derived(step, value)


def _power(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    base, exponent = expr.args
    if base.has(s) and exponent.has(s):
        return _general_power(expr, s)
    if exponent.has(s) and base.is_zero:
        return _by_sympy(expr, s)  # 0**u is 0 for u > 0 and undefined elsewhere: no rule fits
    if exponent.has(s):
        return _apply(expr, s, _EXPONENTIAL)
    if exponent == S.Half:
        return _apply(expr, s, _function_rule(REGISTRY["sqrt"]))
    return _apply(expr, s, _POWER)


def _general_power(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    base, exponent = expr.args
    rewritten = exponent * sympy.log(base)
    inner = _derive(rewritten, s)
    text = (
        f"General power: base and exponent both depend on {_m(s)}, so rewrite "
        f"{_m(expr)} = exp({_m(rewritten)}); by the exp rule its derivative is "
        f"{_m(expr)} · d/d{_m(s)} "
        f"({_m(rewritten)}) (for {_m(base)} > 0)."
    )
    after = expr * Derivative(rewritten, s)
    step = Step("general power", Derivative(expr, s), after, text, (inner.step,))
    return _Derived(step, expr * inner.value)


def _by_sympy(expr: sympy.Expr, s: sympy.Symbol) -> _Derived:
    value = sympy.diff(expr, s)
    text = (
        f"No rule of this tutor covers {expr.func.__name__}, so SymPy differentiates "
        f"{_m(expr)} with respect to {_m(s)} directly."
    )
    return _Derived(Step("by SymPy", Derivative(expr, s), value, text), value)


# Functions of one or more arguments: a rule gives the partial derivative for each argument.


@dataclass(frozen=True)
class _Rule:
    """A differentiation rule for f(a₀, a₁, …): its name, ∂f/∂aₖ, and the sentence saying it."""

    name: str
    partial: Callable[[sympy.Expr, int], sympy.Expr]
    text: Callable[[sympy.Expr, sympy.Symbol], str]


def _apply(expr: sympy.Expr, s: sympy.Symbol, rule: _Rule) -> _Derived:
    """Return the rule applied to expr: directly, or by the chain rule when one argument varies."""
    varying = [k for k, a in enumerate(expr.args) if a.has(s)]
    if len(varying) == 1 and expr.args[varying[0]] != s:
        return _chain(expr, s, rule, varying[0])
    return _direct(expr, s, rule, varying)


def _direct(expr: sympy.Expr, s: sympy.Symbol, rule: _Rule, varying: list[int]) -> _Derived:
    after, value, substeps = S.Zero, S.Zero, []
    for k in varying:
        arg, partial = expr.args[k], rule.partial(expr, k)
        if arg == s:
            after, value = after + partial, value + partial
            continue
        inner = _derive(arg, s)
        after += partial * Derivative(arg, s)
        value += partial * inner.value
        substeps.append(inner.step)
    text = rule.text(expr, s)
    if len(varying) > 1:
        text = (
            f"Several arguments depend on {_m(s)}, so add each argument's partial derivative "
            f"times that argument's derivative (multivariable chain rule). {text}"
        )
    return _Derived(Step(rule.name, Derivative(expr, s), after, text, tuple(substeps)), value)


def _chain(expr: sympy.Expr, s: sympy.Symbol, rule: _Rule, k: int) -> _Derived:
    inner_expr = expr.args[k]
    u = sympy.Symbol(_fresh(_INNER_NAMES, expr), real=True)
    outer = expr.func(*(u if j == k else a for j, a in enumerate(expr.args)))
    if outer.func != expr.func:
        # SymPy evaluated f(u) to something else (no known case): show no rule it did not use.
        return _by_sympy(expr, s)
    outer_step = _direct(outer, u, rule, [outer.args.index(u)]).step
    inner = _derive(inner_expr, s)
    # Substituting factor by factor keeps 2·(w·x − y) whole; SymPy would distribute the 2.
    factors = [f.xreplace({u: inner_expr}) for f in sympy.Mul.make_args(outer_step.after)]
    after = sympy.Mul(*factors, Derivative(inner_expr, s))
    text = (
        f"Chain rule with the inner function {_m(u)} = {_m(inner_expr)}: "
        f"d/d{_m(s)} {_m(outer)} = {_grouped(outer_step.after)} · d{_m(u)}/d{_m(s)}."
    )
    step = Step("chain", Derivative(expr, s), after, text, (outer_step, inner.step))
    return _Derived(step, sympy.Mul(*factors, inner.value))


def _grouped(expr: sympy.Expr) -> str:
    """Return expr as text, in parentheses when it is a sum, so '· du/dw' multiplies all of it."""
    return f"({_m(expr)})" if expr.is_Add else _m(expr)


def _fresh(names: Iterable[str], *exprs: sympy.Expr) -> str:
    """Return the first of ``names`` that no symbol of ``exprs`` already uses."""
    taken = {str(sym) for e in exprs for sym in e.free_symbols}
    for name in names:
        if name not in taken:
            return name
    return next(f"u{_m(i)}" for i in range(1, len(taken) + 2) if f"u{_m(i)}" not in taken)


def _power_text(e: sympy.Expr, v: sympy.Symbol) -> str:
    n = e.args[1]
    return (
        f"Power rule: d/d{_m(v)} {_m(v)}ⁿ = n·{_m(v)}ⁿ⁻¹, here with n = {_m(n)}: "
        f"d/d{_m(v)} {_m(e)} = {_m(n * v ** (n - 1))}."
    )


_POWER = _Rule("power", lambda e, k: e.args[1] * e.args[0] ** (e.args[1] - 1), _power_text)

_EXPONENTIAL = _Rule(
    "exponential",
    lambda e, k: e * sympy.log(e.args[0]),
    lambda e, v: (
        f"Exponential with the constant base a = {_m(e.args[0])}: "
        f"a^{_m(v)} = exp({_m(v)}·log(a)), so "
        f"d/d{_m(v)} a^{_m(v)} = a^{_m(v)} · log(a)."
    ),
)


def _function_rule(record: LossFunction) -> _Rule:
    """Return the rule of a function a loss may call, from its record in the registry."""
    return _Rule(
        record.name,
        lambda e, k: record.derivative(e.args, k),
        record.rule,
    )


def _rule_of(func: object) -> _Rule | None:
    """Return the rule for the function ``func`` (a SymPy class), or None when there is none."""
    record = by_sympy(func)
    return None if record is None else _function_rule(record)


def rule_names() -> tuple[str, ...]:
    """Return :data:`RULES` and the rule of every function registered since."""
    return RULES + tuple(name for name in REGISTRY if name not in RULES)


# The steps around the derivation: the final simplification and the mean over rows.


def _simplify_steps(root: _Derived, result: sympy.Expr, s: sympy.Symbol) -> tuple[Step, ...]:
    """Return the step that puts the pieces together and tidies them, unless it changes nothing."""
    before = root.step.after
    if before == result:
        return ()
    tidied = "" if root.value == result else f", which gives {_m(root.value)}, and tidy that"
    if before.has(Derivative):
        text = (
            f"Put the pieces together: replace each remaining derivative d/d{_m(s)} (…) by what "
            f"its steps above found{tidied}."
        )
    else:
        text = "Tidy the result: factor it and lead each sum with a plus sign."
    return (Step("simplify", before, result, text),)


def _mean_step(expr: sympy.Expr, s: sympy.Symbol, per_row: tuple[Step, ...]) -> Step:
    """Return the step from the mean over rows to the mean of per-row derivatives."""
    i = sympy.Symbol(_fresh(_INDEX_NAMES, expr), integer=True, positive=True)
    n = sympy.Symbol(_fresh(_COUNT_NAMES, expr), integer=True, positive=True)
    before = Derivative(sympy.Sum(expr, (i, 1, n)) / n, s)
    after = sympy.Sum(Derivative(expr, s), (i, 1, n)) / n
    text = (
        f"The loss is the mean over the data rows {_m(i)} = 1…{_m(n)} of the per-row loss, and the "
        f"derivative of a mean over rows is the mean of the per-row derivatives (each data "
        f"column stands for its value in row {_m(i)}); the per-row derivative follows."
    )
    return Step("mean over rows", before, after, text, per_row)


# Tidying signs: teachers write 2x(w − y)/(w − y)² rather than −2x(y − w)/(−w + y)².


def _tidy_signs(expr: sympy.Expr) -> sympy.Expr:
    """Return ``expr`` with squared sums led by a plus and a leading minus moved into a sum."""
    if not (expr.is_Mul or expr.is_Pow):
        return expr
    coeff, rest = expr.as_coeff_Mul()
    factors = [_even_led_positive(f) for f in sympy.Mul.make_args(rest)]
    odd = [k for k, f in enumerate(factors) if _odd_power_of_sum(f)]
    if coeff.is_negative and odd:
        # Prefer the sum whose negation still reads with a plus in front: -(σ - 1) → 1 - σ.
        k = next((k for k in odd if not _leads_negative(-factors[k].as_base_exp()[0])), odd[0])
        base, exponent = factors[k].as_base_exp()
        coeff, factors[k] = -coeff, (-base) ** exponent
    if factors == list(sympy.Mul.make_args(rest)) and coeff == expr.as_coeff_Mul()[0]:
        return expr
    return sympy.Mul(coeff, *factors)


def _even_led_positive(factor: sympy.Expr) -> sympy.Expr:
    """Return an even power of a sum with the sum led by a positive term: (w - y)², not (y - w)²."""
    base, exponent = factor.as_base_exp()
    if base.is_Add and exponent.is_even and _leads_negative(base):
        return (-base) ** exponent
    return factor


def _odd_power_of_sum(factor: sympy.Expr) -> bool:
    base, exponent = factor.as_base_exp()
    return bool(base.is_Add and exponent.is_odd)


def _leads_negative(expr: sympy.Expr) -> bool:
    """Return whether the term SymPy prints first carries a minus sign."""
    return bool(expr.as_ordered_terms()[0].could_extract_minus_sign())


def _safe_to_factor(expr: sympy.Expr) -> bool:
    """Return whether ``sympy.factor`` stays fast: modest degrees, size and expanded length."""
    degrees = (abs(p.exp) for p in expr.atoms(sympy.Pow) if p.exp.is_Integer)
    return (
        max(degrees, default=0) <= _MAX_FACTOR_DEGREE
        and sympy.count_ops(expr) <= _MAX_FACTOR_OPS
        and _expanded_terms(expr) <= _MAX_FACTOR_TERMS
    )


def _expanded_terms(expr: sympy.Expr) -> int:
    """Return an upper bound on the number of terms of ``expr`` multiplied out."""
    if expr.is_Add:
        return sum(_expanded_terms(a) for a in expr.args)
    if expr.is_Mul:
        return math.prod(_expanded_terms(a) for a in expr.args)
    if expr.is_Pow and expr.exp.is_Integer:
        terms, n = _expanded_terms(expr.base), abs(int(expr.exp))
        return math.comb(terms + n - 1, n)  # monomials of degree n in that many terms
    return 1


# Numeric comparison: several random real points, in float64 and, where needed, 40 digits.

_PRECISION = 40
_POINTS_NEEDED = 4
_MAX_EQUALS_OPS = 30
#: Boxes the random points are drawn from, in turn: small values of either sign, small
#: positive ones (the domain of log and sqrt), and the same over a wider range.
_BOXES = ((-1.5, 1.5), (0.1, 1.5), (-10.0, 10.0), (0.1, 10.0))
_ATTEMPTS = 8 * len(_BOXES)


def _numeric_verdict(a: sympy.Expr, b: sympy.Expr, domain: sympy.Expr) -> bool | None:
    """Return whether a and b agree at random points where ``domain`` is real; None if unsure."""
    points = _random_points(a.free_symbols | b.free_symbols | domain.free_symbols)
    agreed = 0
    for point in points:
        verdict = _verdict_at(a, b, domain, point)
        if verdict is False:
            return False
        agreed += verdict is True
        if agreed == _POINTS_NEEDED:
            return True
    # Nowhere real at these points: equal complex values still show a and b are the same.
    return True if _agree_as_complex(a, b, points) else None


def _random_points(symbols: set[sympy.Symbol]) -> list[dict[sympy.Symbol, float]]:
    """Return the points to compare at, drawn in turn from each of :data:`_BOXES`."""
    rng = random.Random(1729)  # fixed, so a check that passes once passes every time
    ordered = sorted(symbols, key=str)
    boxes = (_BOXES[k % len(_BOXES)] for k in range(_ATTEMPTS))
    return [{sym: rng.uniform(low, high) for sym in ordered} for low, high in boxes]


def _agree_as_complex(
    a: sympy.Expr, b: sympy.Expr, points: list[dict[sympy.Symbol, float]]
) -> bool:
    """Return whether a and b have the same (possibly complex) value at enough points."""
    agreed = 0
    for point in points:
        if not (_tame(a, point) and _tame(b, point)):
            continue
        exact = {sym: sympy.Float(value, _PRECISION) for sym, value in point.items()}
        x, y = _value(a, exact), _value(b, exact)
        if x is None or y is None:
            continue
        if not _close(x, y):
            return False
        agreed += 1
        if agreed == _POINTS_NEEDED:
            return True
    return False


def _verdict_at(
    a: sympy.Expr, b: sympy.Expr, domain: sympy.Expr, point: dict[sympy.Symbol, float]
) -> bool | None:
    """Return whether a and b agree at point; None where the point tells nothing.

    float64 first, where every non-real intermediate value is NaN, so the domain
    is where the loss and all its parts are real. Where float64 cannot evaluate,
    or disagrees, 40 significant digits decide, unless some part overflows float64
    (exp of exp of exp: its exact value can take minutes).
    """
    where, x, y = (_float_value(e, point) for e in (domain, a, b))
    if where is not None and not math.isfinite(where):
        return None
    if _finite(x) and _finite(y) and _close(x, y):
        return True
    if not all(_tame(e, point) for e in (domain, a, b)):
        return None
    exact = {sym: sympy.Float(value, _PRECISION) for sym, value in point.items()}
    if where is None and not isinstance(_value(domain, exact), float):
        return None  # the domain is not real here, or cannot be evaluated
    x_exact, y_exact = _value(a, exact), _value(b, exact)
    if x_exact is None or y_exact is None:
        return None
    return _close(x_exact, y_exact)


def _float_value(expr: sympy.Expr, point: dict[sympy.Symbol, float]) -> float | None:
    """Return expr in float64 at point (NaN where any part is not real), or None if unsupported."""
    # NumPy scalars, not Python floats: (-2.0)**0.5 is then NaN rather than complex.
    env = {sym.name: np.float64(value) for sym, value in point.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            number = complex(evaluate(expr, env))
    except Warning:
        return math.nan
    except OverflowError:
        return math.inf
    except (UnsupportedExpression, TypeError, ValueError, KeyError, ZeroDivisionError):
        return None
    return number.real if number.imag == 0 else math.nan


def _tame(expr: sympy.Expr, point: dict[sympy.Symbol, float]) -> bool:
    """Return whether no part of expr overflows float64 at point."""
    for part in sympy.preorder_traversal(expr):
        value = _float_value(part, point) if part.args else None
        if value is not None and math.isinf(value):
            return False
    return True


def _value(expr: sympy.Expr, point: dict[sympy.Symbol, sympy.Float]) -> complex | None:
    """Return expr's value at point, or None where it is not a finite number."""
    try:
        number = complex(expr.xreplace(point).evalf(_PRECISION))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not (math.isfinite(number.real) and math.isfinite(number.imag)):
        return None
    # A real expression can pick up a rounding-sized imaginary part; it is still real.
    return number.real if abs(number.imag) <= 1e-20 * max(1.0, abs(number.real)) else number


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _close(x: complex, y: complex) -> bool:
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y)) + 1e-12
