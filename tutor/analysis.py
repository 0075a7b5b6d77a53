"""The analysis of gradient descent on a loss that is quadratic in its parameters.

For L(θ) quadratic in the descended symbols θ, the gradient is Hθ − b with a
constant Hessian H, so each update θ ← θ − η(Hθ − b) is linear:

    θ_k − θ* = (I − ηH)^k (θ_0 − θ*),   Hθ* = b.

What the iteration does depends on the class of H (its eigenvalues λ):

- positive definite: a unique minimum θ* = H⁻¹b; the iterates converge when
  every |1 − ηλ| < 1, i.e. η < 2/λ_max; exactly on the bound the direction of
  λ_max oscillates with constant amplitude; above it, it grows;
- positive semidefinite and singular: when b has no part along the flat
  directions (λ = 0), the minimisers form a line, a plane, …; the flat
  directions never move, so the iterates converge (η < 2/λ_max) to the
  minimiser nearest the start along them; otherwise the loss decreases
  without bound along a flat direction;
- indefinite (a saddle) or negative (semi)definite (a maximum): the loss is
  unbounded below and no learning rate converges from a generic start.

η is taken as the run rounds it (float32(0.2) is not 0.2). For the notebook,
L = (wx − y)², H = 2x², so η < 1/x² and w_k − y/x = (1 − 2ηx²)^k (w_0 − y/x).

For any other loss the analysis says it does not apply, and reports the
curvature (the Hessian's eigenvalues) at the starting values instead, or
that it is not defined there (at a kink).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._mathtext import plain_name, unicode
from ._numbers import number
from .model import Problem
from .numeric import UnsupportedExpression, evaluate

#: Outcomes of the iteration on a quadratic, as :attr:`Analysis.outcome` spells them.
CONVERGES, OSCILLATES, GROWS, RUNS_AWAY, STAYS = (
    "converges",
    "oscillates",
    "grows",
    "runs away",
    "stays",
)

#: Hessian classes, as :attr:`Analysis.kind` and :attr:`Curvature.kind` spell them.
POSITIVE_DEFINITE = "positive definite"
POSITIVE_SEMIDEFINITE = "positive semidefinite and singular"
INDEFINITE = "indefinite"
NEGATIVE_DEFINITE = "negative definite"
NEGATIVE_SEMIDEFINITE = "negative semidefinite and singular"
ZERO = "zero"

#: The tolerance on |θ_k − θ*| used for "steps to reach a tolerance" when the file has none.
DEFAULT_TOLERANCE = 1e-3

#: Largest number of updates the closed form is searched for the step count it predicts.
MAX_PREDICTED_STEPS = 1_000_000

#: Parameters up to which the fixed point is also solved in symbols (a formula to read).
SYMBOLIC_FIXED_POINT = 3

#: Operations in the solved fixed point beyond which no formula is shown: one that long
#: is not read, and simplifying it can take minutes (six squares in three unknowns).
MAX_FORMULA_OPS = 300


@dataclass(frozen=True)
class Curvature:
    """The Hessian's eigenvalues at one point of a loss that is not quadratic.

    ``kink`` names the expression that is zero there when the second
    derivative is not defined at the point (then ``eigenvalues`` is empty);
    ``kinks`` names every expression whose zeros are kinks of the loss.
    """

    eigenvalues: tuple[float, ...] = ()
    kind: str = ""
    kink: str = ""
    kinks: tuple[str, ...] = ()

    @property
    def lr_bound(self) -> float | None:
        """Return the local bound 2/λ_max when the curvature is positive definite there."""
        if self.kind != POSITIVE_DEFINITE:
            return None
        return 2 / max(self.eigenvalues)


@dataclass(frozen=True)
class Analysis:
    """What theory says about the descent: the Hessian's class, a fixed point, a bound on η.

    ``applies`` is false for a loss that is not quadratic in the parameters;
    then ``reason`` says why and ``start`` holds the curvature at the start.
    ``rate`` is the learning rate as the run's dtype rounds it; ``outcome``
    (one of ``converges``, ``oscillates``, ``grows``, ``runs away``,
    ``stays``) is what the iteration does at that rate. A quadratic whose
    coefficients are beyond float64's range is classified in exact arithmetic,
    with no numbers kept; then ``verdict`` says what the iteration does.
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
    kind: str = ""
    outcome: str = ""
    rate: float | None = None
    condition: float | None = None
    direction: Mapping[str, float] | None = None
    flat: tuple[Mapping[str, float], ...] = ()
    tolerance_kind: str = ""
    start: Curvature | None = None
    matrix: tuple[tuple[float, ...], ...] | None = None
    verdict: str = ""

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

    @property
    def diverging(self) -> bool:
        """Return whether the iteration does not settle: it grows or runs away."""
        return self.outcome in (GROWS, RUNS_AWAY)


def run_rate(problem: Problem) -> float:
    """Return the learning rate as the run holds it: rounded to float32 in a float32 run.

    >>> from tutor.problem import load
    >>> run_rate(load("seed-w"))
    0.009999999776482582
    """
    if problem.dtype == "float32":
        return float(np.float32(problem.learning_rate))
    return float(problem.learning_rate)


def classify(eigenvalues: np.ndarray) -> str:
    """Return the class of a symmetric matrix from its eigenvalues (zeros already exact).

    >>> classify(np.array([0.0, 10.0])), classify(np.array([-1.0, 2.0]))
    ('positive semidefinite and singular', 'indefinite')
    """
    if not np.any(eigenvalues):
        return ZERO
    if np.all(eigenvalues > 0):
        return POSITIVE_DEFINITE
    if np.all(eigenvalues >= 0):
        return POSITIVE_SEMIDEFINITE
    if np.all(eigenvalues < 0):
        return NEGATIVE_DEFINITE
    if np.all(eigenvalues <= 0):
        return NEGATIVE_SEMIDEFINITE
    return INDEFINITE


def zero_tolerance(h: np.ndarray) -> float:
    """Return the size below which an eigenvalue of ``h`` counts as 0.

    NumPy's symmetric eigensolver is backward stable: each computed eigenvalue
    is within a small multiple of n·ε·‖H‖ of the true one (ε the float64
    machine epsilon); 64·n·ε·‖H‖ leaves room for the rounding of H's entries.
    """
    scale = float(np.abs(h).max()) if h.size else 0.0
    return 64 * len(h) * np.finfo(np.float64).eps * scale


def analyse(problem: Problem, wrt: tuple[str, ...] | None = None) -> Analysis:
    """Return the analysis of the descent of ``problem`` over ``wrt`` at its learning rate."""
    names = tuple(wrt or problem.wrt)
    params = [problem.symbol(n) for n in names]
    hessian = sympy.hessian(problem.loss, params)
    if not _is_quadratic(problem.loss, params, hessian):
        return _local(problem, names, hessian)
    h = _mean_matrix(problem, hessian)
    gradient = [sympy.diff(problem.loss, p) for p in params]
    b = -np.array([_mean(problem, g, {n: 0.0 for n in names}) for g in gradient])
    if _suspect(problem, hessian, h, b):
        exact = _exact_coefficients(problem, names, hessian, gradient)
        if exact is not None and not _in_range(*exact):
            return _beyond_range(problem, names, hessian, *exact)
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(b))):
        return Analysis(
            applies=False,
            reason=f"the loss is quadratic in {', '.join(map(plain_name, names))}, but its "
            "coefficients are not finite at these values, so there is no fixed point to give",
            hessian=hessian,
        )
    return _quadratic(problem, names, params, hessian, h, b, gradient)


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


@dataclass(frozen=True)
class _Spectrum:
    """H's eigenvalues (those within the zero tolerance set to 0) and eigenvectors (columns)."""

    values: np.ndarray
    vectors: np.ndarray

    @classmethod
    def of(cls, h: np.ndarray) -> _Spectrum:
        values, vectors = np.linalg.eigh((h + h.T) / 2)
        values = np.where(np.abs(values) <= zero_tolerance(h), 0.0, values)
        return cls(values, vectors)

    def direction(self, index: int, names: tuple[str, ...]) -> dict[str, float]:
        """Return eigenvector ``index``, signed so that its largest component is positive."""
        v = self.vectors[:, index]
        v = v if v[np.argmax(np.abs(v))] > 0 else -v
        return {n: float(c) + 0.0 for n, c in zip(names, v, strict=True)}


def _quadratic(
    problem: Problem,
    names: tuple[str, ...],
    params: list[sympy.Symbol],
    hessian: sympy.Matrix,
    h: np.ndarray,
    b: np.ndarray,
    gradient: list[sympy.Expr],
) -> Analysis:
    spectrum = _Spectrum.of(h)
    eig = spectrum.values
    kind = classify(eig)
    # The sharp question, on the bound or not, is asked of η as the run rounds it;
    # the factors shown are those of the η the reader sees (they differ by < 1e-7).
    eta = run_rate(problem)
    nominal = problem.learning_rate
    common: dict[str, Any] = {
        "applies": True,
        "reason": f"the loss is quadratic in {', '.join(map(plain_name, names))}",
        "hessian": hessian,
        "eigenvalues": tuple(float(v) + 0.0 for v in eig),
        "kind": kind,
        "rate": eta,
        "matrix": tuple(tuple(float(v) + 0.0 for v in row) for row in h),
        "iteration": tuple(
            tuple(float(v) for v in row) for row in np.eye(len(names)) - nominal * h
        ),
    }
    if kind in (INDEFINITE, NEGATIVE_DEFINITE, NEGATIVE_SEMIDEFINITE):
        # The most negative eigenvalue's direction escapes fastest: its factor 1 − ηλ is largest.
        return Analysis(
            **common,
            outcome=RUNS_AWAY,
            direction=spectrum.direction(int(np.argmin(eig)), names),
            contraction=float(np.max(np.abs(1 - problem.learning_rate * eig))),
        )
    if kind == ZERO:
        common.update(applies=False, reason=_linear_reason(names, b))
    flat = np.flatnonzero(eig == 0)
    along_flat = spectrum.vectors[:, flat].T @ b
    flats = tuple(spectrum.direction(int(i), names) for i in flat)
    if np.any(np.abs(along_flat) > zero_tolerance(b[:, None])):
        # b has a part along a flat direction: the gradient there is constant, never zero.
        strongest = int(flat[np.argmax(np.abs(along_flat))])
        return Analysis(
            **common,
            outcome=RUNS_AWAY,
            flat=flats,
            direction=spectrum.direction(strongest, names),
        )
    if kind == ZERO:
        return Analysis(**common, outcome=STAYS, flat=flats)
    return _minimum(problem, names, params, hessian, h, b, gradient, spectrum, common)


def _linear_reason(names: tuple[str, ...], b: np.ndarray) -> str:
    what = f"the loss is linear in {', '.join(map(plain_name, names))}"
    if not np.any(b):
        return f"{what} and its gradient is 0: it is constant, and descent stays where it starts"
    return f"{what}: it has no minimum for descent to converge to (its gradient never vanishes)"


def _minimum(
    problem: Problem,
    names: tuple[str, ...],
    params: list[sympy.Symbol],
    hessian: sympy.Matrix,
    h: np.ndarray,
    b: np.ndarray,
    gradient: list[sympy.Expr],
    spectrum: _Spectrum,
    common: dict[str, Any],
) -> Analysis:
    """Return the analysis of a quadratic with a minimum (H positive (semi)definite)."""
    eig, eta = spectrum.values, common["rate"]
    positive = eig[eig > 0]
    lam_max, lam_min = float(positive.max()), float(positive.min())
    start = np.array([problem.values[n] for n in names])
    fixed = _fixed_point(spectrum, b, start)
    rho = float(np.max(np.abs(1 - problem.learning_rate * positive)))
    # λ_max is known to within zero_tolerance(h), so η·λ_max to within twice η times it.
    on_bound = abs(eta * lam_max - 2) <= 2 * eta * zero_tolerance(h)
    outcome = OSCILLATES if on_bound else (CONVERGES if eta * lam_max < 2 else GROWS)
    singular = len(positive) < len(eig)
    steps, measure = None, ""
    if outcome == CONVERGES:
        steps, measure = _steps_needed(problem, spectrum, start - fixed, problem.learning_rate)
    return Analysis(
        **common,
        outcome=outcome,
        fixed_point={n: float(v) + 0.0 for n, v in zip(names, fixed, strict=True)},
        fixed_point_formula=None if singular else _fixed_point_formula(problem, names, params),
        lr_bound=2 / lam_max,
        lr_bound_formula=_bound_formula(problem, hessian),
        contraction=1.0 if on_bound else rho,
        suggested_lr=2 / (lam_max + lam_min),
        steps_to_tolerance=steps,
        tolerance_kind=measure,
        condition=None if len(positive) < 2 else lam_max / lam_min,
        direction=spectrum.direction(int(np.argmax(eig)), names),
        flat=tuple(spectrum.direction(int(i), names) for i in np.flatnonzero(eig == 0)),
    )


def _fixed_point(spectrum: _Spectrum, b: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Return the minimiser the descent from ``start`` converges to.

    Along the curved directions (λ > 0) it is b's component divided by λ; along
    the flat ones (λ = 0) the iterates never move, so it keeps the start's.
    """
    v, eig = spectrum.vectors, spectrum.values
    coords = v.T @ b
    at_start = v.T @ start
    safe = np.where(eig > 0, eig, 1.0)
    return v @ np.where(eig > 0, coords / safe, at_start)


def _fixed_point_formula(
    problem: Problem, names: tuple[str, ...], params: list[sympy.Symbol]
) -> dict[str, sympy.Expr] | None:
    """Return θ* = H⁻¹b in symbols, solved on the coefficient matrix (few parameters only)."""
    if problem.data or len(params) > SYMBOLIC_FIXED_POINT:
        return None
    gradient = [sympy.diff(problem.loss, p) for p in params]
    matrix, rhs = sympy.linear_eq_to_matrix(gradient, params)
    if not matrix.free_symbols and not rhs.free_symbols:
        return None
    try:
        solved = matrix.LUsolve(rhs)
    except (ValueError, ZeroDivisionError, sympy.matrices.exceptions.NonInvertibleMatrixError):
        return None
    if any(sympy.count_ops(e) > MAX_FORMULA_OPS for e in solved):
        return None  # too long to read; and simplifying it could take minutes
    return {n: sympy.factor(sympy.cancel(e)) for n, e in zip(names, solved, strict=True)}


def _bound_formula(problem: Problem, hessian: sympy.Matrix) -> sympy.Expr | None:
    if hessian.shape != (1, 1) or problem.data:
        return None
    return sympy.factor(2 / hessian[0, 0])


def _steps_needed(
    problem: Problem, spectrum: _Spectrum, delta: np.ndarray, eta: float
) -> tuple[int | None, str]:
    """Return the updates after which the closed form meets the tolerance, and which one.

    With the file's ``tolerance`` (a bound on every |∂L/∂s|, the run's stopping
    rule) it is the first k with every |(H(θ_k − θ*))_s| below it (``gradient``);
    without one, the first k with the distance |θ_k − θ*| below
    :data:`DEFAULT_TOLERANCE` (``distance``). None when more than
    :data:`MAX_PREDICTED_STEPS` are needed.
    """
    eig, v = spectrum.values, spectrum.vectors
    coeffs = v.T @ delta
    factors = 1 - eta * eig
    if problem.tolerance is not None:
        tol, weights, measure = problem.tolerance, eig * coeffs, "gradient"
    else:
        tol, weights, measure = DEFAULT_TOLERANCE, coeffs, "distance"
    done = 0
    chunk = 1024
    while done <= MAX_PREDICTED_STEPS:
        ks = np.arange(done, done + chunk, dtype=np.float64)[:, None]
        with np.errstate(under="ignore"):
            parts = weights * np.power(factors, ks)
        size = (
            np.abs(parts @ v.T).max(axis=1)
            if measure == "gradient"
            else np.sqrt((parts**2).sum(axis=1))
        )
        hits = np.flatnonzero(size < tol)
        if hits.size:
            return done + int(hits[0]), measure
        done += chunk
        # At most about 4 million numbers (32 MB) at a time, however many parameters.
        chunk = min(chunk * 4, max(1024, 4_000_000 // len(eig)))
    return None, measure


def _local(problem: Problem, names: tuple[str, ...], hessian: sympy.Matrix) -> Analysis:
    start = curvature(problem, names, hessian, problem.values)
    return Analysis(
        applies=False,
        reason=f"the loss is not quadratic in {', '.join(map(plain_name, names))}, "
        "so there is no closed form",
        hessian=hessian,
        start=start,
        eigenvalues=start.eigenvalues,
    )


def curvature(
    problem: Problem,
    names: tuple[str, ...],
    hessian: sympy.Matrix,
    values: Mapping[str, float],
) -> Curvature:
    """Return the Hessian's eigenvalues at ``values`` (the mean over rows), or the kink there.

    A kink is where a DiracDelta of the Hessian has its argument at 0 (|r|, max,
    relu) or where a branch of a piecewise Hessian meets the next (huber's
    |r| = d). A DiracDelta inside a branch of a Piecewise is not one: the
    branch's own condition keeps its argument away from 0 there.
    """
    deltas = sorted(
        {d for entry in hessian for d in entry.atoms(sympy.DiracDelta)}, key=sympy.default_sort_key
    )
    inside = {
        d
        for entry in hessian
        for pw in entry.atoms(sympy.Piecewise)
        for d in pw.atoms(sympy.DiracDelta)
    }
    edges = sorted(
        {
            rel
            for entry in hessian
            for pw in entry.atoms(sympy.Piecewise)
            for _, cond in pw.args
            for rel in (
                cond.atoms(sympy.core.relational.Relational) if cond is not sympy.true else ()
            )
        },
        key=sympy.default_sort_key,
    )
    places = [(d.args[0], sympy.S.Zero) for d in deltas if d not in inside]
    places += [(rel.lhs, rel.rhs) for rel in edges]
    env = _env(problem, {n: values[n] for n in names})
    kinks = tuple(dict.fromkeys(_equation(lhs, rhs) for lhs, rhs in places))
    for (lhs, rhs), kink in zip(places, kinks, strict=False):
        try:
            at = np.asarray(evaluate(lhs - rhs, env))
        except (UnsupportedExpression, KeyError, TypeError, ValueError):
            return Curvature(kinks=kinks)
        if np.any(at == 0):
            return Curvature(kink=kink, kinks=kinks)
    smooth = hessian.xreplace({d: sympy.S.Zero for d in deltas})
    try:
        with np.errstate(all="ignore"):
            h = np.array(
                [
                    [_real(np.mean(evaluate(smooth[i, j], env))) for j in range(len(names))]
                    for i in range(len(names))
                ]
            )
    except (UnsupportedExpression, KeyError, TypeError, ValueError):
        return Curvature(kinks=kinks)
    if not np.all(np.isfinite(h)):
        return Curvature(kinks=kinks)
    spectrum = _Spectrum.of(h)
    return Curvature(
        eigenvalues=tuple(float(v) + 0.0 for v in spectrum.values),
        kind=classify(spectrum.values),
        kinks=kinks,
    )


def _real(value: Any) -> float:
    """Return a number as a float; nan when it is complex (a fractional power of a negative
    number): the curvature there is not a real number, and its real part would mislead."""
    number = complex(value)
    return number.real if number.imag == 0 else math.nan


def _equation(lhs: sympy.Expr, rhs: sympy.Expr) -> str:
    """Return ``lhs = rhs`` for people, an absolute value first and written |r|."""
    if isinstance(rhs, sympy.Abs):
        lhs, rhs = rhs, lhs

    def show(e: sympy.Expr) -> str:
        return f"|{unicode(e.args[0])}|" if isinstance(e, sympy.Abs) else unicode(e)

    return f"{show(lhs)} = {show(rhs)}"


def vector(direction: Mapping[str, float]) -> str:
    """Return a direction as ``(w, b) = (0.4472, -0.8944)``.

    >>> vector({"w": 0.6, "b": -0.8})
    '(w, b) = (0.6, -0.8)'
    """
    if len(direction) == 1:
        return next(iter(direction))
    names = ", ".join(direction)
    return f"({names}) = ({', '.join(number(v) for v in direction.values())})"


_FLATS = {1: "a line", 2: "a plane"}


def describe_class(a: Analysis) -> str:
    """Return what the Hessian's class says about the loss, as a clause after "H is".

    With one parameter the Hessian is the number ∂²L/∂w², called positive or negative.
    """
    if len(a.eigenvalues) == 1 and a.kind in (POSITIVE_DEFINITE, NEGATIVE_DEFINITE):
        if a.kind == POSITIVE_DEFINITE:
            return "positive, so the loss has a unique minimum, the fixed point"
        return "negative, so the fixed point is a maximum: the loss has no minimum"
    if a.kind == POSITIVE_DEFINITE:
        return f"{a.kind}, so the loss has a unique minimum, the fixed point"
    if a.kind == POSITIVE_SEMIDEFINITE and a.outcome == RUNS_AWAY:
        return (
            f"{a.kind}, and the gradient never vanishes along the flat direction "
            f"{vector(a.direction or {})} (λ = 0): the loss has no minimum"
        )
    if a.kind == POSITIVE_SEMIDEFINITE:
        shape = _FLATS.get(len(a.flat), f"a {len(a.flat)}-dimensional flat set")
        along = f" along {vector(a.flat[0])}" if len(a.flat) == 1 else ""
        return (
            f"{a.kind}, so the minimisers form {shape}{along} (λ = 0): the iterates do not "
            f"move in the flat direction{'s' if len(a.flat) > 1 else ''}, and converge to the "
            "minimiser nearest the start"
        )
    if a.kind == INDEFINITE:
        return f"{a.kind}, so the fixed point is a saddle, not a minimum: the loss has no minimum"
    if a.kind == NEGATIVE_DEFINITE:
        return f"{a.kind}, so the fixed point is a maximum: the loss has no minimum"
    if a.kind == NEGATIVE_SEMIDEFINITE:
        return f"{a.kind}, so the loss has maxima but no minimum"
    return a.kind


def describe_rate(a: Analysis, problem: Problem) -> str:
    """Return what the descent does at the run's learning rate, as a sentence without a stop."""
    if a.verdict:
        return a.verdict
    eta = f"η = {number(problem.learning_rate)}"
    near = a.lr_bound is not None and abs((a.rate or 0) - a.lr_bound) <= 1e-6 * a.lr_bound
    if near and a.rate != problem.learning_rate:
        eta += f" ({a.rate:.9g} in {problem.dtype})"
    if a.outcome == CONVERGES:
        target = "the minimiser nearest the start" if a.flat else "the fixed point"
        return f"{eta} is below it, so the iterates converge to {target}"
    if a.outcome == OSCILLATES:
        return (
            f"{eta} is exactly on it: along {vector(a.direction or {})} the iterates "
            "oscillate with constant amplitude, and do not converge"
        )
    if a.outcome == GROWS:
        return (
            f"{eta} is above it: along {vector(a.direction or {})} the iterates "
            f"oscillate with growing amplitude (factor {_factor(a)} per update)"
        )
    if a.outcome == STAYS:
        return "the gradient is 0 everywhere: the iterates stay where they start"
    if a.kind in (ZERO, POSITIVE_SEMIDEFINITE):
        return (
            f"no learning rate converges: along {vector(a.direction or {})} the gradient has a "
            "constant part, so every update moves the iterates the same way and the loss "
            "decreases without bound"
        )
    lam = min(a.eigenvalues)
    return (
        f"no learning rate converges from a generic start: along {vector(a.direction or {})} "
        f"(λ = {number(lam)} < 0) each update multiplies the distance from the fixed point by "
        f"1 − ηλ = {number(1 - (a.rate or 0) * lam)}, so the iterates escape and the loss "
        "decreases without bound"
    )


def _factor(a: Analysis) -> str:
    """Return max |1 − ηλ| at the run's η, with the digits that show it is not 1."""
    factor = max(abs(1 - (a.rate or 0) * lam) for lam in a.eigenvalues)
    digits = 4
    while number(factor, digits) == "1" and digits < 17:
        digits += 1
    return number(factor, digits)


def status_reason(a: Analysis, problem: Problem) -> str:
    """Return why a run on this quadratic is flagged diverging (``a.diverging`` is true)."""
    if a.verdict:
        return a.verdict
    if a.outcome == GROWS:
        return (
            f"the learning rate {problem.learning_rate:g} is above the bound 2/λ_max = "
            f"{a.lr_bound:.4g} derived for this loss; try {a.suggested_lr:.4g}"
        )
    where = f" along {vector(a.direction)}" if a.direction else ""
    what = "linear" if a.kind == ZERO else f"quadratic with a Hessian that is {a.kind}"
    return f"the loss is {what}: it has no minimum, and descent runs away{where}"


def describe_curvature(c: Curvature, names: tuple[str, ...]) -> str:
    """Return what the curvature at a point says: convex there, on a hump, or a kink."""
    if c.kink:
        return f"not defined: the point is on a kink of the loss, where {c.kink}"
    if not c.eigenvalues:
        return "not finite there"
    shown = ", ".join(number(v) for v in c.eigenvalues)
    what = f"∂²L/∂{plain_name(names[0])}² =" if len(names) == 1 else "eigenvalues of the Hessian"
    meaning = {
        POSITIVE_DEFINITE: "positive: locally convex",
        POSITIVE_SEMIDEFINITE: "positive semidefinite: locally convex, flat in some direction",
        ZERO: "zero: locally linear",
        INDEFINITE: "indefinite: a saddle-shaped region",
        NEGATIVE_DEFINITE: "negative: on a hump, locally concave",
        NEGATIVE_SEMIDEFINITE: "negative semidefinite: on a hump or a ridge",
    }[c.kind]
    if len(names) == 1:
        meaning = meaning.replace("positive semidefinite", "positive").replace(
            "negative semidefinite", "negative"
        )
    bound = f"; local bound 2/λ_max = {number(c.lr_bound)}" if c.lr_bound is not None else ""
    kinks = " or ".join(c.kinks)
    kink = f"; not defined at the kink{'s' if len(c.kinks) > 1 else ''} {kinks}" if kinks else ""
    return f"{what} {shown} ({meaning}){bound}{kink}"


# ---------------------------------------------------------------------------------------
# Coefficients beyond float64: a curvature of 2·(1e-170)² is not 0, and 2·(1e308)² not inf.

#: Inputs of at most this size (and at least its inverse) cannot take a quadratic's
#: coefficients beyond float64's range; beyond it they are computed exactly.
_SAFE_INPUT = 1e30

#: Data rows up to which coefficients are computed exactly when they need to be.
MAX_EXACT_ROWS = 1000

#: Bits of the exact evaluation: a sum of terms 2¹⁰²⁴ apart in size keeps every bit.
_EXACT_BITS = 4096


def _suspect(problem: Problem, hessian: sympy.Matrix, h: np.ndarray, b: np.ndarray) -> bool:
    """Return whether float64 may have lost the coefficients (under- or overflow)."""
    tiny = np.finfo(np.float64).tiny
    numbers = np.concatenate([h.ravel(), b])
    if not np.all(np.isfinite(numbers)) or np.any((numbers != 0) & (np.abs(numbers) < tiny)):
        return True
    if any(v == 0 and e != 0 for v, e in zip(h.ravel(), hessian, strict=True)):
        return True
    inputs = [*problem.values.values(), *problem.constants.values()]
    inputs += [v for column in problem.data.values() for v in column]
    sizes = np.abs(np.array(inputs, dtype=np.float64))
    return bool(np.any((sizes != 0) & ((sizes > _SAFE_INPUT) | (sizes < 1 / _SAFE_INPUT))))


def _exact_coefficients(
    problem: Problem, names: tuple[str, ...], hessian: sympy.Matrix, gradient: list[sympy.Expr]
) -> tuple[list[list[Any]], list[Any]] | None:
    """Return H and b in mpmath at :data:`_EXACT_BITS` bits (no exponent limit), or None.

    None when the data rows are too many to evaluate one by one.
    """
    import mpmath

    if problem.rows > MAX_EXACT_ROWS:
        return None
    rows = max(problem.rows, 1)
    envs = []
    for i in range(rows):
        env: dict[str, Any] = {**problem.constants, **problem.values}
        env.update({k: v[i] for k, v in problem.data.items()})
        envs.append(env)
    n = len(names)
    with mpmath.workprec(_EXACT_BITS):

        def mean(expr: sympy.Expr, extra: Mapping[str, float]) -> Any:
            total = mpmath.mpf(0)
            for env in envs:
                total += evaluate(expr, {**env, **extra}, precise=True)
            return total / rows

        try:
            h = [[mean(hessian[i, j], {}) for j in range(n)] for i in range(n)]
            b = [-mean(g, dict.fromkeys(names, 0.0)) for g in gradient]
        except (UnsupportedExpression, ValueError, ZeroDivisionError):
            return None
    if not all(mpmath.isfinite(v) for v in [*(x for row in h for x in row), *b]):
        return None
    return h, b


def _in_range(h: list[list[Any]], b: list[Any]) -> bool:
    """Return whether every coefficient is 0 or a normal float64 number."""
    info = np.finfo(np.float64)
    return all(
        v == 0 or float(info.tiny) <= abs(v) <= float(info.max)
        for v in [*(x for row in h for x in row), *b]
    )


def _shown(value: Any) -> str:
    """Return an mpmath number with 4 significant digits, however large or small."""
    import mpmath

    return "0" if value == 0 else mpmath.nstr(value, 4, min_fixed=-4, max_fixed=6)


def _beyond_range(
    problem: Problem,
    names: tuple[str, ...],
    hessian: sympy.Matrix,
    h: list[list[Any]],
    b: list[Any],
) -> Analysis:
    """Return the analysis of a quadratic whose exact coefficients float64 cannot hold.

    The class of H and the outcome come from H scaled by a power of 2 (which
    changes no sign and no ratio), the comparison of η with the bound from the
    exact eigenvalues; no number beyond float64 is kept as a float.
    """
    import mpmath

    info = np.finfo(np.float64)
    n = len(names)
    largest = max((abs(x) for row in h for x in row), default=mpmath.mpf(0))
    scale = mpmath.mpf(2) ** (int(mpmath.floor(mpmath.log(largest, 2))) if largest else 0)
    with np.errstate(under="ignore"):
        scaled = np.array([[float(h[i][j] / scale) for j in range(n)] for i in range(n)])
    spectrum = _Spectrum.of(scaled)
    kind = classify(spectrum.values)
    eigenvalues = [mpmath.mpf(float(v)) * scale for v in spectrum.values]
    eta = mpmath.mpf(run_rate(problem))
    what = f"the loss is quadratic in {', '.join(map(plain_name, names))}"
    if n == 1:
        curvature_text = f"∂²L/∂{plain_name(names[0])}² = {_shown(h[0][0])}"
    else:
        curvature_text = f"the Hessian's eigenvalues {', '.join(_shown(v) for v in eigenvalues)}"
    reason = (
        f"{what} ({curvature_text}), but its coefficients are beyond float64's range "
        f"({info.tiny:.3g} to {info.max:.3g}), so no fixed point or bound is given in numbers"
    )
    common: dict[str, Any] = {
        "applies": False,
        "reason": reason,
        "hessian": hessian,
        "kind": kind,
        "rate": float(eta),
    }
    if kind in (INDEFINITE, NEGATIVE_DEFINITE, NEGATIVE_SEMIDEFINITE):
        direction = spectrum.direction(int(np.argmin(spectrum.values)), names)
        verdict = (
            f"the Hessian is {kind}: the loss has no minimum, and descent runs away along "
            f"{vector(direction)}"
        )
        return Analysis(**common, outcome=RUNS_AWAY, direction=direction, verdict=verdict)
    bscale = max((abs(v) for v in b), default=mpmath.mpf(0))
    flat = np.flatnonzero(spectrum.values == 0)
    if bscale and flat.size:
        with np.errstate(under="ignore"):
            unit_b = np.array([float(v / bscale) for v in b])
        along = spectrum.vectors[:, flat].T @ unit_b
        if np.any(np.abs(along) > zero_tolerance(unit_b[:, None])):
            direction = spectrum.direction(int(flat[np.argmax(np.abs(along))]), names)
            linear = "linear" if kind == ZERO else f"quadratic with a Hessian that is {kind}"
            verdict = (
                f"the loss is {linear}: its gradient never vanishes along {vector(direction)}, "
                "so it has no minimum, and descent runs away"
            )
            return Analysis(**common, outcome=RUNS_AWAY, direction=direction, verdict=verdict)
    if kind == ZERO:
        verdict = "the gradient is 0 everywhere: the iterates stay where they start"
        return Analysis(**common, outcome=STAYS, verdict=verdict)
    positive = [v for v in eigenvalues if v > 0]
    bound = 2 / max(positive)
    outcome = CONVERGES if eta < bound else (OSCILLATES if eta == bound else GROWS)
    rate = f"η = {number(problem.learning_rate)}"
    if outcome == CONVERGES:
        slowest = eta * min(positive)
        verdict = (
            f"{rate} is below the bound 2/λ_max = {_shown(bound)}, so in exact arithmetic the "
            f"iterates converge, but slowly: along the flattest direction each update keeps "
            f"the factor 1 − ηλ_min = 1 − {_shown(slowest)} of the distance"
        )
        epsilon = float(np.finfo(problem.dtype).eps)
        if slowest < epsilon / 2:
            verdict += f", which rounds to 1 in {problem.dtype}"
    elif outcome == OSCILLATES:
        verdict = f"{rate} is exactly on the bound 2/λ_max: the iterates oscillate"
    else:
        verdict = (
            f"the learning rate {problem.learning_rate:g} is above the bound 2/λ_max = "
            f"{_shown(bound)} derived for this loss, so the iterates oscillate with growing "
            "amplitude"
        )
        tiny = float(np.finfo(problem.dtype).tiny)
        if bound < tiny:
            verdict += (
                f"; every rate {problem.dtype} can use (at least {tiny:.3g}) is above it: "
                "rescale the problem"
            )
    return Analysis(**common, outcome=outcome, verdict=verdict + _flushed(problem))


def _flushed(problem: Problem) -> str:
    """Return a clause naming the values the run's dtype holds as 0 ("" when there are none)."""
    tiny = float(np.finfo(problem.dtype).tiny)
    held = {**problem.constants, **problem.values}
    names = [n for n, v in held.items() if v != 0 and abs(v) < tiny]
    if not names:
        return ""
    listed = ", ".join(f"{n} = {held[n]:g}" for n in names)
    return (
        f"; and {listed} {'is' if len(names) == 1 else 'are'} below {problem.dtype}'s smallest "
        f"normal number ({tiny:.3g}), which the run holds as 0"
    )
