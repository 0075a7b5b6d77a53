"""TensorFlow's GradientTape gradients against SymPy's closed form, in both notebook styles."""

from __future__ import annotations

import dataclasses

import mpmath
import pytest
from hypothesis import given
from strategies import points

from tutor import derive, load
from tutor.autodiff import TensorFlowBackend
from tutor.model import Columns
from tutor.numeric import evaluate

U32 = 2.0**-24  # unit roundoff of float32
TINY32 = 2.0**-126  # smallest normal float32; TF on the CPU flushes anything smaller to 0


def gamma(k: int, u: float = U32) -> float:
    """γ_k = k·u / (1 − k·u), the forward error factor of k roundings (Higham, ch. 3)."""
    return k * u / (1 - k * u)


def reference(partial, values):
    """SymPy's gradient at ``values`` in 50-digit arithmetic, rounded once to float64."""
    with mpmath.workdps(50):
        return float(evaluate(partial.result, values, precise=True))


@pytest.mark.parametrize("mode", ["tensor", "variable"])
def test_seed_linear_gradient_is_two(backend, mode):
    problem = dataclasses.replace(load("seed-linear"), variables=mode)
    loss, grads = backend.gradient(problem, problem.values)
    assert (loss, grads) == (3.0, {"x": 2.0})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_first_gradient_of_the_notebook_is_exact(backend, dtype):
    problem = dataclasses.replace(load("seed-w"), dtype=dtype)
    assert backend.gradient(problem, problem.values) == (20.25, {"w": -27.0})


@given(points())
def test_gradients_of_squared_error_agree_with_sympy_in_float32(backend, point):
    """∂/∂w and ∂/∂x of (wx − y)², TF float32 vs SymPy exact, within γ₃·S plus a floor.

    Three roundings reach each partial (w·x, − y, the backward product); S is
    the partial re-evaluated on absolute values. Inputs are exact, normal
    float32 values (see ``strategies.float32s``); an intermediate that falls
    below the smallest normal is flushed to zero by TF, an absolute error of
    at most TINY32 per flush, at most two flushes magnified by 2·|other factor|
    and one more on the product itself: floor = (4·|other| + 1)·TINY32.
    """
    problem = dataclasses.replace(load("seed-w"), wrt=("w", "x"))
    derivation = derive(problem)
    _, grads = backend.gradient(problem, point)
    w, x, y = (abs(point[k]) for k in "wxy")
    for sym, other in (("w", x), ("x", w)):
        s = 2 * other * (w * x + y)
        exact = reference(derivation.partial(sym), point)
        assert abs(grads[sym] - exact) <= gamma(3) * s + (4 * other + 1) * TINY32, (sym, point)


def record(backend, problem, values, steps) -> Columns:
    """All ``steps`` updates of a run as one table, read through the backend's stream."""
    return Columns.concat(list(backend.stream(problem, values, steps)), tuple(values), problem.wrt)


@pytest.mark.parametrize("mode", ["tensor", "variable"])
def test_descent_iterates_are_the_same_in_both_modes(backend, mode):
    problem = dataclasses.replace(load("seed-x"), variables=mode)
    got = record(backend, problem, problem.values, 100).updated.tolist()
    reference_problem = dataclasses.replace(problem, variables="tensor")
    assert got == record(backend, reference_problem, problem.values, 100).updated.tolist()


@pytest.mark.parametrize("problem_id", ["seed-w", "seed-x", "seed-variable"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_run_is_bit_identical_to_the_eager_loop(backend, problem_id, dtype):
    problem = dataclasses.replace(load(problem_id), dtype=dtype, steps=500)
    eager = TensorFlowBackend()
    eager.compile_from = 10**9
    assert backend.compile_from <= problem.steps
    compiled = record(backend, problem, problem.values, problem.steps)
    expected = record(eager, problem, problem.values, problem.steps)
    for field in ("values", "loss", "autodiff", "updated"):
        assert getattr(compiled, field).tolist() == getattr(expected, field).tolist()


def test_the_eager_and_the_compiled_loop_take_the_same_update(monkeypatch):
    """Both loops call autodiff's one update function: eagerly, and while being traced."""
    from tutor import autodiff

    calls = []
    update = autodiff._update

    def counted(*args):
        calls.append(autodiff.tensorflow().executing_eagerly())
        return update(*args)

    monkeypatch.setattr(autodiff, "_update", counted)
    for variables in ("tensor", "variable"):
        problem = dataclasses.replace(load("seed-w"), variables=variables)
        backend = TensorFlowBackend()
        record(backend, problem, problem.values, 3)
        assert calls == [True] * 3
        record(backend, problem, problem.values, backend.compile_from)
        assert calls[3:] and not any(calls[3:])  # called while the compiled loop is traced
        calls.clear()


def test_max_and_min_of_three_evaluate_as_sympy_flattens_them():
    """SymPy writes max(max(w, x), log 2) as Max(w, x, log(2)): three arguments."""
    import numpy as np
    import sympy

    w, x = sympy.symbols("w x")
    for f, pick in ((sympy.Max, max), (sympy.Min, min)):
        expr = f(f(w, x), sympy.log(2))
        assert len(expr.args) == 3
        ws, xs = np.array([0.1, 5.0, -3.0]), np.array([-1.0, 2.0, 0.9])
        got = evaluate(expr, {"w": ws, "x": xs})
        assert got.tolist() == [pick(a, b, float(np.log(2))) for a, b in zip(ws, xs, strict=True)]
