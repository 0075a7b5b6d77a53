"""Rehearse a command's symbolic work under the time limit before the real run repeats it.

A command that runs TensorFlow prints SymPy's formulas beside TensorFlow's
numbers: the derivation, each update with its numbers substituted, the LaTeX
of both. The printing cannot run in the limited child with the numbers (they
come from TensorFlow, which is loaded only in the tutor's own process), so
the child rehearses it first, before TensorFlow is imported: it runs the
command with :class:`StandIn` in place of TensorFlow, which takes one update
with SymPy's own gradient in NumPy, and renders that run in the requested
format. Printing one loss's formulas costs the same whatever numbers are
substituted into them, so once the rehearsal has finished within the budget,
the real rendering, which prints the same formulas (once per update), is known
to be as quick; a loss whose printing is too slow is refused before any
descent starts.

Each ``rehearse_*`` function runs in the limited child, so it takes only what
pickles, and returns nothing but a sign that it finished. Commands without
TensorFlow (``show``, ``notebook``) need no rehearsal: the child computes their
whole output (:func:`show_output`, :func:`notebook_text`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np

from .model import Columns, Derivation, Problem

#: Updates the stand-in takes: one shows every formula an update prints.
STAND_IN_UPDATES = 1


class StandIn:
    """A gradient backend from SymPy's gradient in NumPy float64, taking at most one update."""

    def __init__(self, derivation: Derivation) -> None:
        self.derivation = derivation

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]:
        """Return the loss and SymPy's gradient at ``values`` in float64."""
        from .descent import symbolic_gradients
        from .numeric import evaluate

        env: dict[str, Any] = {**problem.constants, **values}
        env.update({k: np.asarray(v, dtype=np.float64) for k, v in problem.data.items()})
        loss = float(np.mean(evaluate(problem.loss, env)))
        return loss, symbolic_gradients(self.derivation, [dict(values)])[0]

    def stream(
        self, problem: Problem, values: Mapping[str, float], steps: int
    ) -> Generator[Columns, None, None]:
        """Yield at most :data:`STAND_IN_UPDATES` updates from ``values``, as one piece."""
        names, wrt = tuple(values), problem.wrt
        rows = []
        current = dict(values)
        for _ in range(min(steps, STAND_IN_UPDATES)):
            loss, gradient = self.gradient(problem, current)
            after = {n: current[n] - problem.learning_rate * gradient[n] for n in wrt}
            rows.append((dict(current), loss, gradient, after))
            current.update(after)
        if not rows:
            return
        yield Columns(
            names,
            wrt,
            np.array([[r[0][n] for n in names] for r in rows], dtype=np.float64),
            np.array([r[1] for r in rows], dtype=np.float64),
            np.array([[r[2][n] for n in wrt] for r in rows], dtype=np.float64),
            np.array([[r[3][n] for n in wrt] for r in rows], dtype=np.float64),
        )


def _run(derivation: Derivation) -> Any:
    from .descent import descend

    return descend(derivation, StandIn(derivation))


def rehearse_step(
    derivation: Derivation,
    fmt: str,
    interactive: bool,
    show_code: bool,
    backprop: bool,
    detail: str = "full",
) -> bool:
    """Render a one-update run of ``derivation`` as ``tutor step`` would in ``fmt``."""
    from .render import jsonl, latex, stream, terminal, text

    traj = _run(derivation)
    if show_code:
        from .render.code import update_code

        update_code(derivation.problem)
    if interactive or fmt in ("rich", "plain"):
        if fmt == "rich":
            terminal.derivation(derivation, detail)
        else:
            text.derivation(derivation, detail)
        run = stream.RunText(derivation)
        run.header()
        if len(traj.columns):
            run.blocks(traj.columns, 1, [0])
        text.start_block(traj)
        text.end_curvature(traj)
        text.summary(traj)
        terminal.closing(traj, []) if fmt == "rich" else text.closing(traj)
    elif fmt == "latex":
        latex.trajectory(traj)
    elif fmt == "json":
        if len(traj.columns):
            jsonl.updates(traj.columns, 1)
        jsonl.summary(traj)
    else:
        text.seed_lines(traj.columns)
    if backprop:
        rehearse_graph(derivation.problem, 0, "rich" if fmt == "rich" else "plain")
    return True


def rehearse_graph(problem: Problem, row: int, fmt: str) -> bool:
    """Build and render the computation graph at the start, SymPy's side only."""
    from .graph import build
    from .render import graph as render

    built = build(problem, dict(problem.values), row=row, autodiff=False)
    {
        "rich": render.rich,
        "plain": render.text,
        "latex": render.latex,
        "json": render.to_json,
        "dot": render.dot,
    }[fmt](built)
    return True


def rehearse_handout(
    problems: Sequence[Problem],
    variants: int,
    seed: int,
    answers: bool,
    graph: bool,
    source: str,
    fmt: str,
) -> bool:
    """Build the handout with the stand-in's runs and render it (or its answer key)."""
    from .handout import build
    from .render.handout import render
    from .render.jsonl import answer_key

    document = build(
        problems,
        _PerProblem(),
        variants=variants,
        seed=seed,
        answers=answers or fmt == "json",
        graph=graph,
    )
    if fmt == "json":
        answer_key(document.exercises)
        return True
    render(document, source)
    if answers:
        render(document, source, key_only=True)
    return True


class _PerProblem:
    """The stand-in for a handout, whose problems (and variants) each have their own derivation."""

    def __init__(self) -> None:
        # By identity: the run asks about the same problem object several times.
        self._stand_ins: dict[int, tuple[Problem, StandIn]] = {}

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]:
        return self._for(problem).gradient(problem, values)

    def stream(
        self, problem: Problem, values: Mapping[str, float], steps: int
    ) -> Generator[Columns, None, None]:
        return self._for(problem).stream(problem, values, steps)

    def _for(self, problem: Problem) -> StandIn:
        from .derivation import derive

        if id(problem) not in self._stand_ins:
            self._stand_ins[id(problem)] = (problem, StandIn(derive(problem)))
        return self._stand_ins[id(problem)][1]


def rehearse_practice(derivation: Derivation, updates: int) -> bool:
    """Render every question of a practice session on the stand-in's run."""
    from . import practice
    from .render import practice as render

    render.intro(derivation, updates)
    for question in practice.derivative_questions(derivation):
        render.question(question, derivation)
    if updates:
        for question in practice.update_questions(_run(derivation)):
            render.question(question, derivation)
    return True


def rehearse_pitfalls(names: Sequence[str], problem: Problem | None) -> bool:
    """Prepare each pitfall on ``problem`` and work out SymPy's side of it, without TensorFlow."""
    from . import pitfalls

    for name in names:
        spec = pitfalls.prepare(name, problem)[2]
        spec.expected(pitfalls.Outcome(()))
    return True


def rehearse_verify(problems: Sequence[Problem]) -> bool:
    """Derive each problem and build the error bound of each of its partials."""
    from .derivation import derive
    from .verify import gradient_bound, magnitude

    for problem in problems:
        for partial in derive(problem).partials:
            gradient_bound(problem, partial.symbol)
            magnitude(partial.result)
    return True


# ---------------------------------------------------------------------------------------
# Commands without TensorFlow compute their whole output in the child.


def show_output(derivation: Derivation, fmt: str, detail: str = "full") -> Any:
    """Return what ``tutor show`` prints: a string, or a rich renderable for ``rich``."""
    from .render import jsonl, latex, terminal, text

    if fmt == "rich":
        return terminal.derivation(derivation, detail)
    if fmt == "plain":
        return text.derivation(derivation, detail)
    if fmt == "latex":
        return latex.derivation(derivation) + "\n"
    return jsonl.derivation(derivation)


def notebook_text(problem: Problem, source: str) -> str:
    """Return the notebook ``tutor notebook`` writes for ``problem``."""
    from .derivation import derive
    from .render.notebook import notebook

    return notebook(derive(problem), source)
