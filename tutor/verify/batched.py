"""Batch mode: N uniform points, NumPy float64 against one TensorFlow tape."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..derivation import derive
from ..model import Derivation, Problem
from ..numeric import evaluate
from .bound import Assessment, _concatenate
from .driver import Probe, _configure, _report, _Tally, probe
from .reference import (
    BatchGradientFn,
    _float64_error,
    _mean_rows,
    _numpy_env,
    tensorflow_batch_gradient,
)
from .sampling import _check_counts, uniform_points
from .verdict import VERDICTS, Check, PartialReport, judged, verdict_codes


def batch(
    problem: Problem,
    *,
    derivation: Derivation | None = None,
    size: int = 1000,
    dtype: str | None = None,
    variables: str | None = None,
    seed: int | None = None,
    gradient: BatchGradientFn | None = None,
) -> list[PartialReport]:
    """Return one report per wrt partial, from ``size`` uniform points in the box.

    SymPy's gradient is evaluated in NumPy float64, whose own error
    γ_k(2⁻⁵³)·S (S and k of the closed form, :func:`tutor.verify.magnitude.magnitude`)
    is added to the tolerance; TF's gradient comes from one tape call over all
    points. A disagreement is reported at the failing point nearest the origin.
    """
    _check_counts(None, size, seed)
    derivation = derivation or derive(problem)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    wrt = tuple(p.symbol for p in derivation.partials)
    configured = _configure(problem, dtype, variables, wrt)
    points = uniform_points(configured, size, seed)
    blocks = _blocks(size, problem.rows)
    compute = gradient or tensorflow_batch_gradient
    parts = [compute(configured, _take(points, block)) for block in blocks]
    reports = []
    for partial in derivation.partials:
        p = probe(problem, partial.symbol, derivation=derivation, dtype=dtype, variables=variables)
        autodiff = np.concatenate([np.asarray(g[partial.symbol]).reshape(-1) for g in parts])
        reports.append(_batch_partial(p, points, autodiff, seed, blocks))
    return reports


#: Points × data rows computed at once: each temporary array then holds at most 8 MB
#: of float64s (4 MB in float32 for TensorFlow), however many points a batch has.
BLOCK_ROWS = 1_000_000


def _blocks(size: int, rows: int) -> list[slice]:
    """Return the slices of the ``size`` points computed together (all of them without data).

    >>> _blocks(1000, 20_000)[:2]
    [slice(0, 50, None), slice(50, 100, None)]
    """
    step = max(1, BLOCK_ROWS // max(rows, 1))
    return [slice(i, min(i + step, size)) for i in range(0, size, step)]


def _take(points: Mapping[str, np.ndarray], block: slice) -> dict[str, np.ndarray]:
    return {k: v[block] for k, v in points.items()}


@dataclass(frozen=True)
class _Batch:
    """One partial compared at N points: the arrays of both sides, the bound and verdicts."""

    probe: Probe
    points: Mapping[str, np.ndarray]
    reference: np.ndarray
    autodiff: np.ndarray
    assessment: Assessment
    bound: np.ndarray

    @functools.cached_property
    def error(self) -> np.ndarray:
        """|TF − SymPy| at each point."""
        with np.errstate(all="ignore"):
            return np.abs(self.autodiff - self.reference)

    @functools.cached_property
    def within(self) -> np.ndarray:
        """Whether each point's error is within its (finite) tolerance."""
        return (self.error <= self.bound) & np.isfinite(self.bound)

    @functools.cached_property
    def verdicts(self) -> np.ndarray:
        """Each point's verdict as an index into :data:`VERDICTS` (see :func:`verdict_codes`)."""
        return verdict_codes(self.assessment, self.within, ~np.isfinite(self.reference))

    def check(self, i: int) -> Check:
        """Return the comparison at point ``i``."""
        symbolic, autodiff = float(self.reference[i]), float(self.autodiff[i])
        check = Check(
            values={k: float(v[i]) for k, v in self.points.items()},
            symbolic=symbolic if math.isfinite(symbolic) else None,
            autodiff=autodiff,
            error=float(self.error[i]),
            magnitude=float(self.assessment.magnitude[i]),
            floor=float(self.assessment.floor[i]),
            bound=float(self.bound[i]),
            u=self.probe.precision.u,
            verdict=VERDICTS[int(self.verdicts[i])],
        )
        if check.symbolic is None:
            note = f"SymPy's gradient is not a finite float64 here; TF gives {autodiff!r}"
            return dataclasses.replace(check, note=note)
        return judged(check, self.assessment, i, bool(self.within[i]), int(self.verdicts[i]))

    def worst(self) -> Check | None:
        """Return the passing or failing point whose error beyond the floor is the most u·S."""
        a = self.assessment
        with np.errstate(all="ignore"):
            ratio = np.maximum(self.error - a.floor, 0) / (self.probe.precision.u * a.magnitude)
        counted = (self.verdicts <= 1) & np.isfinite(ratio)
        if not counted.any():
            return None
        return self.check(int(np.flatnonzero(counted)[np.argmax(ratio[counted])]))

    def counterexample(self) -> Check | None:
        """Return the failing point nearest the origin (largest coordinate smallest), if any."""
        failures = np.flatnonzero(self.verdicts == VERDICTS.index("fail"))
        if not failures.size:
            return None
        sizes = np.max(np.abs(np.stack([v[failures] for v in self.points.values()])), axis=0)
        return self.check(int(failures[np.argmin(sizes)]))

    def tally(self) -> _Tally:
        """Return the counts, the worst point and one point of each special verdict."""
        tally = _Tally()
        tally.calls = len(self.error)
        for i, verdict in enumerate(VERDICTS):
            hits = np.flatnonzero(self.verdicts == i)
            tally.counts[verdict] = int(hits.size)
            if hits.size and verdict not in ("pass", "fail"):
                tally.specials[verdict] = self.check(int(hits[0]))
        tally.worst = self.worst()
        return tally


def _batch_partial(
    p: Probe,
    points: Mapping[str, np.ndarray],
    autodiff: np.ndarray,
    seed: int,
    blocks: list[slice],
) -> PartialReport:
    references, assessments, bounds = [], [], []
    for block in blocks:
        part = _take(points, block)
        env = _numpy_env(p.problem, part)
        size = block.stop - block.start
        references.append(_mean_rows(evaluate(p.partial.result, env), size))
        a = p.analysis.assess(part)
        assessments.append(a)
        bounds.append(a.bound + _float64_error(p.reference, p.problem, env, size))
    a = assessments[0] if len(assessments) == 1 else _concatenate(assessments)
    reference, bound = np.concatenate(references), np.concatenate(bounds)
    compared = _Batch(p, points, reference, autodiff, a, bound)
    return _report(p, "batch", compared.tally(), compared.counterexample(), seed)
