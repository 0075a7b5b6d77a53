"""The forward error bound of ``tutor.verify``: its arithmetic, its model of TF's gradient,
the error counts of the library functions, and the points where it stops applying.

Every tolerance in this file is the bound under test or is derived in the test's docstring.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import function_arguments, problem_points

from tutor import derive, load, loads
from tutor.functions import REGISTRY
from tutor.numeric import evaluate
from tutor.problem import shipped_ids
from tutor.verify.bound import gradient_bound
from tutor.verify.graph import forward_operations
from tutor.verify.magnitude import magnitude
from tutor.verify.precision import (
    FLOAT32,
    FLOAT64,
    gamma,
    pow_roundings,
    precision,
    representable,
    roundings,
)

SHIPPED_PARTIALS = [(pid, sym) for pid in shipped_ids() for sym in load(pid).wrt]


@functools.cache
def shipped(problem_id: str, symbol: str, dtype: str = "float64") -> tuple:
    """The problem, SymPy's partial, its magnitude and TF's graph (derived once per test run)."""
    problem = load(problem_id)
    partial = derive(problem, [symbol]).partial(symbol)
    return problem, partial, magnitude(partial.result), gradient_bound(problem, symbol, dtype)


def problem_of(loss: str, values: dict[str, float], **tables: dict[str, object]) -> object:
    """A problem with ``loss``, descending every symbol of ``values``; extra TOML tables."""
    lines = ['title = "t"', f'loss = "{loss}"', "[values]"]
    lines += [f"{k} = {v!r}" for k, v in values.items()]
    lines += ["[descent]", f"wrt = {list(values)!r}", "learning_rate = 0.1", "steps = 1"]
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v!r}" for k, v in table.items()]
    return loads("\n".join(lines))


def exact_gradient(problem, partial, point) -> mpmath.mpf:
    """SymPy's partial at ``point`` in 200-bit mpmath, the mean over the data rows if any."""
    columns = zip(*problem.data.values(), strict=True)
    rows = [dict(zip(problem.data, r, strict=True)) for r in columns]
    env = {**problem.constants, **point}
    with mpmath.workprec(200):
        parts = [evaluate(partial.result, {**env, **row}, precise=True) for row in rows or [{}]]
        return mpmath.fsum(parts) / len(parts)


# The arithmetic of γ_k.


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from([2**24, 2**53]))
def test_counts_add_up(j, k, inverse_u):
    """γ_j + γ_k + γ_j·γ_k ≤ γ_{j+k} (Higham, Lemma 3.3), in exact rational arithmetic.

    Every rule of the bound that adds two counts relies on this inequality.
    """
    u = Fraction(1, inverse_u)

    def g(n: int) -> Fraction:
        return n * u / (1 - n * u)

    assert g(j) + g(k) + g(j) * g(k) <= g(j + k)


def test_gamma_refuses_a_meaningless_count():
    with pytest.raises(ValueError):
        gamma(2**24, FLOAT32.u)


def test_representable_numbers_are_the_dtypes_own():
    assert representable(Fraction(3, 4), FLOAT32)
    assert not representable(Fraction(1, 10), FLOAT32)
    assert representable(Fraction(float(np.float32(0.1))), FLOAT32)
    assert not representable(Fraction(2**-130), FLOAT32)  # subnormal: TF flushes it
    assert representable(Fraction(2**-130), FLOAT64)


# The model of TensorFlow's gradient.


@given(problem_points(load("seed-w")))
def test_seed_bound_is_the_hand_derived_one(point):
    """For (wx − y)², k = 3 (w·x, − y, the backward product; doubling is exact) and
    S = 2|x|(|w||x| + |y|), as tests/test_autodiff.py derives by hand.

    Both S and the hand value are computed in float64: the hand value (4 operations)
    errs by γ_4(2⁻⁵³) relative, S is raised by 1 + γ_{2n}(2⁻⁵³) for its own rounding
    (n ≈ 10 operations), so S lies between the hand value and the hand value times
    (1 + γ_{2n})(1 + γ_4)/(1 − γ_4) ≤ 1 + γ_{4n}.
    """
    problem, _, _, analysis = shipped("seed-w", "w", "float32")
    a = analysis.assess({k: np.array([v]) for k, v in point.items()})
    w, x, y = (abs(point[k]) for k in "wxy")
    by_hand = 2 * x * (w * x + y)
    assert analysis.k == 3
    assert by_hand <= a.magnitude[0] <= by_hand * (1 + gamma(4 * len(analysis.order), 2.0**-53))


@pytest.mark.parametrize("problem_id, symbol", SHIPPED_PARTIALS)
@given(data=st.data())
def test_graph_of_tf_gradient_computes_sympys_partial(problem_id, symbol, data):
    """The backward graph rebuilt from TF's gradient rules is the same function as SymPy's partial.

    The graph is evaluated in NumPy float64 with the same operations TF's float64 run
    would do, so it errs from the exact partial by at most the float64 bound of that
    graph (assessment.bound in float64). At a kink the graph takes TF's branch,
    which may differ from SymPy's convention: those points are skipped.
    """
    problem, partial, _, analysis = shipped(problem_id, symbol)
    point = data.draw(problem_points(problem), label="point")
    a = analysis.assess({k: np.array([v]) for k, v in point.items()})
    assume(not a.hazards_at(0))
    exact = exact_gradient(problem, partial, point)
    assert abs(mpmath.mpf(float(a.value[0])) - exact) <= a.bound[0], point


def test_the_bound_follows_tfs_operations_not_the_simplified_partial():
    """∂/∂w of w·x + w·(y − x) is y for SymPy but x + (y − x) for TF, which rounds y − x.

    At x = 1000.3, y = 0.001 (float32) TF errs by about u·|x|: far beyond γ_k·|y|, the
    bound S = |y| would give, and well within γ_2·(|x| + |y| + |x|), TF's own terms.
    """
    problem = problem_of("w*x + w*(y - x)", {"w": 1.0, "x": 1.0, "y": 1.0})
    point = {"w": 1.0, "x": float(np.float32(1000.3)), "y": float(np.float32(0.001))}
    from tutor.verify import probe

    check = probe(problem, "w").check(point)
    assert check.error > gamma(3, FLOAT32.u) * abs(point["y"])
    assert check.verdict == "pass"
    assert check.magnitude >= 2 * point["x"] + point["y"]


def test_data_rows_add_their_sum_to_the_count():
    """With n rows the gradient is a sum over rows (n − 1 additions) of the 1/n-weighted terms."""
    problem = load("least-squares")
    one_row = gradient_bound(
        problem_of("(w*x + b - y)**2", {"w": 0.0, "b": 0.0, "x": 1.0, "y": 1.0}), "w"
    )
    rows = gradient_bound(problem, "w")
    assert rows.k >= one_row.k + problem.rows - 1


# The library functions' error counts.

#: Each function, TF's kernel, an mpmath reference, and a domain free of overflow in float32.
FUNCTIONS = {
    "exp": ("exp", mpmath.exp, (-87.0, 88.0)),
    "log": ("math.log", mpmath.log, (2.0**-100, FLOAT32.largest)),
    "sqrt": ("sqrt", mpmath.sqrt, (0.0, FLOAT32.largest)),
    "sin": ("sin", mpmath.sin, (-1e5, 1e5)),
    "cos": ("cos", mpmath.cos, (-1e5, 1e5)),
    "tan": ("tan", mpmath.tan, (-1e5, 1e5)),
    "tanh": ("tanh", mpmath.tanh, (-30.0, 30.0)),
    "sigmoid": ("sigmoid", lambda z: 1 / (1 + mpmath.exp(-z)), (-100.0, 100.0)),
    "softplus": ("nn.softplus", lambda z: mpmath.log1p(mpmath.exp(z)), (-100.0, 100.0)),
}


def tf_function(path: str):
    from tutor.autodiff import tensorflow

    target = tensorflow()
    for part in path.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@settings(deadline=None)  # the first example imports TensorFlow
@given(data=st.data())
def test_library_functions_err_within_their_counts(name, dtype, data):
    """|TF's f(x) − f(x)| ≤ c_f·u·|f(x)| for the counts of ROUNDINGS, where f(x) is normal.

    The counts are the largest errors of an exhaustive float32 sweep and of 6·10⁷
    sampled float64 arguments, rounded up; this test keeps sampling. The reference is
    mpmath at 120 bits, whose own error is below 2⁻¹¹⁰·|f(x)|, far below u.
    """
    from tutor.autodiff import tensorflow

    tf = tensorflow()
    path, reference, (low, high) = FUNCTIONS[name]
    prec = precision(dtype)
    if dtype == "float64":
        low, high = (low * 8, high * 8) if name in ("exp", "sigmoid", "softplus") else (low, high)
    x = data.draw(function_arguments(low, high, 32 if dtype == "float32" else 64), label="x")
    got = float(tf_function(path)(tf.constant(x, dtype=getattr(tf, dtype))).numpy())
    with mpmath.workprec(120):
        exact = reference(mpmath.mpf(x))
        assume(prec.tiny <= abs(exact) <= prec.largest)
        assert abs(mpmath.mpf(got) - exact) <= roundings(name, prec) * prec.u * abs(exact), x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(deadline=None)
@given(data=st.data())
def test_pow_errs_within_its_count(dtype, data):
    """|pow(x, c) − x^c| ≤ (⌈|c|⌉ + 1)·u·|x^c|, for the constant exponents a loss may write."""
    from tutor.autodiff import tensorflow

    tf = tensorflow()
    prec = precision(dtype)
    c = data.draw(st.sampled_from([2.0, 3.0, 4.0, 7.0, 10.0, 64.0, -1.0, -3.0, 0.5, 1.5, 2.5]))
    # Powers of two keep the bounds exact float32 numbers and x^c within the dtype's range.
    limit = 2.0 ** min(127, math.floor((120 if dtype == "float32" else 1000) / abs(c)))
    x = data.draw(function_arguments(-limit if c.is_integer() else 0.0, limit, 32), label="x")
    assume(x != 0)  # 0**c is 0 or a division by zero: no relative error to speak of
    got = tf.pow(tf.constant(x, getattr(tf, dtype)), tf.constant(c, getattr(tf, dtype))).numpy()
    with mpmath.workprec(120):
        exact = mpmath.power(mpmath.mpf(x), c)
        assume(prec.tiny <= abs(exact) <= prec.largest)
        assert abs(mpmath.mpf(float(got)) - exact) <= pow_roundings(c) * prec.u * abs(exact), x


# The closed form's own rounding (the float64 reference of batch mode).


def test_magnitude_transform_of_the_seed_partial():
    w, x, y = sympy.symbols("w x y", real=True)
    m = magnitude(2 * x * (w * x - y))
    assert sympy.simplify(m.expr - 2 * abs(x) * (abs(w) * abs(x) + abs(y))) == 0
    assert magnitude(w**3).expr == abs(w) ** 3
    assert magnitude(sympy.exp(w)).expr.doit() == abs(w) * sympy.exp(w) + sympy.exp(w)


@pytest.mark.parametrize("problem_id, symbol", SHIPPED_PARTIALS)
@given(data=st.data())
def test_float64_closed_form_errs_within_its_magnitude(problem_id, symbol, data):
    """NumPy float64 evaluation of SymPy's partial errs by at most γ_k(2⁻⁵³)·S + F·2⁻¹⁰²².

    S, k and F come from :func:`tutor.verify.magnitude.magnitude`; the mean over n data rows
    adds n roundings (n − 1 additions and a division) and n to the floor.
    """
    problem, partial, m, _ = shipped(problem_id, symbol)
    point = data.draw(problem_points(problem), label="point")
    rows = {k: np.array(v) for k, v in problem.data.items()}
    env = {**problem.constants, **point, **rows}
    got = float(np.mean(evaluate(partial.result, env)))
    scale = float(np.mean(evaluate(m.expr, env)))
    floor = float(np.mean(evaluate(m.floor, env))) + problem.rows
    bound = gamma(m.k + problem.rows, 2.0**-53) * scale + floor * FLOAT64.tiny
    exact = exact_gradient(problem, partial, point)
    assert abs(mpmath.mpf(got) - exact) <= bound, point


# Where the bound stops: kinks, singular points, overflow, and the floor.


def assess(problem, symbol, point, dtype=None):
    return gradient_bound(problem, symbol, dtype).assess(
        {k: np.array([v]) for k, v in point.items()}
    )


def test_kink_of_abs_is_flagged_only_near_the_switch():
    problem = problem_of("abs(w*x - y)", {"w": 1.0, "x": 1.0, "y": 1.0})
    at = assess(problem, "w", {"w": 0.5, "x": 3.0, "y": 1.5})
    away = assess(problem, "w", {"w": 0.5, "x": 3.0, "y": 1.0})
    assert [h.kind for h in at.hazards_at(0)] == ["kink"]
    assert "abs(w*x - y) at w*x - y = 0" in at.hazards_at(0)[0].text
    assert away.hazards_at(0) == ()


def test_singular_and_overflow_points_are_flagged():
    """log(w − x) near w = x: w − x may round to 0 (its bound reaches it); exp(w·x) at
    w·x = 100 is 2.7e43, beyond the largest float32 3.4e38, but fine in float64."""
    log = problem_of("log(w - x)", {"w": 2.0, "x": 1.0})
    assert assess(log, "w", {"w": 1.0, "x": 1.0}).hazards_at(0)[0].kind == "singular"
    assert assess(log, "w", {"w": 3.0, "x": 1.0}).hazards_at(0) == ()
    exp = problem_of("exp(w*x)", {"w": 1.0, "x": 1.0})
    assert assess(exp, "w", {"w": 10.0, "x": 10.0}).hazards_at(0)[0].kind == "overflow"
    assert assess(exp, "w", {"w": 10.0, "x": 10.0}, "float64").hazards_at(0) == ()


def test_floor_covers_products_tf_flushes_to_zero(backend):
    """At w = x = 2⁻⁷⁰, y = 0: w·x = 2⁻¹⁴⁰ is subnormal in float32 and TF flushes it to 0,
    so TF's ∂/∂w = 2x(wx − y) is 0 instead of 2⁻²⁰⁹. γ_3·S (S = 2⁻²⁰⁹) cannot cover that;
    the floor, a multiple of the smallest normal 2⁻¹²⁶, does."""
    problem = load("seed-w")
    point = {"w": 2.0**-70, "x": 2.0**-70, "y": 0.0}
    _, grads = backend.gradient(problem, point)
    a = assess(problem, "w", point)
    error = abs(grads["w"] - 2.0**-209)
    assert grads["w"] == 0.0
    assert error > gamma(3, FLOAT32.u) * a.magnitude[0]
    assert error <= a.bound[0]
    assert a.floor[0] >= FLOAT32.tiny


def test_float64_precision_is_the_dtypes():
    assert precision("float64") is FLOAT64
    assert FLOAT64.u_text == "2⁻⁵³"
    assert math.isclose(gamma(1, FLOAT64.u), 2.0**-53, rel_tol=1e-15)


# The bound's model of each function against the graph TensorFlow builds.

#: Operation types that move or name values without computing any.
_PLUMBING = {"Placeholder", "Const", "Identity", "NoOp", "ReadVariableOp"}


def _tensorflow_operations(problem, backend) -> dict[str, int]:
    """Count the operation types of the graph TensorFlow traces for the problem's loss."""
    from tutor.autodiff import build_loss, tensorflow

    tf = tensorflow()
    dtype = tf.float64 if problem.dtype == "float64" else tf.float32
    names = tuple(problem.values)
    spec = [tf.TensorSpec([], dtype) for _ in names]

    def loss(*args):
        return build_loss(problem.tree, dict(zip(names, args, strict=True)), dtype)

    graph = tf.function(loss, autograph=False).get_concrete_function(*spec).graph
    counts: dict[str, int] = {}
    for op in graph.get_operations():
        if op.type not in _PLUMBING:
            counts[op.type] = counts.get(op.type, 0) + 1
    return counts


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_bound_models_the_operations_tensorflow_runs_for_each_function(name, dtype, backend):
    """The forward operations the bound counts roundings for are the ones in TF's graph.

    A TensorFlow upgrade that builds a function with other kernels, or a record whose
    bound no longer describes what TensorFlow runs, fails here.
    """
    record = REGISTRY[name]
    call = f"{name}(w*x - y)" if record.arity == 1 else f"{name}(w*x - y, x)"
    problem = loads(
        f'title = "{name}"\nloss = "{call}"\n[values]\nw = 0.5\nx = 1.5\ny = 0.25\n'
        f'[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\ndtype = "{dtype}"\n'
    )
    assert forward_operations(problem) == _tensorflow_operations(problem, backend)
