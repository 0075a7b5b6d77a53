"""Derive the closed-form partials of a problem's loss with SymPy.

>>> from tutor.problem import load
>>> derive(load("seed-w")).partial("w").result
2*x*(w*x - y)

With ``[data]``, the loss is the mean over rows of the per-row loss, so each
partial is the mean over rows of the per-row partial; ``Partial.result`` holds
the per-row partial, ``Partial.mean`` the partial itself, and renderers show
the mean around it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from ._timeout import within_time_limit
from .analysis import analyse
from .errors import UsageError
from .expression import term_order
from .model import Derivation, Partial, Problem
from .steps import explain


def derive(problem: Problem, wrt: Sequence[str] | None = None) -> Derivation:
    """Return the derivation of every partial in ``wrt`` (default: the problem's ``wrt``).

    The steps, the simplification and the analysis run under the time limit
    (one command's budget, see :func:`tutor._timeout.budget`).
    """
    symbols = tuple(wrt) if wrt else problem.wrt
    for name in symbols:
        if name not in problem.values:
            raise UsageError(unknown_symbol_message(problem, name))
    what = f"deriving {', '.join(f'∂L/∂{name}' for name in symbols)} and analysing the descent"
    return within_time_limit(_derive, problem, symbols, what=what)


def _derive(problem: Problem, symbols: tuple[str, ...]) -> Derivation:
    """Return the derivation: every partial's steps and the analysis, computed here."""
    partials = []
    for name in symbols:
        symbol = problem.symbol(name)
        steps, result = explain(
            problem.loss,
            symbol,
            mean_over_rows=bool(problem.data),
            order=term_order(problem.tree),
        )
        partials.append(
            Partial(
                symbol=name,
                derivative=sympy.Derivative(problem.loss, symbol),
                result=result,
                steps=steps,
                rows=problem.rows,
                data=tuple(problem.data),
            )
        )
    return Derivation(problem=problem, partials=tuple(partials), analysis=analyse(problem, symbols))


def unknown_symbol_message(problem: Problem, name: str) -> str:
    """Say why ``name`` cannot be descended in ``problem`` and what can."""
    import difflib

    choices = sorted(problem.values)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return (
        f"--wrt {name}: '{name}' is not a symbol with a value in {problem.id}.{hint} "
        f"Choose from: {', '.join(choices)}."
    )
