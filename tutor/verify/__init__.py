"""Check on random points that SymPy's gradient and TensorFlow's agree within the bound.

For each wrt partial of a problem, points are drawn inside the problem's
``[verify]`` box (:data:`tutor.problem.DEFAULT_BOX` for symbols it does not
list; data columns stay fixed, ``[constants]`` are never sampled), and at each
point TF's ``GradientTape`` gradient is compared with SymPy's closed form
under the forward error bound of :mod:`tutor.verify.bound`:

* :func:`search` lets Hypothesis choose the points and, where TF and SymPy
  disagree, shrink the point to a small counterexample. SymPy's gradient is
  evaluated in mpmath at :data:`REFERENCE_BITS` bits: the exact reference.
* :func:`batch` draws N points at once, evaluates SymPy's gradient in NumPy
  float64 and TF's in one batched tape call over tensors of shape (N,).

Both return :class:`PartialReport` records; :func:`tutor.render.verify.render`
turns them into text. Nothing here prints. Both accept a ``gradient`` function in place of
TensorFlow's (and a ``derivation`` in place of SymPy's), so a wrong gradient
can be injected and seen caught.

Preconditions, stated where the points are drawn: every sampled value is a
float32 number (so float32 and float64 hold it exactly) that is zero or
normal: TensorFlow on the CPU flushes subnormal inputs to zero, which SymPy
does not; subnormal *intermediates* are covered by the bound's floor.

>>> from tutor.problem import load
>>> reports = search(load("seed-w"), examples=20, seed=0)
>>> [(r.symbol, r.passed) for r in reports]
[('w', True)]
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Sequence

from ..derivation import derive
from ..errors import UsageError
from ..model import Problem
from .batched import batch
from .bound import Assessment, GradientBound, gradient_bound
from .driver import Probe, probe, search
from .magnitude import Magnitude, magnitude
from .precision import FLOAT32, FLOAT64, HAZARD_KINDS, Precision, gamma, precision
from .reference import (
    REFERENCE_BITS,
    BatchGradientFn,
    GradientFn,
    tensorflow_batch_gradient,
    tensorflow_gradient,
)
from .sampling import (
    MAX_BATCH,
    MAX_EXAMPLES,
    _check_counts,
    box,
    point_strategy,
    sampled,
    uniform_points,
)
from .verdict import VERDICTS, Check, PartialReport

__all__ = [
    "Assessment",
    "BatchGradientFn",
    "Check",
    "FLOAT32",
    "FLOAT64",
    "GradientBound",
    "GradientFn",
    "HAZARD_KINDS",
    "MAX_BATCH",
    "MAX_EXAMPLES",
    "Magnitude",
    "PartialReport",
    "Precision",
    "Probe",
    "REFERENCE_BITS",
    "VERDICTS",
    "batch",
    "box",
    "gamma",
    "gradient_bound",
    "magnitude",
    "point_strategy",
    "precision",
    "probe",
    "sampled",
    "search",
    "compared_rows",
    "tensorflow_batch_gradient",
    "tensorflow_gradient",
    "uniform_points",
    "verify",
]


def verify(
    problems: Iterable[Problem],
    *,
    examples: int | None = None,
    size: int | None = None,
    dtype: str | None = None,
    variables: Sequence[str] = ("tensor", "variable"),
    seed: int | None = None,
    on_report: Callable[[PartialReport], object] | None = None,
) -> list[PartialReport]:
    """Return the reports of every problem's partials in each requested style.

    Hypothesis' search runs with ``examples`` points (100 when neither it nor
    ``size`` is given); batch mode runs when ``size`` is given. ``on_report`` is
    called with each report as soon as it is made (a search's after each partial).
    """
    _check_counts(examples, size, seed)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    reports: list[PartialReport] = []

    def made(new: list[PartialReport]) -> None:
        reports.extend(new)
        for report in new:
            if on_report is not None:
                on_report(report)

    for problem in problems:
        _check_work(problem, examples, size)
        derivation = derive(problem)
        for style in variables:
            if size is not None:
                made(
                    batch(
                        compared_rows(problem, BATCH_ROWS),
                        derivation=derivation,
                        size=size,
                        dtype=dtype,
                        variables=style,
                        seed=seed,
                    )
                )
            if examples is not None or size is None:
                for partial in derivation.partials:
                    made(
                        search(
                            compared_rows(problem, SEARCH_ROWS),
                            derivation=dataclasses.replace(derivation, partials=(partial,)),
                            examples=examples or default_examples(problem),
                            dtype=dtype,
                            variables=style,
                            seed=seed,
                        )
                    )
    return reports


#: Data rows at which the high-precision search compares: a larger data set is searched
#: on this many of its rows, evenly spaced, as a problem of its own (TensorFlow's
#: gradient, SymPy's reference and the bound all over the same rows, so the bound's
#: reasoning holds as on any file).
SEARCH_ROWS = 200
#: Data rows at which a batch compares, chosen the same way: the bound's evaluation
#: costs some 30 array operations per point and row.
BATCH_ROWS = 20_000
#: Points × compared rows of one batch: ``--batch 1000`` over the most rows compared,
#: about 10 s here. The batch is computed in blocks of
#: :data:`tutor.verify.batched.BLOCK_ROWS`, so its memory is bounded whatever its size.
MAX_BATCH_ROWS = 1000 * BATCH_ROWS
#: Examples × data rows the high-precision search evaluates per partial: about
#: 13 s for 100 000 here, so a search stays short.
MAX_SEARCH_ROWS = 100_000


def compared_rows(problem: Problem, limit: int) -> Problem:
    """Return ``problem`` with at most ``limit`` of its data rows, evenly spaced.

    The first and the last row are among them.

    >>> from tutor import load
    >>> compared_rows(load("least-squares"), 2).data["x"]
    (0.0, 4.0)
    """
    if problem.rows <= limit:
        return problem
    import dataclasses

    picked = sorted({round(i * (problem.rows - 1) / (limit - 1)) for i in range(limit)})
    data = {k: tuple(v[i] for i in picked) for k, v in problem.data.items()}
    return dataclasses.replace(problem, data=data)


def default_examples(problem: Problem) -> int:
    """Return the search's examples when none are asked for: 100, fewer over many rows.

    >>> from tutor import load
    >>> default_examples(load("seed-w")), default_examples(load("least-squares"))
    (100, 100)
    """
    return max(1, min(100, MAX_SEARCH_ROWS // max(compared_rows(problem, SEARCH_ROWS).rows, 1)))


def _check_work(problem: Problem, examples: int | None, size: int | None) -> None:
    """Refuse a batch or a search whose points × rows would take too long."""
    rows = max(min(problem.rows, BATCH_ROWS), 1)
    if size is not None and size * rows > MAX_BATCH_ROWS:
        raise UsageError(
            f"--batch {size}: {problem.id} is compared over {rows} data rows, and points × "
            f"rows is limited to {MAX_BATCH_ROWS}; use --batch {max(1, MAX_BATCH_ROWS // rows)} "
            "or fewer"
        )
    searched = max(compared_rows(problem, SEARCH_ROWS).rows, 1)
    if examples is not None and examples * searched > MAX_SEARCH_ROWS:
        raise UsageError(
            f"--examples {examples}: {problem.id} is searched over {searched} data rows, and "
            f"examples × rows is limited to {MAX_SEARCH_ROWS}; use --examples "
            f"{max(1, MAX_SEARCH_ROWS // searched)} or fewer"
        )
