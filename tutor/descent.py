"""Run gradient descent and record every update beside SymPy's exact gradient.

The gradient backend is passed in: it computes the loss, the gradient that
drives each update, and the update itself (TensorFlow in the CLI). This module
adds SymPy's gradient at the same values, evaluated in float64, and decides
how the run ended.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .model import Derivation, Point, Problem, RawUpdate, Trajectory, Update
from .numeric import evaluate


class GradientBackend(Protocol):
    """What :func:`descend` needs from whatever computes the numbers."""

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]: ...

    def run(
        self, problem: Problem, values: Mapping[str, float], steps: int | None = None
    ) -> Iterator[RawUpdate]: ...


#: How many consecutive growing losses flag a run as diverging.
GROWTH_RUN = 3


def symbolic_gradients(
    derivation: Derivation, points: Sequence[Mapping[str, float]]
) -> list[dict[str, float]]:
    """Return SymPy's gradient at each point, in float64, vectorised over the points.

    With data rows, each partial is the mean over the rows of the per-row partial.
    """
    problem = derivation.problem
    if not points:
        return []
    env: dict[str, Any] = {
        name: np.array([p[name] for p in points], dtype=np.float64)[:, None] for name in points[0]
    }
    env.update({k: np.float64(v) for k, v in problem.constants.items()})
    env.update({k: np.array(v, dtype=np.float64)[None, :] for k, v in problem.data.items()})
    out: list[dict[str, float]] = [{} for _ in points]
    for partial in derivation.partials:
        values = np.broadcast_to(evaluate(partial.result, env), (len(points), max(problem.rows, 1)))
        means = values.mean(axis=1)
        for record, value in zip(out, means, strict=True):
            record[partial.symbol] = float(value)
    return out


def descend(derivation: Derivation, backend: GradientBackend) -> Trajectory:
    """Run the problem's descent with ``backend`` and return its trajectory.

    The run stops early when every gradient is below the problem's tolerance
    (``converged``) or when the loss or a value stops being finite
    (``diverged``).
    """
    problem = derivation.problem
    start_loss, start_grad = backend.gradient(problem, problem.values)
    start = Point(
        values=dict(problem.values),
        loss=start_loss,
        symbolic=symbolic_gradients(derivation, [problem.values])[0],
        autodiff=start_grad,
    )
    raws: list[RawUpdate] = []
    status, reason = "completed", f"ran all {problem.steps} updates it was given"
    runner = backend.run(problem, dict(problem.values), problem.steps)
    for _ in range(problem.steps):
        raw = next(runner)
        if problem.tolerance is not None and all(
            abs(g) < problem.tolerance for g in raw.gradient.values()
        ):
            status = "converged"
            reason = f"every |gradient| < {problem.tolerance:g} after {len(raws)} updates"
            break
        raws.append(raw)
        bad = _non_finite(raw)
        if bad:
            status, reason = "diverged", f"at update {len(raws)} {bad}{_bound_note(derivation)}"
            break
    symbolic = symbolic_gradients(derivation, [r.values for r in raws])
    updates = tuple(
        Update(
            step=i + 1,
            values=r.values,
            loss=r.loss,
            symbolic=s,
            autodiff=r.gradient,
            updated=r.updated,
        )
        for i, (r, s) in enumerate(zip(raws, symbolic, strict=True))
    )
    if status == "completed":
        status, reason = _diverging(derivation, updates) or (status, reason)
    final_loss = updates[-1].loss if updates else None
    return Trajectory(
        derivation=derivation,
        learning_rate=problem.learning_rate,
        start=start,
        updates=updates,
        status=status,
        reason=reason,
        final_loss=final_loss,
    )


def _non_finite(raw: RawUpdate) -> str:
    if not math.isfinite(raw.loss):
        return f"the loss overflowed to {raw.loss}"
    for name, value in raw.gradient.items():
        if not math.isfinite(value):
            return f"the gradient ∂L/∂{name} overflowed to {value}"
    for name, value in raw.updated.items():
        if not math.isfinite(value):
            return f"{name} overflowed to {value}"
    return ""


def _bound_note(derivation: Derivation) -> str:
    analysis = derivation.analysis
    if analysis is None or analysis.lr_bound is None:
        return ""
    return (
        f"; the learning rate {derivation.problem.learning_rate:g} is above the bound "
        f"{analysis.lr_bound:.4g} derived for this loss, try {analysis.suggested_lr:.4g}"
    )


def _diverging(derivation: Derivation, updates: Sequence[Update]) -> tuple[str, str] | None:
    """Return ("diverging", why) when the rate is above the derived bound or the loss grows."""
    analysis = derivation.analysis
    rate = derivation.problem.learning_rate
    if analysis is not None and analysis.lr_bound is not None and rate >= analysis.lr_bound:
        return "diverging", (
            f"the learning rate {rate:g} is at or above the bound 2/λ_max = "
            f"{analysis.lr_bound:.4g} derived for this loss; try {analysis.suggested_lr:.4g}"
        )
    if _growing(updates):
        return "diverging", f"the loss grew over the last {GROWTH_RUN} updates"
    return None


def _growing(updates: Sequence[Update]) -> bool:
    if len(updates) <= GROWTH_RUN:
        return False
    last = [u.loss for u in updates[-GROWTH_RUN - 1 :]]
    return all(b > a for a, b in zip(last, last[1:], strict=False)) and last[-1] > updates[0].loss
