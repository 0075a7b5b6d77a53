"""Run gradient descent and record every update beside SymPy's exact gradient.

The gradient backend is passed in: it computes the loss, the gradient that
drives each update, and the update itself (TensorFlow in the CLI). This module
adds SymPy's gradient at the same values, evaluated in float64, and decides
how the run ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ._mathtext import plain_name
from .analysis import curvature, status_reason
from .model import Columns, Derivation, Point, Problem, Trajectory
from .numeric import evaluate


class GradientBackend(Protocol):
    """What :func:`descend` needs from whatever computes the numbers."""

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]: ...

    def stream(
        self, problem: Problem, values: Mapping[str, float], steps: int
    ) -> Generator[Columns, None, None]: ...


#: How many consecutive growing losses flag a run as diverging.
GROWTH_RUN = 3

#: Points × data rows evaluated at once by :func:`symbolic_columns`: each temporary
#: array of a formula then holds at most 8 MiB of float64s.
BLOCK_ELEMENTS = 1 << 20


def symbolic_gradients(
    derivation: Derivation, points: Sequence[Mapping[str, float]]
) -> list[dict[str, float]]:
    """Return SymPy's gradient at each point, in float64, vectorised over the points.

    With data rows, each partial is the mean over the rows of the per-row partial.
    """
    if not points:
        return []
    names = tuple(points[0])
    table = np.array([[p[n] for n in names] for p in points], dtype=np.float64)
    return [
        dict(zip(derivation.problem.wrt, row, strict=True))
        for row in symbolic_columns(derivation, names, table).tolist()
    ]


def symbolic_columns(derivation: Derivation, names: Sequence[str], values: Any) -> Any:
    """Return SymPy's gradient, one row per row of ``values`` and one column per wrt symbol.

    ``values`` is an (n, len(names)) array; the partials are evaluated in float64
    on whole columns at once.
    """
    problem = derivation.problem
    count = len(values)
    out = np.empty((count, len(problem.wrt)), dtype=np.float64)
    # Points × rows values per temporary of the formula: bounded, whatever the file holds.
    block = max(1, BLOCK_ELEMENTS // max(problem.rows, 1))
    data = {k: np.array(v, dtype=np.float64)[None, :] for k, v in problem.data.items()}
    for first in range(0, count, block):
        rows = values[first : first + block]
        env: dict[str, Any] = {name: rows[:, j, None] for j, name in enumerate(names)}
        env.update({k: np.float64(v) for k, v in problem.constants.items()})
        env.update(data)
        for j, symbol in enumerate(problem.wrt):
            partial = derivation.partial(symbol)
            shape = (len(rows), max(problem.rows, 1))
            column = np.broadcast_to(evaluate(partial.result, env), shape)
            out[first : first + len(rows), j] = column.mean(axis=1)
    return out


def descend(
    derivation: Derivation,
    backend: GradientBackend,
    on_updates: Callable[[Columns, int], object] | None = None,
) -> Trajectory:
    """Run the problem's descent with ``backend`` and return its trajectory.

    The run stops early when every gradient is below the problem's tolerance
    (``converged``) or when the loss or a value stops being finite
    (``diverged``): the backend computes the steps it is given in pieces, and
    the updates after the stop are dropped here. ``on_updates(columns, first)``
    is called with each piece that is kept, SymPy's gradient added, as soon
    as it is ready (``first`` is the number of its first update), while the
    backend computes the next one.
    """
    problem = derivation.problem
    start_loss, start_grad = backend.gradient(problem, problem.values)
    start = Point(
        values=dict(problem.values),
        loss=start_loss,
        symbolic=symbolic_gradients(derivation, [problem.values])[0],
        autodiff=start_grad,
    )
    names = tuple(problem.values)
    given = {0: "no update: none was asked for", 1: "the 1 update it was given"}.get(
        problem.steps, f"all {problem.steps} updates it was given"
    )
    status, reason = "completed", f"ran {given}"
    kept: list[Columns] = []
    taken = 0
    # Closed on the way out, so that a backend computing ahead stops at once.
    with contextlib.closing(backend.stream(problem, dict(problem.values), problem.steps)) as run:
        for piece in run:
            count, ended, why = _stop(derivation, piece, taken)
            piece = piece.head(count)
            piece = dataclasses.replace(
                piece, symbolic=symbolic_columns(derivation, names, piece.values)
            )
            kept.append(piece)
            if on_updates is not None and count:
                on_updates(piece, taken + 1)
            taken += count
            if ended:
                status, reason = ended, why
                break
    columns = Columns.concat(kept, names, problem.wrt)
    if status in ("completed", "converged") and taken:
        status, reason = _diverging(derivation, columns.loss, status) or (status, reason)
    final = final_values(start.values, columns)
    final_loss = backend.gradient(problem, final)[0] if taken else start_loss
    return Trajectory(
        derivation=derivation,
        learning_rate=problem.learning_rate,
        start=start,
        columns=columns,
        status=status,
        reason=reason,
        final_loss=float(final_loss),
        end_curvature=_end_curvature(derivation, final, status) if taken else None,
    )


def final_values(start: Mapping[str, float], columns: Columns) -> dict[str, float]:
    """Return every value after the last update (the start when no update was taken)."""
    if not len(columns):
        return dict(start)
    return {
        **dict(zip(columns.names, columns.values[-1].tolist(), strict=True)),
        **dict(zip(columns.wrt, columns.updated[-1].tolist(), strict=True)),
    }


def _end_curvature(derivation: Derivation, final: Mapping[str, float], status: str) -> Any:
    """Return the curvature at the final values of a run that settled on a non-quadratic loss."""
    analysis = derivation.analysis
    if analysis is None or analysis.start is None or status not in ("converged", "completed"):
        return None
    if not all(math.isfinite(v) for v in final.values()):
        return None
    return curvature(derivation.problem, derivation.problem.wrt, analysis.hessian, final)


def _stop(derivation: Derivation, columns: Columns, taken: int) -> tuple[int, str, str]:
    """Return how many of these updates the run keeps, its status and why.

    ``taken`` updates came before these. The run converges before the first
    update whose every |gradient| is below the tolerance, and diverges at the
    first update with a non-finite loss, gradient or new value (that update
    is kept, to be shown). The status is empty when neither happened here.
    """
    problem = derivation.problem
    steps = len(columns)
    converged = diverged = steps
    if problem.tolerance is not None and steps:
        small = np.all(np.abs(columns.autodiff) < problem.tolerance, axis=1)
        converged = int(np.argmax(small)) if small.any() else steps
    finite = np.isfinite(columns.loss)
    finite &= np.all(np.isfinite(columns.autodiff), axis=1)
    finite &= np.all(np.isfinite(columns.updated), axis=1)
    if not finite.all():
        diverged = int(np.argmin(finite))
    if converged <= diverged and converged < steps:
        return (
            converged,
            "converged",
            (f"every |gradient| < {problem.tolerance:g} after {taken + converged} updates"),
        )
    if diverged < steps:
        why = _non_finite(columns, diverged)
        at = taken + diverged + 1
        return diverged + 1, "diverged", f"at update {at} {why}{_bound_note(derivation)}"
    return steps, "", ""


def _non_finite(columns: Columns, row: int) -> str:
    loss = float(columns.loss[row])
    if not math.isfinite(loss):
        return f"the loss {_went(loss)}"
    for name, value in zip(columns.wrt, columns.autodiff[row].tolist(), strict=True):
        if not math.isfinite(value):
            return f"the gradient ∂L/∂{plain_name(name)} {_went(value)}"
    for name, value in zip(columns.wrt, columns.updated[row].tolist(), strict=True):
        if not math.isfinite(value):
            return f"{plain_name(name)} {_went(value)}"
    return ""


def _went(value: float) -> str:
    """Say how a number stopped being finite: an overflow gives ±inf; nan is no number at all
    (a log or a fractional power of a negative number, 0/0, inf − inf)."""
    if math.isnan(value):
        return "is nan, not a number: a log or a fractional power of a negative number gives it"
    return f"overflowed to {value}"


def _bound_note(derivation: Derivation) -> str:
    analysis = derivation.analysis
    if analysis is None or not analysis.diverging:
        return ""
    return "; " + status_reason(analysis, derivation.problem)


def _diverging(derivation: Derivation, losses: Any, status: str) -> tuple[str, str] | None:
    """Return ("diverging", why) when theory says the iterates do not settle, or the loss grows.

    On a quadratic (or linear) loss theory decides: a rate above the bound, a
    saddle, a maximum or a loss unbounded below is diverging whatever the
    values did; a rate on or below the bound is not. Elsewhere the loss
    growing over the last updates flags it.
    """
    analysis = derivation.analysis
    if analysis is not None and analysis.outcome:
        if analysis.diverging:
            return "diverging", status_reason(analysis, derivation.problem)
        return None
    if status == "completed" and _growing(losses):
        return "diverging", f"the loss grew over the last {GROWTH_RUN} updates"
    return None


def _growing(losses: Any) -> bool:
    if len(losses) <= GROWTH_RUN:
        return False
    last = losses[-GROWTH_RUN - 1 :].tolist()
    return all(b > a for a, b in zip(last, last[1:], strict=False)) and last[-1] > losses[0]
