"""The rule engine: named steps from ∂L/∂s to the closed form, each one checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import sympy
from hypothesis import given
from strategies import losses_and_symbols, teaching_losses
from sympy import (
    Abs,
    E,
    Heaviside,
    Max,
    Min,
    Piecewise,
    Rational,
    cos,
    exp,
    log,
    pi,
    sign,
    sin,
    sqrt,
    tan,
    tanh,
)

from tutor import steps as engine
from tutor.expression import make_symbol
from tutor.functions import REGISTRY, huber, registered, relu, sigmoid, softplus
from tutor.model import Step
from tutor.steps import RULES, equivalent, explain, rules_used, tidy

w, x, y = (make_symbol(n) for n in "wxy")


def walk(tree: tuple[Step, ...]) -> Iterator[Step]:
    """Every step of a tree, parents before their substeps."""
    for step in tree:
        yield step
        yield from walk(step.substeps)


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Whether two closed forms are equal: identical, simplified to the same, or numerically."""
    return a == b or sympy.simplify(a - b) == 0 or equivalent(a, b)


# (loss, symbol, expected closed form, rules the step tree must use), by readable id.
TEXTBOOK = {
    "number": (sympy.Integer(5), w, 0, {"constant"}),
    "pi": (pi, w, 0, {"constant"}),
    "the variable": (w, w, 1, {"variable"}),
    "another symbol": (y, w, 0, {"held constant"}),
    "an expression of other symbols": (sin(x * y), w, 0, {"held constant"}),
    "linear": (3 * w + 2, w, 3, {"sum", "constant multiple", "variable", "constant"}),
    "polynomial": (w**3 - 2 * w**2 + 5, w, 3 * w**2 - 4 * w, {"sum", "power", "constant"}),
    "symbolic coefficient": (x * w, w, x, {"constant multiple", "held constant", "variable"}),
    "squared error wrt w": (
        (w * x - y) ** 2,
        w,
        2 * x * (w * x - y),
        {"chain", "power", "sum", "constant multiple", "held constant", "variable"},
    ),
    "squared error wrt x": ((w * x - y) ** 2, x, 2 * w * (w * x - y), {"chain", "power"}),
    "squared error wrt y": ((w * x - y) ** 2, y, 2 * (y - w * x), {"chain", "power", "sum"}),
    "ridge": (
        (w * x - y) ** 2 + Rational(1, 10) * w**2,
        w,
        2 * x * (w * x - y) + w / 5,
        {"sum", "chain", "power", "constant multiple"},
    ),
    "cubic of a sum": ((2 * w + 1) ** 3, w, 6 * (2 * w + 1) ** 2, {"chain", "power"}),
    "product": (w * exp(w), w, (w + 1) * exp(w), {"product", "exp", "variable"}),
    "product of three": (
        w * sin(w) * cos(w),
        w,
        sin(w) * cos(w) + w * cos(w) ** 2 - w * sin(w) ** 2,
        {"product", "sin", "cos", "variable"},
    ),
    "quotient": (sin(w) / w, w, (w * cos(w) - sin(w)) / w**2, {"quotient", "sin", "variable"}),
    "quotient of polynomials": (
        (w**2 + 1) / (w - 1),
        w,
        (w**2 - 2 * w - 1) / (w - 1) ** 2,
        {"quotient", "sum", "power"},
    ),
    "logistic as a quotient": (
        exp(w) / (1 + exp(w)),
        w,
        exp(w) / (1 + exp(w)) ** 2,
        {"quotient", "exp"},
    ),
    "difference of logs": (
        log(w) - log(w + 1),
        w,
        1 / (w * (w + 1)),
        {"sum", "log", "combine fractions"},
    ),
    "reciprocal": (1 / w, w, -1 / w**2, {"power"}),
    "reciprocal of a sum": (1 / (1 + w**2), w, -2 * w / (1 + w**2) ** 2, {"chain", "power"}),
    "negative power": (w**-3, w, -3 / w**4, {"power"}),
    "sqrt": (sqrt(w), w, 1 / (2 * sqrt(w)), {"sqrt"}),
    "norm": (sqrt(w**2 + x**2), w, w / sqrt(w**2 + x**2), {"chain", "sqrt", "held constant"}),
    "three halves power": (w ** Rational(3, 2), w, Rational(3, 2) * sqrt(w), {"power"}),
    "symbolic exponent": (w**x, w, x * w ** (x - 1), {"power"}),
    "general power": (w**w, w, w**w * (log(w) + 1), {"general power", "product", "log"}),
    "constant base": (2**w, w, 2**w * log(2), {"exponential"}),
    "exp": (exp(w), w, exp(w), {"exp"}),
    "gaussian": (exp(-(w**2)), w, -2 * w * exp(-(w**2)), {"chain", "exp", "power"}),
    "log": (log(w), w, 1 / w, {"log"}),
    "log of a product": (log(w * x), w, 1 / w, {"chain", "log", "constant multiple"}),
    "log of a sum": (log(1 + w**2), w, 2 * w / (1 + w**2), {"chain", "log", "power"}),
    "sin": (sin(w), w, cos(w), {"sin"}),
    "sin of a product": (sin(w * x), w, x * cos(w * x), {"chain", "sin"}),
    "cos": (cos(w), w, -sin(w), {"cos"}),
    "cos of a multiple": (cos(2 * w), w, -2 * sin(2 * w), {"chain", "cos"}),
    "tan": (tan(w), w, 1 + tan(w) ** 2, {"tan"}),
    "tanh": (tanh(w), w, 1 - tanh(w) ** 2, {"tanh"}),
    "tanh of a product": (tanh(w * x), w, x * (1 - tanh(w * x) ** 2), {"chain", "tanh"}),
    "nested chain": (sin(exp(w)), w, exp(w) * cos(exp(w)), {"chain", "sin", "exp"}),
    "sigmoid": (sigmoid(w), w, sigmoid(w) * (1 - sigmoid(w)), {"sigmoid"}),
    "sigmoid of a product": (
        sigmoid(w * x),
        w,
        x * sigmoid(w * x) * (1 - sigmoid(w * x)),
        {"chain", "sigmoid"},
    ),
    "cross-entropy": (
        -y * log(sigmoid(w * x)) - (1 - y) * log(1 - sigmoid(w * x)),
        w,
        x * (sigmoid(w * x) - y),
        {"sum", "chain", "log", "sigmoid", "constant multiple", "held constant"},
    ),
    "softplus": (softplus(w), w, sigmoid(w), {"softplus"}),
    "logistic loss as softplus": (
        softplus(-y * w * x),
        w,
        -x * y * sigmoid(-w * x * y),
        {"chain", "softplus", "constant multiple"},
    ),
    "relu": (relu(w), w, Heaviside(w, 0), {"relu"}),
    "relu of an affine map": (relu(w * x + y), w, x * Heaviside(w * x + y, 0), {"chain", "relu"}),
    "abs": (Abs(w), w, sign(w), {"abs"}),
    "absolute error": (Abs(w * x - y), w, x * sign(w * x - y), {"chain", "abs"}),
    "max with zero": (Max(0, w), w, Heaviside(w), {"max"}),
    "hinge": (
        Max(0, 1 - y * w * x),
        w,
        -x * y * Heaviside(1 - w * x * y),
        {"chain", "max", "sum", "constant multiple"},
    ),
    "min": (Min(w, x), w, Heaviside(x - w), {"min"}),
    "min of two varying arguments": (
        Min(w, w * x),
        w,
        Heaviside(w * x - w) + x * Heaviside(w - w * x),
        {"min", "constant multiple"},
    ),
    "huber": (huber(w, 1), w, Piecewise((w, Abs(w) <= 1), (sign(w), True)), {"huber"}),
    "huber of a residual": (
        huber(w * x - y, 1),
        w,
        x * Piecewise((w * x - y, Abs(w * x - y) <= 1), (sign(w * x - y), True)),
        {"chain", "huber", "sum"},
    ),
    "huber threshold": (
        huber(x, w),
        w,
        Piecewise((0, Abs(x) <= w), (Abs(x) - w, True)),
        {"huber"},
    ),
    "euler's number": (E**w, w, exp(w), {"exp"}),
}


@pytest.mark.parametrize("loss, symbol, expected, rules", TEXTBOOK.values(), ids=TEXTBOOK.keys())
def test_textbook_derivatives(loss, symbol, expected, rules):
    steps, result = explain(loss, symbol)
    expected = sympy.Integer(expected) if isinstance(expected, int) else expected
    assert same(result, expected), f"{result} != {expected}"
    assert rules <= rules_used(steps), f"missing {rules - rules_used(steps)}"
    assert rules_used(steps) <= set(RULES) - {"by SymPy"}


def test_the_table_covers_every_rule_of_a_loss():
    used = set().union(*(rules_used(explain(loss, s)[0]) for loss, s, _, _ in TEXTBOOK.values()))
    assert used == set(RULES) - {"mean over rows", "by SymPy"}


def test_squared_error_reads_as_a_teacher_derives_it():
    steps, result = explain((w * x - y) ** 2, w)
    assert result == 2 * x * (w * x - y)
    chain = steps[0]
    assert chain.rule == "chain"
    assert chain.before == sympy.Derivative((w * x - y) ** 2, w)
    assert "inner function u = wx − y" in chain.text
    assert any(s.rule == "power" and s.after == 2 * make_symbol("u") for s in chain.substeps)
    held = [s.before for s in walk(steps) if s.rule == "held constant"]
    assert sympy.Derivative(x, w) in held
    assert sympy.Derivative(y, w) in held
    assert steps[-1].rule == "simplify" and steps[-1].after == result


def test_chain_rule_only_when_the_argument_is_not_the_symbol_itself():
    assert [s.rule for s in explain(sin(w), w)[0]] == ["sin"]
    assert explain(sin(2 * w), w)[0][0].rule == "chain"


def test_the_inner_function_is_not_named_like_a_symbol_of_the_loss():
    u = make_symbol("u")
    chain = explain((u * w - 1) ** 2, w)[0][0]
    assert "inner function v = uw − 1" in chain.text
    assert chain.substeps[0].before == sympy.Derivative(make_symbol("v") ** 2, make_symbol("v"))


@pytest.mark.parametrize(
    "loss, phrases",
    [
        (relu(w), ["not differentiable at w = 0", "tf.nn.relu", "subgradient 0"]),
        (Abs(w), ["not differentiable at w = 0", "tf.abs", "sign(0) = 0"]),
        (
            Max(w, x),
            ["tie", "H(0) = 1/2", "tf.maximum", "first argument", "a ≥ b", "reorder"],
        ),
        (Min(w, x), ["tie", "H(0) = 1/2", "tf.minimum", "first argument", "a ≤ b"]),
    ],
    ids=["relu", "abs", "max", "min"],
)
def test_kinks_are_named_with_the_subgradient_tensorflow_uses(loss, phrases):
    text = explain(loss, w)[0][0].text
    for phrase in phrases:
        assert phrase in text


def test_sigmoid_stays_sigmoid():
    steps, result = explain(log(sigmoid(w * x)), w)
    assert not result.has(exp)
    assert not any(s.after.has(exp) for s in walk(steps))


def test_huber_explains_both_regions():
    text = explain(huber(w, 1), w)[0][0].text
    assert "|r| ≤ d" in text and "d·sign(r)" in text


def test_mean_over_rows_wraps_the_per_row_derivation():
    loss = (w * x - y) ** 2
    per_row, result = explain(loss, w)
    steps, mean_result = explain(loss, w, mean_over_rows=True)
    assert mean_result == result
    (mean,) = steps
    assert mean.rule == "mean over rows"
    assert mean.substeps == per_row
    assert "mean of the per-row derivatives" in mean.text
    (total,) = mean.before.expr.atoms(sympy.Sum)
    assert total.function == loss  # shown as a sum over rows, never expanded
    assert equivalent(mean.before.doit(), mean.after.doit())


def test_mean_over_rows_names_its_index_apart_from_the_loss_symbols():
    n, i = make_symbol("n"), make_symbol("i")
    (mean,) = explain((w * n - i) ** 2, w, mean_over_rows=True)[0]
    (total,) = mean.before.expr.atoms(sympy.Sum)
    index, _, count = total.limits[0]
    assert (str(index), str(count)) == ("j", "N")


@pytest.mark.parametrize(
    "loss",
    [
        sympy.Function("f")(w),
        sympy.Function("g")(w * x) + w**2,
        sympy.Derivative(w**3, w),
        Piecewise((w**2, w > 0), (w, True)),
    ],
    ids=["unknown function", "unknown function in a sum", "derivative", "piecewise"],
)
def test_what_no_rule_covers_is_handed_to_sympy_openly(loss):
    steps, result = explain(loss, w)
    fallbacks = [s for s in walk(steps) if s.rule == "by SymPy"]
    assert fallbacks and all("SymPy differentiates" in s.text for s in fallbacks)
    assert equivalent(result, sympy.diff(loss, w), domain=loss)


def test_a_wrong_rule_is_an_internal_error():
    wrong = dataclasses.replace(REGISTRY["cos"], derivative=lambda args, k: sin(args[0]))
    with registered(wrong), pytest.raises(RuntimeError, match="internal error"):
        explain(cos(w * x), w)


def test_a_wrong_simplification_is_an_internal_error(monkeypatch):
    monkeypatch.setattr(engine, "tidy", lambda e: 2 * e)
    with pytest.raises(RuntimeError, match="SymPy's derivative is"):
        explain((w * x - y) ** 2, w)


def test_equivalent_catches_a_dropped_factor_and_a_sign():
    right = 2 * x * (w * x - y)
    assert equivalent(right, 2 * w * x**2 - 2 * x * y)
    assert not equivalent(right, x * (w * x - y))
    assert not equivalent(right, 2 * x * (y - w * x))


def test_equivalent_compares_only_where_the_domain_is_real():
    assert equivalent(log(w**2), 2 * log(w), domain=log(w))
    assert not equivalent(log(w**2), 2 * log(w))


def test_tidy_factors_and_leads_sums_with_a_plus():
    assert tidy(2 * w * x**2 - 2 * x * y) == 2 * x * (w * x - y)
    messy = -(-(w**2) + 2 * w * y + x) / (-w + y) ** 2
    assert tidy(messy) == (w**2 - 2 * w * y - x) / (w - y) ** 2


def test_tidy_does_not_expand_high_powers():
    tidied = tidy(30 * (w + x) ** 29 + 30 * (w - y) ** 29)
    assert sympy.count_ops(tidied) < 20


def test_every_step_is_one_plain_sentence_and_a_known_rule():
    for loss, symbol, _, _ in TEXTBOOK.values():
        for step in walk(explain(loss, symbol)[0]):
            assert step.rule in RULES
            assert step.text.endswith(".") and "\n" not in step.text


# Properties over random losses built from every function a loss may use.


@given(losses_and_symbols())
def test_the_result_is_sympys_derivative(problem):
    loss, symbol = problem
    _, result = explain(loss, symbol)
    assert equivalent(result, sympy.diff(loss, symbol), domain=loss)


@given(losses_and_symbols())
def test_every_step_is_an_equality_of_derivatives(problem):
    loss, symbol = problem
    for step in walk(explain(loss, symbol)[0]):
        assert equivalent(step.before.doit(), step.after.doit(), domain=loss), step


@given(losses_and_symbols())
def test_losses_of_supported_functions_need_no_fallback(problem):
    loss, symbol = problem
    used = rules_used(explain(loss, symbol)[0])
    assert "by SymPy" not in used
    assert used <= set(RULES)


# Derivations that teach: results stated, the algebra as named moves, one naming scheme.


def moves(steps: tuple[Step, ...]) -> list[Step]:
    """The algebra's named moves: the substeps of the simplify step (or the step itself)."""
    found = [s for s in walk(steps) if s.rule == "simplify"]
    return [m for s in found for m in (s.substeps or (s,))]


def test_the_logistic_cancellation_is_shown_move_by_move():
    from tutor import derive, load

    partial = derive(load("logistic")).partial("w")
    b = make_symbol("b")
    z = sigmoid(b + w * x)
    algebra = moves(partial.steps)
    assert [m.rule for m in algebra] == ["substitute", "cancel", "expand", "collect", "factor"]
    cancel, collect, factor = algebra[1], algebra[3], algebra[4]
    assert cancel.after == x * (1 - y) * z - x * y * (1 - z)
    assert "Cancel the common factors" in cancel.text and "σ(b + wx)" in cancel.text
    assert collect.after == x * z - x * y
    assert factor.after == x * (z - y) == partial.result


def test_a_quotients_numerator_is_collected_in_its_own_step():
    algebra = moves(explain(w / (1 + w**2), w)[0])
    collect = next(m for m in algebra if m.rule == "collect")
    assert collect.after == (1 - w**2) / (w**2 + 1) ** 2
    assert "w² + 1 − 2w² = 1 − w²" in collect.text


def test_a_sigmoid_written_with_exp_ends_at_a_sigma_form_and_says_so():
    b = make_symbol("b")
    p = 1 / (1 + exp(-(w * x + b)))
    steps, result = explain(-(y * log(p) + (1 - y) * log(1 - p)), w)
    assert result == x * (sigmoid(b + w * x) - y)
    identity = next(m for m in moves(steps) if m.rule == "identity")
    assert "is the sigmoid" in identity.text


@pytest.mark.parametrize(
    "loss, expected",
    [
        (sympy.log(1 + exp(-w * x * y)), x * y * (sigmoid(w * x * y) - 1)),
        (exp(w) / (1 + exp(w)), sigmoid(w) * (1 - sigmoid(w))),
    ],
    ids=["log loss written with exp", "sigmoid as a quotient"],
)
def test_exponentials_of_a_sigmoid_become_sigma(loss, expected):
    result = explain(loss, w)[1]
    assert not result.has(exp)
    assert same(result, expected)


def test_each_rule_states_what_it_gives():
    chain = explain((w * x - y) ** 2, w)[0][0]
    assert chain.gives is not None and same(chain.gives, 2 * x * (w * x - y))
    assert chain.text.endswith("so the chain rule gives 2x(wx − y).")
    product = explain(w * sin(w) * cos(w), w)[0][0]
    assert "(fgh)′ = f′gh + fg′h + fgh′" in product.text


def test_the_outer_rule_of_a_chain_says_what_its_variable_stands_for():
    power = explain((w * x - y) ** 2, w)[0][0].substeps[0]
    assert power.text.endswith("Here u stands for wx − y.")
    assert "d/d" not in power.text


def test_inner_names_skip_the_losses_letters_and_are_shared_by_every_partial():
    b, u = make_symbol("b"), make_symbol("u")
    loss = -y * log(sigmoid(w * x + b)) - (1 - y) * log(1 - sigmoid(w * x + b))
    names = engine.inner_names(loss)
    assert names[b + w * x] == make_symbol("u")
    assert len(set(names.values())) == len(names)
    assert not {str(n) for n in names.values()} & {"w", "x", "y", "b", "d", "e", "f"}
    for symbol in (w, b):
        chains = [s for s in walk(explain(loss, symbol)[0]) if s.rule == "chain"]
        for chain in chains:
            (name,) = chain.substeps[0].before.variables
            inner = next(a for a in chain.before.expr.args if a.has(symbol))
            assert names[inner] == name
    assert "v" in str(engine.inner_names((u * w - 1) ** 2))


def test_constants_are_named_once_per_partial():
    b = make_symbol("b")
    assert engine.held_fixed((w * x + b - y) ** 2, w).startswith("b, x and y are constants here")
    assert engine.held_fixed(w**2, w) == ""


@given(losses_and_symbols())
def test_what_each_rule_gives_equals_its_derivative(problem):
    loss, symbol = problem
    for step in walk(explain(loss, symbol)[0]):
        if step.gives is not None:
            assert equivalent(step.before.doit(), step.gives, domain=loss), step


def _ops(expr: sympy.Expr) -> int:
    return sympy.count_ops(expr)


def assert_no_longer_than_the_forms_seen(loss: sympy.Expr, symbol: sympy.Symbol) -> None:
    """The closed form has no more operations than any form the algebra passed through."""
    steps, result = explain(loss, symbol)
    forms = [m.after for m in moves(steps)]
    if forms:
        assert _ops(result) <= min(_ops(f) for f in forms), (result, forms)


@pytest.mark.parametrize("problem_id", __import__("tutor").shipped_ids())
def test_no_shipped_result_is_longer_than_a_form_it_passed(problem_id):
    from tutor import load

    problem = load(problem_id)
    for name in problem.wrt:
        assert_no_longer_than_the_forms_seen(problem.loss, problem.symbol(name))


@given(losses_and_symbols())
def test_no_result_is_longer_than_a_form_it_passed(problem):
    assert_no_longer_than_the_forms_seen(*problem)


@given(teaching_losses())
def test_teaching_losses_end_at_their_shortest_form_without_exp_of_a_sigmoid(problem):
    loss, symbol = problem
    assert_no_longer_than_the_forms_seen(loss, symbol)
    steps, result = explain(loss, symbol)
    assert equivalent(result, sympy.diff(loss, symbol), domain=loss)
    for step in moves(steps):
        line = step.before.doit() if step.before.has(sympy.Derivative) else step.before
        assert equivalent(line, step.after, domain=loss), step
