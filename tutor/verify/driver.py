"""Hypothesis' search: a probe of one partial, its verdict at a point, and the search."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

from ..derivation import derive
from ..model import Derivation, Partial, Problem
from ..numeric import evaluate
from .bound import Assessment, GradientBound, gradient_bound
from .magnitude import Magnitude, magnitude
from .precision import Precision, gamma
from .reference import (
    REFERENCE_BITS,
    GradientFn,
    _mean_rows,
    _numpy_env,
    _reference,
    tensorflow_gradient,
)
from .sampling import _check_counts, box, point_strategy
from .verdict import VERDICTS, Check, PartialReport, judged, verdict_codes


@dataclass(frozen=True)
class Probe:
    """Compares one partial at single points: SymPy in mpmath against TF in the dtype."""

    problem: Problem
    partial: Partial
    gradient: GradientFn
    analysis: GradientBound
    reference: Magnitude

    @property
    def precision(self) -> Precision:
        """The floating-point type TF computes in."""
        return self.analysis.precision

    def check(self, values: Mapping[str, float]) -> Check:
        """Return the comparison at ``values`` (a value for every sampled symbol)."""
        values = {k: float(v) for k, v in values.items()}
        exact, why = _reference(self.partial.result, self.problem, values)
        autodiff = float(self.gradient(self.problem, values)[self.partial.symbol])
        assessment = self.analysis.assess({k: np.array([v]) for k, v in values.items()})
        return _judge(self, values, exact, why, autodiff, assessment)

    def reference_error(self, values: Mapping[str, float]) -> float:
        """Return the bound on the mpmath reference's own error at ``values``."""
        k = self.reference.k + self.problem.rows
        scale = _mean_rows(evaluate(self.reference.expr, _numpy_env(self.problem, values)))
        return gamma(k, 2.0**-REFERENCE_BITS) * float(np.max(scale))


def probe(
    problem: Problem,
    symbol: str,
    *,
    derivation: Derivation | None = None,
    dtype: str | None = None,
    variables: str | None = None,
    gradient: GradientFn | None = None,
) -> Probe:
    """Return a :class:`Probe` of ∂L/∂``symbol`` in ``dtype`` and ``variables`` style."""
    configured = _configure(problem, dtype, variables, (symbol,))
    partial = (derivation or derive(problem, [symbol])).partial(symbol)
    return Probe(
        problem=configured,
        partial=partial,
        gradient=gradient or tensorflow_gradient,
        analysis=gradient_bound(configured, symbol),
        reference=magnitude(partial.result),
    )


def _configure(
    problem: Problem, dtype: str | None, variables: str | None, wrt: tuple[str, ...]
) -> Problem:
    return dataclasses.replace(
        problem,
        dtype=dtype or problem.dtype,
        variables=variables or problem.variables,
        wrt=wrt,
    )


def _judge(
    probe: Probe,
    values: dict[str, float],
    exact: Any,
    why: str,
    autodiff: float,
    a: Assessment,
) -> Check:
    """Return the verdict at one point: pass, fail, or why the bound does not apply there."""
    prec = probe.precision
    check = Check(
        values=values,
        symbolic=None,
        autodiff=autodiff,
        error=math.nan,
        magnitude=float(a.magnitude[0]),
        floor=float(a.floor[0]),
        bound=float(a.bound[0]),
        u=prec.u,
        verdict="undefined",
    )
    if exact is None:
        note = f"SymPy's gradient is undefined here ({why}); TF gives {autodiff!r}"
        return dataclasses.replace(check, note=note)
    with mpmath.workprec(REFERENCE_BITS):
        error = abs(mpmath.mpf(autodiff) - exact) if math.isfinite(autodiff) else mpmath.inf
        # The reference's own error is tiny; it is only worth computing for a close call.
        within = error <= check.bound or error <= check.bound + probe.reference_error(values)
    check = dataclasses.replace(check, symbolic=float(exact), error=float(error))
    inside = bool(within) and math.isfinite(check.bound)
    code = int(verdict_codes(a, np.array([inside]))[0])
    return judged(check, a, 0, inside, code)


class _Tally:
    """Counts verdicts and keeps the worst passing or failing point and one of each special."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
        self.worst: Check | None = None
        self.specials: dict[str, Check] = {}
        self.first_failure: int | None = None
        self.calls = 0

    def add(self, check: Check) -> Check:
        """Count ``check`` and return it."""
        self.calls += 1
        self.counts[check.verdict] += 1
        if check.verdict not in ("pass", "fail"):
            self.specials.setdefault(check.verdict, check)
        elif math.isfinite(check.ratio) and (self.worst is None or check.ratio > self.worst.ratio):
            self.worst = check
        if check.verdict == "fail" and self.first_failure is None:
            self.first_failure = self.calls
        return check


def search(
    problem: Problem,
    *,
    derivation: Derivation | None = None,
    examples: int = 100,
    dtype: str | None = None,
    variables: str | None = None,
    seed: int | None = None,
    gradient: GradientFn | None = None,
) -> list[PartialReport]:
    """Return one report per wrt partial, from Hypothesis searching the box for a disagreement.

    ``examples`` points are generated per partial; a disagreement is shrunk to
    a small counterexample. No example database is used, so nothing is written
    to the current directory. ``seed`` makes the search repeatable (one is
    chosen and reported when it is None). ``gradient`` replaces TensorFlow's
    gradient, ``derivation`` SymPy's: how a test injects a wrong one.
    """
    _check_counts(examples, None, seed)
    derivation = derivation or derive(problem)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    reports = []
    for partial in derivation.partials:
        p = probe(
            problem,
            partial.symbol,
            derivation=derivation,
            dtype=dtype,
            variables=variables,
            gradient=gradient,
        )
        reports.append(_search_partial(p, examples, seed))
    return reports


def _search_partial(p: Probe, examples: int, seed: int) -> PartialReport:
    from hypothesis import Verbosity, find, settings
    from hypothesis.errors import NoSuchExample

    tally = _Tally()
    # No example database: nothing is written to the current directory. The seed, not
    # the active profile, decides the points; TF's first call is slow, so no deadline.
    options = settings(
        database=None,
        max_examples=examples,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
    )
    try:
        with _nothing_stored():
            found = find(
                point_strategy(p.problem),
                lambda values: tally.add(p.check(values)).verdict == "fail",
                settings=options,
                random=random.Random(seed),
            )
    except NoSuchExample:
        found = None
    counterexample = p.check(found) if found is not None else None
    shrinks = tally.calls - (tally.first_failure or tally.calls)
    return _report(p, "search", tally, counterexample, seed, shrinks)


@contextlib.contextmanager
def _nothing_stored() -> Iterator[None]:
    """Keep Hypothesis from writing to its storage folder (``.hypothesis/`` in the current
    directory) while the block runs.

    With no example database it still caches the constants it finds in local
    source files under ``.hypothesis/constants/``. Its storage is pointed at a
    path under ``os.devnull``, where no folder can be made: the cache is not
    written (Hypothesis ignores the failure) and the constants are read from the
    source instead.
    """
    from hypothesis import configuration

    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(Path(os.devnull) / "hypothesis")
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)


def _report(
    p: Probe,
    mode: str,
    tally: _Tally,
    counterexample: Check | None,
    seed: int | None,
    shrinks: int = 0,
) -> PartialReport:
    problem = p.problem
    return PartialReport(
        problem=problem.id,
        title=problem.title,
        symbol=p.partial.symbol,
        result=p.partial.result,
        dtype=problem.dtype,
        variables=problem.variables,
        mode=mode,
        k=p.analysis.k,
        u=p.precision.u,
        box=box(problem),
        examples=tally.calls,
        counts={k: v for k, v in tally.counts.items() if v},
        worst=tally.worst,
        counterexample=counterexample,
        specials=dict(tally.specials),
        seed=seed,
        shrinks=shrinks,
    )


# ---------------------------------------------------------------------------------------
# Batch mode: N points, NumPy float64 against one batched TF call.
