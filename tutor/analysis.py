"""The analysis of gradient descent on a loss that is quadratic in its parameters.

For L(θ) quadratic in the descended symbols θ, the gradient is Hθ − b with a
constant Hessian H, so each update θ ← θ − η(Hθ − b) is linear:

    θ_k − θ* = (I − ηH)^k (θ_0 − θ*),   θ* = H⁻¹b.

The iteration converges exactly when every eigenvalue λ of H satisfies
|1 − ηλ| < 1, i.e. 0 < η < 2/λ_max (H positive definite). For the notebook,
L = (wx − y)², H = 2x², so η < 1/x² and w_k − y/x = (1 − 2ηx²)^k (w_0 − y/x).

For any other loss the analysis says it does not apply, and reports the
curvature (the Hessian's eigenvalues) at the starting values instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from .model import Problem
from .numeric import evaluate


@dataclass(frozen=True)
class Analysis:
    """What theory says about the descent: a fixed point, a rate, a bound on η.

    ``applies`` is false for a loss that is not quadratic in the parameters;
    then only ``reason`` and the local ``eigenvalues`` at the start are set.
    """

    applies: bool
    reason: str
    hessian: sympy.Matrix | None = None
    eigenvalues: tuple[float, ...] = ()
    fixed_point: Mapping[str, float] | None = None
    fixed_point_formula: Mapping[str, sympy.Expr] | None = None
    lr_bound: float | None = None
    lr_bound_formula: sympy.Expr | None = None
    contraction: float | None = None
    suggested_lr: float | None = None
    steps_to_tolerance: int | None = None
    iteration: tuple[tuple[float, ...], ...] | None = None

    def iterate(self, start: Mapping[str, float], k: int) -> dict[str, float]:
        """Return θ_k from the closed form θ* + (I − ηH)^k (θ_0 − θ*).

        >>> from tutor.problem import load
        >>> round(analyse(load("seed-w")).iterate({"w": 0.5}, 1)["w"], 12)
        0.77
        """
        if self.fixed_point is None or self.iteration is None:
            raise ValueError("the closed-form iterate needs a quadratic loss with a fixed point")
        names = list(self.fixed_point)
        star = np.array([self.fixed_point[n] for n in names])
        delta = np.array([start[n] for n in names]) - star
        step = np.linalg.matrix_power(np.array(self.iteration), k) @ delta
        return {n: float(v) for n, v in zip(names, star + step, strict=True)}


#: The tolerance on |θ_k − θ*| used for "steps to reach a tolerance" when the file has none.
DEFAULT_TOLERANCE = 1e-3


def analyse(problem: Problem, wrt: tuple[str, ...] | None = None) -> Analysis:
    """Return the analysis of the descent of ``problem`` over ``wrt`` at its learning rate."""
    names = wrt or problem.wrt
    params = [problem.symbol(n) for n in names]
    hessian = sympy.hessian(problem.loss, params)
    if not _is_quadratic(problem.loss, params, hessian):
        return _local(problem, names, hessian)
    h = _mean_matrix(problem, hessian)
    eig = np.linalg.eigvalsh(h)
    gradient = [sympy.diff(problem.loss, p) for p in params]
    at_zero = {**{n: 0.0 for n in names}}
    b = -np.array([_mean(problem, g, at_zero) for g in gradient])
    return _quadratic(problem, names, params, hessian, h, eig, gradient, b)


def _is_quadratic(loss: sympy.Expr, params: list[sympy.Symbol], hessian: sympy.Matrix) -> bool:
    return (
        all(not (entry.free_symbols & set(params)) for entry in hessian)
        and all(
            not entry.has(sympy.Piecewise, sympy.Heaviside, sympy.sign, sympy.Abs, sympy.Derivative)
            for entry in hessian
        )
        and not loss.has(sympy.Abs, sympy.Max, sympy.Min)
    )


def _env(problem: Problem, extra: Mapping[str, float]) -> dict[str, Any]:
    env: dict[str, Any] = {**problem.constants, **problem.values, **extra}
    env.update({k: np.asarray(v, dtype=np.float64) for k, v in problem.data.items()})
    return env


def _mean(problem: Problem, expr: sympy.Expr, extra: Mapping[str, float]) -> float:
    return float(np.mean(evaluate(expr, _env(problem, extra))))


def _mean_matrix(
    problem: Problem, matrix: sympy.Matrix, extra: Mapping[str, float] | None = None
) -> np.ndarray:
    n = matrix.shape[0]
    return np.array(
        [[_mean(problem, matrix[i, j], extra or {}) for j in range(n)] for i in range(n)]
    )


def _quadratic(
    problem: Problem,
    names: tuple[str, ...],
    params: list[sympy.Symbol],
    hessian: sympy.Matrix,
    h: np.ndarray,
    eig: np.ndarray,
    gradient: list[sympy.Expr],
    b: np.ndarray,
) -> Analysis:
    eta = problem.learning_rate
    lam_max, lam_min = float(eig.max()), float(eig.min())
    if lam_max <= 0:
        return Analysis(
            applies=False,
            reason=f"the loss is linear (or concave) in {', '.join(names)}: it has no minimum "
            "for descent to converge to",
            hessian=hessian,
            eigenvalues=tuple(float(v) for v in eig),
        )
    iteration = np.eye(len(names)) - eta * h
    rho = float(max(abs(1 - eta * lam) for lam in eig))
    fixed, formula = _fixed_point(problem, names, params, h, b, gradient)
    return Analysis(
        applies=True,
        reason=f"the loss is quadratic in {', '.join(names)}",
        hessian=hessian,
        eigenvalues=tuple(float(v) for v in eig),
        fixed_point=fixed,
        fixed_point_formula=formula,
        lr_bound=2 / lam_max,
        lr_bound_formula=_bound_formula(problem, hessian),
        contraction=rho,
        suggested_lr=2 / (lam_max + lam_min) if lam_min > 0 else 1 / lam_max,
        steps_to_tolerance=_steps_needed(problem, names, fixed, rho),
        iteration=tuple(tuple(float(v) for v in row) for row in iteration),
    )


def _fixed_point(
    problem: Problem,
    names: tuple[str, ...],
    params: list[sympy.Symbol],
    h: np.ndarray,
    b: np.ndarray,
    gradient: list[sympy.Expr],
) -> tuple[dict[str, float] | None, dict[str, sympy.Expr] | None]:
    if abs(np.linalg.det(h)) < 1e-12 * max(1.0, float(np.abs(h).max())) ** len(names):
        return None, None
    theta = np.linalg.solve(h, b)
    formula = None
    if not problem.data:
        solved = sympy.solve(gradient, params, dict=True)
        if len(solved) == 1 and set(solved[0]) == set(params):
            formula = {n: sympy.factor(solved[0][p]) for n, p in zip(names, params, strict=True)}
    return {n: float(v) for n, v in zip(names, theta, strict=True)}, formula


def _bound_formula(problem: Problem, hessian: sympy.Matrix) -> sympy.Expr | None:
    if hessian.shape != (1, 1) or problem.data:
        return None
    return sympy.factor(2 / hessian[0, 0])


def _steps_needed(
    problem: Problem, names: tuple[str, ...], fixed: Mapping[str, float] | None, rho: float
) -> int | None:
    if fixed is None or not 0 < rho < 1:
        return None
    tol = problem.tolerance or DEFAULT_TOLERANCE
    distance = math.dist([problem.values[n] for n in names], [fixed[n] for n in names])
    if distance <= tol:
        return 0
    return math.ceil(math.log(tol / distance) / math.log(rho))


def _local(problem: Problem, names: tuple[str, ...], hessian: sympy.Matrix) -> Analysis:
    try:
        h = _mean_matrix(problem, hessian)
        eig = tuple(float(v) for v in np.linalg.eigvalsh((h + h.T) / 2))
    except (ValueError, TypeError, np.linalg.LinAlgError):
        eig = ()
    if eig and not all(math.isfinite(v) for v in eig):
        eig = ()
    return Analysis(
        applies=False,
        reason=f"the loss is not quadratic in {', '.join(names)}, so no closed form; "
        "the curvature at the start is given instead",
        eigenvalues=eig,
    )
