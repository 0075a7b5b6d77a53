"""Check on random points that SymPy's gradient and TensorFlow's agree within the bound.

For each wrt partial of a problem, points are drawn inside the problem's
``[verify]`` box (:data:`tutor.problem.DEFAULT_BOX` for symbols it does not
list; data columns stay fixed, ``[constants]`` are never sampled), and at each
point TF's ``GradientTape`` gradient is compared with SymPy's closed form
under the forward error bound of :mod:`tutor.tolerance`:

* :func:`search` lets Hypothesis choose the points and, where TF and SymPy
  disagree, shrink the point to a small counterexample. SymPy's gradient is
  evaluated in mpmath at :data:`REFERENCE_BITS` bits: the exact reference.
* :func:`batch` draws N points at once, evaluates SymPy's gradient in NumPy
  float64 and TF's in one batched tape call over tensors of shape (N,).

Both return :class:`PartialReport` records; :func:`render` turns them into
text. Nothing here prints. Both accept a ``gradient`` function in place of
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
import functools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy

from .derivation import derive
from .errors import UsageError
from .model import Derivation, Partial, Problem
from .numeric import evaluate
from .problem import DEFAULT_BOX
from .tolerance import (
    FLOAT64,
    HAZARD_KINDS,
    Analysis,
    Assessment,
    Hazard,
    Magnitude,
    Precision,
    analyse,
    gamma,
    magnitude,
    precision,
)

#: Working precision of the mpmath reference; its own error, γ_k(2⁻²⁰⁰)·S of the closed
#: form, is added to the tolerance where a comparison is close.
REFERENCE_BITS = 200
#: What a point's comparison can conclude. Only "fail" is a disagreement.
VERDICTS = ("pass", "fail", "kink", "singular", "overflow", "undefined")
#: The largest --batch: ten million points keep the float64 arrays within memory.
MAX_BATCH = 10_000_000
#: The largest --examples: a million Hypothesis examples take about an hour per partial.
MAX_EXAMPLES = 1_000_000

#: TF's gradient at one point: (problem, values) → {symbol: gradient}.
GradientFn = Callable[[Problem, Mapping[str, float]], Mapping[str, float]]
#: TF's gradient at many points: (problem, {symbol: array (N,)}) → {symbol: array (N,)}.
BatchGradientFn = Callable[[Problem, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Check:
    """One point's comparison of TF's gradient with SymPy's."""

    values: Mapping[str, float]
    symbolic: float | None
    autodiff: float
    error: float
    magnitude: float
    floor: float
    tolerance: float
    u: float
    verdict: str
    note: str = ""

    @property
    def ratio(self) -> float:
        """The error beyond the floor as a multiple of u·S: at most about k where the bound holds.

        The floor (flushed subnormals) is subtracted first: a point where only
        the floor explains the error says nothing about the rounding of normal
        numbers. 0 for no such error, inf when S is 0 but the error is not.
        """
        beyond = self.error - self.floor
        if math.isnan(beyond):
            return math.inf
        if beyond <= 0:
            return 0.0
        return beyond / (self.u * self.magnitude) if self.magnitude > 0 else math.inf


@dataclass(frozen=True)
class PartialReport:
    """What comparing one partial at many points found."""

    problem: str
    title: str
    symbol: str
    result: sympy.Expr
    dtype: str
    variables: str
    mode: str
    k: int
    u: float
    box: Mapping[str, tuple[float, float]]
    examples: int
    counts: Mapping[str, int]
    worst: Check | None = None
    counterexample: Check | None = None
    specials: Mapping[str, Check] = field(default_factory=dict)
    seed: int | None = None
    shrinks: int = 0

    @property
    def passed(self) -> bool:
        """Whether no point disagreed beyond the bound."""
        return self.counterexample is None


# ---------------------------------------------------------------------------------------
# Where points are drawn.


def sampled(problem: Problem) -> tuple[str, ...]:
    """Return the symbols verification samples: those with a value (not data, not constants)."""
    return tuple(problem.values)


def box(problem: Problem) -> dict[str, tuple[float, float]]:
    """Return each sampled symbol's box, shrunk inwards to float32 numbers.

    >>> from tutor.problem import load
    >>> box(load("seed-w"))["w"]
    (-10.0, 10.0)
    """
    out = {}
    for name in sampled(problem):
        low, high = problem.verify.get(name, DEFAULT_BOX)
        lo32, hi32 = _float32_at_least(low), -_float32_at_least(-high)
        if lo32 > hi32:
            raise UsageError(
                f"[verify] {name} = [{low}, {high}] holds no float32 number that is normal "
                "or zero; widen the box"
            )
        out[name] = (lo32, hi32)
    return out


def _float32_at_least(value: float) -> float:
    """Return the smallest float32 number ≥ ``value`` that is zero or normal (or the largest)."""
    largest = float(np.finfo(np.float32).max)
    tiny = float(np.finfo(np.float32).tiny)
    value = min(max(value, -largest), largest)
    rounded = np.float32(value)
    if float(rounded) < value:
        rounded = np.nextafter(rounded, np.float32(np.inf))
    result = float(rounded)
    if 0 < abs(result) < tiny:  # subnormal: TF would flush it; move to 0 or the first normal
        result = tiny if result > 0 else 0.0
    return result


def point_strategy(problem: Problem) -> Any:
    """Return a Hypothesis strategy of points: float32, zero or normal, inside the box."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            name: st.floats(
                min_value=low,
                max_value=high,
                width=32,
                allow_nan=False,
                allow_infinity=False,
                allow_subnormal=False,
            )
            for name, (low, high) in box(problem).items()
        }
    )


def uniform_points(problem: Problem, size: int, seed: int | None) -> dict[str, np.ndarray]:
    """Return ``size`` points drawn uniformly in the box, rounded to float32, never subnormal.

    >>> from tutor.problem import load
    >>> points = uniform_points(load("seed-w"), 3, seed=0)
    >>> sorted(points), points["w"].shape
    (['w', 'x', 'y'], (3,))
    """
    rng = np.random.default_rng(seed)
    tiny = float(np.finfo(np.float32).tiny)
    out = {}
    for name, (low, high) in box(problem).items():
        values = rng.uniform(low, high, size).astype(np.float32).astype(np.float64)
        values = np.clip(values, low, high)
        small = np.abs(values) < tiny
        fallback = 0.0 if low <= 0 <= high else math.copysign(tiny, high)
        out[name] = np.where(small & (values != 0), fallback, values)
    return out


# ---------------------------------------------------------------------------------------
# TensorFlow's side.


def tensorflow_gradient(problem: Problem, values: Mapping[str, float]) -> dict[str, float]:
    """Return TF's gradient of every wrt symbol at one point (the tutor's own backend)."""
    from .autodiff import TensorFlowBackend

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
    from .autodiff import build_loss, tensorflow

    tf = tensorflow()
    dtype = tf.float64 if problem.dtype == "float64" else tf.float32
    shape = (-1, 1) if problem.data else (-1,)
    env: dict[str, Any] = {k: tf.constant(v, dtype=dtype) for k, v in problem.data.items()}
    env.update({k: tf.constant(v, dtype=dtype) for k, v in problem.constants.items()})
    for name, values in points.items():
        tensor = tf.constant(np.reshape(values, shape), dtype=dtype)
        variable = problem.variables == "variable" and name in problem.wrt
        env[name] = tf.Variable(tensor) if variable else tensor
    with tf.GradientTape() as tape:
        if problem.variables == "tensor":
            for name in problem.wrt:
                tape.watch(env[name])
        loss = build_loss(problem.tree, env, dtype)
        if problem.data:
            loss = tf.reduce_mean(loss, axis=-1)
        total = tf.reduce_sum(loss)
    grads = tape.gradient(
        total, [env[n] for n in problem.wrt], unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    pairs = zip(problem.wrt, grads, strict=True)
    return {n: np.asarray(g.numpy(), np.float64).reshape(-1) for n, g in pairs}


# ---------------------------------------------------------------------------------------
# One point.


@dataclass(frozen=True)
class Probe:
    """Compares one partial at single points: SymPy in mpmath against TF in the dtype."""

    problem: Problem
    partial: Partial
    gradient: GradientFn
    analysis: Analysis
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
        analysis=analyse(configured, symbol),
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
        tolerance=float(a.tolerance[0]),
        u=prec.u,
        verdict="undefined",
    )
    if exact is None:
        note = f"SymPy's gradient is undefined here ({why}); TF gives {autodiff!r}"
        return dataclasses.replace(check, note=note)
    with mpmath.workprec(REFERENCE_BITS):
        error = abs(mpmath.mpf(autodiff) - exact) if math.isfinite(autodiff) else mpmath.inf
        # The reference's own error is tiny; it is only worth computing for a close call.
        within = error <= check.tolerance or error <= check.tolerance + probe.reference_error(
            values
        )
    check = dataclasses.replace(check, symbolic=float(exact), error=float(error))
    return _verdict(check, a.hazards_at(0), bool(within), prec)


def _verdict(check: Check, hazards: Sequence[Hazard], within: bool, prec: Precision) -> Check:
    """Return ``check`` with its verdict: a kink is always reported, other hazards on a miss."""
    within = within and math.isfinite(check.tolerance)
    kind = hazards[0].kind if hazards else ""
    if kind != "kink" and within:
        return dataclasses.replace(check, verdict="pass")
    if hazards:
        note = _hazard_note(hazards, check, within, prec)
        return dataclasses.replace(check, verdict=kind, note=note)
    return dataclasses.replace(check, verdict="fail")


def _hazard_note(hazards: Sequence[Hazard], check: Check, within: bool, prec: Precision) -> str:
    """Say why the bound does not apply at a point, and what each side returned there."""
    kind = hazards[0].kind
    where = "; ".join(h.text for h in hazards)
    sides = f"SymPy gives {check.symbolic!r}, TF gives {check.autodiff!r}"
    if kind == "kink":
        agree = (
            "they agree within the bound"
            if within
            else "TF takes the branch its rounded values choose, SymPy its own convention"
        )
        return f"at a kink ({where}, within rounding error of the switch): {sides}; {agree}"
    if kind == "singular":
        return f"at a singular point ({where}), within rounding error of it; {sides}"
    if kind == "undefined":
        return f"outside the loss's domain ({where}); {sides}"
    return (
        f"an overflow: {where} reaches the largest {prec.name} within its rounding error; {sides}"
    )


# ---------------------------------------------------------------------------------------
# Hypothesis' search.


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
    γ_k(2⁻⁵³)·S (S and k of the closed form, :func:`tutor.tolerance.magnitude`)
    is added to the tolerance; TF's gradient comes from one tape call over all
    points. A disagreement is reported at the failing point nearest the origin.
    """
    _check_counts(None, size, seed)
    derivation = derivation or derive(problem)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    wrt = tuple(p.symbol for p in derivation.partials)
    configured = _configure(problem, dtype, variables, wrt)
    points = uniform_points(configured, size, seed)
    grads = (gradient or tensorflow_batch_gradient)(configured, points)
    reports = []
    for partial in derivation.partials:
        p = probe(problem, partial.symbol, derivation=derivation, dtype=dtype, variables=variables)
        reports.append(_batch_partial(p, points, np.asarray(grads[partial.symbol]), seed))
    return reports


@dataclass(frozen=True)
class _Batch:
    """One partial compared at N points: the arrays of both sides, the bound and verdicts."""

    probe: Probe
    points: Mapping[str, np.ndarray]
    reference: np.ndarray
    autodiff: np.ndarray
    assessment: Assessment
    tolerance: np.ndarray

    @functools.cached_property
    def error(self) -> np.ndarray:
        """|TF − SymPy| at each point."""
        with np.errstate(all="ignore"):
            return np.abs(self.autodiff - self.reference)

    @functools.cached_property
    def within(self) -> np.ndarray:
        """Whether each point's error is within its (finite) tolerance."""
        return (self.error <= self.tolerance) & np.isfinite(self.tolerance)

    @functools.cached_property
    def verdicts(self) -> np.ndarray:
        """Each point's verdict as an index into :data:`VERDICTS`, as :func:`_verdict` decides."""
        size = len(self.error)
        masks = {kind: np.zeros(size, dtype=bool) for kind in HAZARD_KINDS}
        for h in self.assessment.hazards:
            masks[h.kind] |= h.mask
        verdicts = np.full(size, VERDICTS.index("fail"), dtype=np.int8)
        for kind in reversed(HAZARD_KINDS[1:]):  # the first kind explains a point first
            verdicts[masks[kind]] = VERDICTS.index(kind)
        verdicts[self.within] = VERDICTS.index("pass")
        verdicts[masks["kink"]] = VERDICTS.index("kink")
        undefined = ~np.isfinite(self.reference)
        verdicts[undefined] = VERDICTS.index("undefined")
        verdicts[undefined & masks["overflow"]] = VERDICTS.index("overflow")
        return verdicts

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
            tolerance=float(self.tolerance[i]),
            u=self.probe.precision.u,
            verdict=VERDICTS[int(self.verdicts[i])],
        )
        if check.symbolic is None:
            note = f"SymPy's gradient is not a finite float64 here; TF gives {autodiff!r}"
            return dataclasses.replace(check, note=note)
        hazards = self.assessment.hazards_at(i)
        return _verdict(check, hazards, bool(self.within[i]), self.probe.precision)

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
    p: Probe, points: Mapping[str, np.ndarray], autodiff: np.ndarray, seed: int
) -> PartialReport:
    env = _numpy_env(p.problem, points)
    size = len(autodiff)
    reference = _mean_rows(evaluate(p.partial.result, env), size)
    a = p.analysis.assess(points)
    tolerance = a.tolerance + _float64_error(p.reference, p.problem, env, size)
    compared = _Batch(p, points, reference, autodiff, a, tolerance)
    return _report(p, "batch", compared.tally(), compared.counterexample(), seed)


def _float64_error(m: Magnitude, problem: Problem, env: Mapping[str, Any], size: int) -> Any:
    """Return the error bound of the closed form in NumPy float64, the mean over rows included.

    γ_k(2⁻⁵³)·S + F·T (:class:`tutor.tolerance.Magnitude`); the mean over n rows adds
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


# ---------------------------------------------------------------------------------------
# Several problems, several configurations.


def verify(
    problems: Iterable[Problem],
    *,
    examples: int | None = None,
    size: int | None = None,
    dtype: str | None = None,
    variables: Sequence[str] = ("tensor", "variable"),
    seed: int | None = None,
) -> list[PartialReport]:
    """Return the reports of every problem's partials in each requested style.

    Hypothesis' search runs with ``examples`` points (100 when neither it nor
    ``size`` is given); batch mode runs when ``size`` is given.
    """
    _check_counts(examples, size, seed)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    reports: list[PartialReport] = []
    for problem in problems:
        derivation = derive(problem)
        for style in variables:
            if size is not None:
                reports += batch(
                    problem,
                    derivation=derivation,
                    size=size,
                    dtype=dtype,
                    variables=style,
                    seed=seed,
                )
            if examples is not None or size is None:
                reports += search(
                    problem,
                    derivation=derivation,
                    examples=examples or 100,
                    dtype=dtype,
                    variables=style,
                    seed=seed,
                )
    return reports


def _check_counts(examples: int | None, size: int | None, seed: int | None) -> None:
    if examples is not None and not 1 <= examples <= MAX_EXAMPLES:
        raise UsageError(f"--examples {examples}: give a number from 1 to {MAX_EXAMPLES}")
    if size is not None and not 1 <= size <= MAX_BATCH:
        raise UsageError(f"--batch {size}: give a number of points from 1 to {MAX_BATCH}")
    if seed is not None and not 0 <= seed < 2**32:
        raise UsageError(f"--seed {seed}: give a whole number from 0 to {2**32 - 1}")


# ---------------------------------------------------------------------------------------
# Text.


def render(reports: Sequence[PartialReport]) -> str:
    """Return the reports as plain text, grouped by problem."""
    lines: list[str] = []
    current = None
    for r in reports:
        if r.problem != current:
            lines.append(f"{r.problem}: {' '.join(r.title.split())}")
            current = r.problem
        lines.extend(_render_partial(r))
    failed = sum(not r.passed for r in reports)
    checks = f"{len(reports)} check{'s' * (len(reports) != 1)}"
    lines.append(f"{checks}: " + (f"{failed} FAILED" if failed else "all passed"))
    return "\n".join(lines) + "\n"


def _render_partial(r: PartialReport) -> list[str]:
    from ._mathtext import unicode

    lines = [
        f"  ∂L/∂{r.symbol} = {unicode(r.result)}   [{r.dtype}, {r.variables}]",
        f"    examples   {_examples(r)}",
        f"    tolerance  |TF − SymPy| ≤ γ_{r.k}·S + floor, γ_k = k·u/(1 − k·u), k = {r.k}, "
        f"u = {precision(r.dtype).u_text}",
        "               S: TF's gradient re-evaluated on magnitudes; floor: flushed subnormals",
    ]
    if r.worst is not None:
        w = r.worst
        lines.append(
            f"    worst      {_ratio(w.ratio)}·u·S at {_point(w.values)} "
            f"(SymPy {_num(w.symbolic)}, TF {_num(w.autodiff)}, S = {_num(w.magnitude)})"
        )
    for verdict, c in r.specials.items():
        count = r.counts.get(verdict, 0)
        lines.append(
            f"    {verdict:<10} {count} point{'s' * (count != 1)}, not counted; "
            f"e.g. at {_point(c.values)}: {c.note}"
        )
    lines.append("    result     " + _result(r))
    return lines


def _examples(r: PartialReport) -> str:
    """Say how many points were tried, how they were drawn, and where."""
    boxes = ", ".join(f"{k} ∈ [{_num(lo)}, {_num(hi)}]" for k, (lo, hi) in r.box.items())
    if r.mode == "batch":
        how = f"uniform, seed {r.seed}; SymPy in NumPy float64, TF in one batch"
    else:
        how = f"Hypothesis, seed {r.seed}" + (f"; the last {r.shrinks} shrinking" * bool(r.shrinks))
    return f"{r.examples} ({how}) in {boxes or 'no box'}"


def _result(r: PartialReport) -> str:
    c = r.counterexample
    if c is None:
        return "PASS"
    how = "shrunk" if r.mode == "search" else "the failing point nearest the origin"
    scale = c.u * c.magnitude
    allowed = f"{_ratio(c.tolerance / scale)}·u·S" if scale else _num(c.tolerance)
    return (
        f"FAIL at {_point(c.values)} ({how}): SymPy {_num(c.symbolic)}, TF {_num(c.autodiff)}, "
        f"|TF − SymPy| = {_num(c.error)} = {_ratio(c.ratio)}·u·S > tolerance {allowed}"
    )


def _point(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in values.items())


def _num(value: float | None) -> str:
    """Return ``value`` briefly: whole numbers without a point, others to 9 digits."""
    if value is None:
        return "undefined"
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.9g}"


def _ratio(value: float) -> str:
    return f"{value:.3g}"
