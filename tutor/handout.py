"""Assemble handouts: for each problem, the derivation, the run, and each student's variant.

Everything here computes; :mod:`tutor.render.handout` turns the result into LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .derivation import derive
from .descent import GradientBackend, descend
from .model import Derivation, Problem, Trajectory
from .variants import Variant, draw

#: Updates shown for each variant in the answer key.
KEY_UPDATES = 3


@dataclass(frozen=True)
class Worked:
    """A problem worked in full: derivation, analysis and the whole descent."""

    derivation: Derivation
    trajectory: Trajectory
    graph: Any = None  # a tutor.graph.Graph at the starting values, when asked for


@dataclass(frozen=True)
class Exercise:
    """One student's variant, and (for the answer key) its first updates worked out."""

    variant: Variant
    derivation: Derivation
    key: Trajectory | None


@dataclass(frozen=True)
class Handout:
    """What a handout holds: worked problems, or exercise variants with an optional key."""

    worked: tuple[Worked, ...]
    exercises: tuple[Exercise, ...]
    seed: int | None
    answers: bool


def build(
    problems: Sequence[Problem],
    backend: GradientBackend,
    *,
    variants: int = 0,
    seed: int = 0,
    answers: bool = False,
    graph: bool = False,
) -> Handout:
    """Return the handout for ``problems``: worked in full, or ``variants`` exercises each.

    With ``graph``, each worked problem also holds its computation graph.
    """
    if not variants:
        worked = tuple(_worked(p, backend, graph) for p in problems)
        return Handout(worked=worked, exercises=(), seed=None, answers=answers)
    exercises = tuple(
        _exercise(v, backend, answers) for p in problems for v in draw(p, variants, seed)
    )
    return Handout(worked=(), exercises=exercises, seed=seed, answers=answers)


def _worked(problem: Problem, backend: GradientBackend, graph: bool = False) -> Worked:
    derivation = derive(problem)
    shown = None
    if graph:
        from .graph import build as build_graph

        shown = build_graph(problem, derivation=derivation)
    return Worked(derivation, descend(derivation, backend), shown)


def _exercise(variant: Variant, backend: GradientBackend, answers: bool) -> Exercise:
    derivation = derive(variant.problem)
    key = None
    if answers:
        import dataclasses

        short = dataclasses.replace(variant.problem, steps=min(KEY_UPDATES, variant.problem.steps))
        key = descend(derive(short), backend)
    return Exercise(variant, derivation, key)
