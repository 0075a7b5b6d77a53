"""Where the points are drawn: the verify box, in float32 numbers that are zero or normal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import UsageError
from ..model import Problem
from ..problem import DEFAULT_BOX


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


#: The largest --batch: ten million points keep the float64 arrays within memory.
MAX_BATCH = 10_000_000


#: The largest --examples: a million Hypothesis examples take about an hour per partial.
MAX_EXAMPLES = 1_000_000


def _check_counts(examples: int | None, size: int | None, seed: int | None) -> None:
    if examples is not None and not 1 <= examples <= MAX_EXAMPLES:
        raise UsageError(f"--examples {examples}: give a number from 1 to {MAX_EXAMPLES}")
    if size is not None and not 1 <= size <= MAX_BATCH:
        raise UsageError(f"--batch {size}: give a number of points from 1 to {MAX_BATCH}")
    if seed is not None and not 0 <= seed < 2**32:
        raise UsageError(f"--seed {seed}: give a whole number from 0 to {2**32 - 1}")
