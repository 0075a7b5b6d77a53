"""Draw each student's numbers for a problem: inside its box, hand-friendly, convergent.

>>> from tutor.problem import load
>>> first = draw(load("seed-w"), count=2, seed=7)
>>> first == draw(load("seed-w"), count=2, seed=7)
True
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

import numpy as np

from .analysis import CONVERGES, analyse
from .errors import UsageError
from .model import Problem
from .numeric import evaluate
from .problem import DEFAULT_BOX

#: How many draws a variant may take before the problem is declared unable to converge.
MAX_DRAWS = 200
#: Updates of the float64 trial run used for losses the analysis cannot decide.
TRIAL_STEPS = 50


@dataclass(frozen=True)
class Variant:
    """One student's version of a problem: its number, the seed, and the drawn problem."""

    number: int
    seed: int
    problem: Problem


def hand_round(value: float) -> float:
    """Round to a number a student can work with by hand: a whole number from 5 up, else 0.1.

    >>> hand_round(7.38), hand_round(-0.4321), hand_round(0.04)
    (7.0, -0.4, 0.0)
    """
    rounded = round(value) if abs(value) >= 5 else round(value, 1)
    return float(rounded) + 0.0


def draw(problem: Problem, count: int, seed: int) -> list[Variant]:
    """Return ``count`` variants of ``problem``, the same for the same ``seed``.

    Every symbol under ``[values]`` is drawn in its ``[verify]`` box (or the
    default box), rounded by :func:`hand_round`; a draw is kept only when the
    descent converges at the problem's learning rate. Constants and data stay.
    """
    if count < 1:
        raise UsageError(f"--variants {count}: give at least 1 variant")
    variants = []
    for number in range(1, count + 1):
        rng = random.Random(f"{seed}:{problem.id}:{number}")
        variants.append(Variant(number, seed, _convergent_draw(problem, rng)))
    return variants


def _convergent_draw(problem: Problem, rng: random.Random) -> Problem:
    for _ in range(MAX_DRAWS):
        values = {
            name: hand_round(rng.uniform(*problem.verify.get(name, DEFAULT_BOX)))
            for name in problem.values
        }
        candidate = dataclasses.replace(problem, values=values)
        if converges(candidate):
            return candidate
    raise UsageError(
        f"{problem.id}: no numbers drawn in its [verify] box make the descent converge at "
        f"learning rate {problem.learning_rate:g}; narrow the box or lower the rate"
    )


def converges(problem: Problem) -> bool:
    """Return whether the descent of ``problem`` converges (decided by theory when it can)."""
    analysis = analyse(problem)
    if analysis.outcome:
        # Also at the rate as written: a student computes with 0.01, not float32(0.01).
        return analysis.outcome == CONVERGES and (analysis.contraction or 0) < 1
    return _trial_run_descends(problem)


def _trial_run_descends(problem: Problem) -> bool:
    """Run a short float64 descent on SymPy's gradient; it must stay finite and lower the loss."""
    import sympy

    params = {n: float(v) for n, v in problem.values.items()}
    env_extra = {**problem.constants, **{k: np.asarray(v) for k, v in problem.data.items()}}
    grads = {n: sympy.diff(problem.loss, problem.symbol(n)) for n in problem.wrt}

    def loss_at(p: dict[str, float]) -> float:
        return float(np.mean(evaluate(problem.loss, {**env_extra, **p})))

    start = loss_at(params)
    for _ in range(TRIAL_STEPS):
        step = {n: float(np.mean(evaluate(g, {**env_extra, **params}))) for n, g in grads.items()}
        params = {**params, **{n: params[n] - problem.learning_rate * g for n, g in step.items()}}
    end = loss_at(params)
    return math.isfinite(start) and math.isfinite(end) and end < start
