"""tutor: derive gradients step by step with SymPy, compute them with TensorFlow, descend.

The public API for notebooks and scripts:

>>> import tutor
>>> problem = tutor.load("seed-w")
>>> derivation = tutor.derive(problem)
>>> derivation.partial("w").result
2*x*(w*x - y)
>>> print(tutor.render_text(derivation).splitlines()[0])
seed-w: Learn the weight w of y = w·x

``tutor.descend(derivation, tutor.TensorFlowBackend())`` runs the descent
(TensorFlow is imported then, not before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .derivation import derive
from .descent import descend, symbolic_gradients
from .errors import (
    DescentError,
    ExpressionError,
    ProblemError,
    ToolMissingError,
    TutorError,
    UsageError,
)
from .model import Derivation, Partial, Point, Problem, Step, Trajectory, Update
from .problem import load, loads, shipped_ids

if TYPE_CHECKING:
    from .autodiff import TensorFlowBackend


def render_text(obj: Derivation | Trajectory) -> str:
    """Return the plain-text rendering of a derivation or a trajectory."""
    from .render import text

    return text.derivation(obj) if isinstance(obj, Derivation) else text.trajectory(obj)


def render_latex(obj: Derivation | Trajectory) -> str:
    """Return the LaTeX rendering of a derivation or a trajectory."""
    from .render import latex

    return latex.derivation(obj) if isinstance(obj, Derivation) else latex.trajectory(obj)


def render_json(obj: Derivation | Trajectory) -> str:
    """Return the JSON rendering (JSON Lines for a trajectory)."""
    from .render import jsonl

    return jsonl.derivation(obj) if isinstance(obj, Derivation) else jsonl.trajectory(obj)


def __getattr__(name: str) -> Any:
    # TensorFlow is imported only when the backend is asked for.
    if name == "TensorFlowBackend":
        from .autodiff import TensorFlowBackend

        return TensorFlowBackend
    raise AttributeError(f"module 'tutor' has no attribute {name!r}")


__all__ = [
    "Derivation",
    "DescentError",
    "ExpressionError",
    "Partial",
    "Point",
    "Problem",
    "ProblemError",
    "Step",
    "TensorFlowBackend",
    "ToolMissingError",
    "Trajectory",
    "TutorError",
    "Update",
    "UsageError",
    "__version__",
    "derive",
    "descend",
    "load",
    "loads",
    "render_json",
    "render_latex",
    "render_text",
    "shipped_ids",
    "symbolic_gradients",
]
