"""Both sides of a comparison: TensorFlow's gradient, and SymPy's in high precision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import mpmath
import numpy as np
import sympy

from ..model import Problem
from ..numeric import evaluate
from .magnitude import Magnitude
from .precision import FLOAT64, gamma

#: Working precision of the mpmath reference; its own error, γ_k(2⁻²⁰⁰)·S of the closed
#: form, is added to the tolerance where a comparison is close.
REFERENCE_BITS = 200


#: TF's gradient at one point: (problem, values) → {symbol: gradient}.
GradientFn = Callable[[Problem, Mapping[str, float]], Mapping[str, float]]
#: TF's gradient at many points: (problem, {symbol: array (N,)}) → {symbol: array (N,)}.
BatchGradientFn = Callable[[Problem, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def tensorflow_gradient(problem: Problem, values: Mapping[str, float]) -> dict[str, float]:
    """Return TF's gradient of every wrt symbol at one point (the tutor's own backend)."""
    from ..autodiff import TensorFlowBackend

    return TensorFlowBackend().gradient(problem, values)[1]


def tensorflow_batch_gradient(
    problem: Problem, points: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Return TF's gradient at every point, from one tape over tensors of shape (N,).

    The points are independent, so the gradient of the sum of their losses with
    respect to the (N,) tensor of a symbol holds each point's own gradient.
    With data rows each point's loss is the mean over the rows, as in the tutor.
    Eager mode: the same kernels as a single point, so the same bound applies.
    """
    from ..autodiff import build_loss, tape_gradient, tensorflow

    tf = tensorflow()
    dtype = tf.float64 if problem.dtype == "float64" else tf.float32
    shape = (-1, 1) if problem.data else (-1,)
    env: dict[str, Any] = {k: tf.constant(v, dtype=dtype) for k, v in problem.data.items()}
    env.update({k: tf.constant(v, dtype=dtype) for k, v in problem.constants.items()})
    for name, values in points.items():
        tensor = tf.constant(np.reshape(values, shape), dtype=dtype)
        variable = problem.variables == "variable" and name in problem.wrt
        env[name] = tf.Variable(tensor) if variable else tensor

    def total(problem: Problem, env: Mapping[str, Any]) -> Any:
        loss = build_loss(problem.tree, env, dtype)
        if problem.data:
            loss = tf.reduce_mean(loss, axis=-1)
        return tf.reduce_sum(loss)

    current = {n: env[n] for n in problem.wrt}
    _, grads = tape_gradient(problem, env, current, total)
    pairs = zip(problem.wrt, grads, strict=True)
    return {n: np.asarray(g.numpy(), np.float64).reshape(-1) for n, g in pairs}


def _reference(expr: sympy.Expr, problem: Problem, values: Mapping[str, float]) -> tuple[Any, str]:
    """Return SymPy's gradient at ``values`` in mpmath, or None and why it is undefined."""
    env = {**problem.constants, **values}
    columns = zip(*problem.data.values(), strict=True)
    rows = [dict(zip(problem.data, r, strict=True)) for r in columns]
    with mpmath.workprec(REFERENCE_BITS):
        try:
            parts = [evaluate(expr, {**env, **row}, precise=True) for row in rows or [{}]]
        except ZeroDivisionError:
            return None, "a division by zero"
        except TypeError:
            # mpmath refuses to order complex numbers: a comparison met a non-real value.
            return None, "a complex number"
        except (ValueError, OverflowError) as exc:
            return None, str(exc)
        if not all(isinstance(p, mpmath.mpf) and mpmath.isfinite(p) for p in parts):
            bad = next(p for p in parts if not isinstance(p, mpmath.mpf) or not mpmath.isfinite(p))
            return None, "a complex number" if isinstance(bad, mpmath.mpc) else str(bad)
        return mpmath.fsum(parts) / len(parts), ""


def _float64_error(m: Magnitude, problem: Problem, env: Mapping[str, Any], size: int) -> Any:
    """Return the error bound of the closed form in NumPy float64, the mean over rows included.

    γ_k(2⁻⁵³)·S + F·T (:class:`tutor.verify.magnitude.Magnitude`); the mean over n rows adds
    n − 1 additions and a division to k, and n + 1 to F (T the smallest normal float64).
    """
    rows = problem.rows + 1
    scale = _mean_rows(evaluate(m.expr, env), size)
    floor = _mean_rows(evaluate(m.floor, env), size) + rows
    return gamma(m.k + rows, 2.0**-53) * scale + floor * FLOAT64.tiny


def _numpy_env(problem: Problem, points: Mapping[str, Any]) -> dict[str, Any]:
    """Values for :func:`tutor.numeric.evaluate`: points (N, 1) against data rows (1, n)."""
    rows = bool(problem.data)
    env: dict[str, Any] = {
        k: np.reshape(np.asarray(v, np.float64), (-1, 1) if rows else (-1,))
        for k, v in points.items()
    }
    env.update({k: np.float64(v) for k, v in problem.constants.items()})
    env.update({k: np.asarray(v, np.float64).reshape(1, -1) for k, v in problem.data.items()})
    return env


def _mean_rows(values: Any, size: int = 1) -> np.ndarray:
    """Return per-point values of shape (N,): the mean over the data rows, if any."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2:
        array = array.mean(axis=-1)
    return np.broadcast_to(array.reshape(-1) if array.ndim else array, (size,)).copy()
