"""The data that flows through tutor: Problem → Derivation → Trajectory, all frozen.

Stages change them with :func:`dataclasses.replace`, never by mutation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy

from .expression import Node, make_symbol

#: The outcomes of a descent, as the JSON summary spells them.
STATUSES = ("converged", "completed", "diverging", "diverged")


@dataclass(frozen=True)
class Problem:
    """A parsed, validated problem file.

    ``values`` hold a starting value for every symbol that is not a data column
    or a constant; ``data`` columns all have the same length; the loss is the
    mean over the rows when ``data`` is not empty. ``overridden`` holds the
    file's own value of each value or constant changed since (``--set``).
    """

    id: str
    title: str
    loss_text: str
    tree: Node
    loss: sympy.Expr
    values: Mapping[str, float]
    wrt: tuple[str, ...]
    learning_rate: float
    steps: int
    summary: str = ""
    tolerance: float | None = None
    variables: str = "tensor"
    dtype: str = "float32"
    constants: Mapping[str, float] = field(default_factory=dict)
    data: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    verify: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""
    overridden: Mapping[str, float] = field(default_factory=dict)
    #: Decimals a number typed in ``tutor practice`` must be right to (``[practice] decimals``).
    practice_decimals: int = 2

    @property
    def rows(self) -> int:
        """The number of data rows (0 when the problem has no ``[data]``)."""
        return len(next(iter(self.data.values()))) if self.data else 0

    def symbol(self, name: str) -> sympy.Symbol:
        """Return the SymPy symbol the loss uses for ``name``."""
        return make_symbol(name)


@dataclass(frozen=True)
class Step:
    """One named rule applied while differentiating: ``before`` equals ``after`` by ``rule``.

    ``before`` is a derivative still to be taken (an unevaluated
    ``sympy.Derivative``) or an expression being rewritten; ``substeps`` are the
    derivations this rule needed (the inner derivative of the chain rule, the
    terms of a sum). ``gives`` is what the rule gives once those substeps'
    results are plugged into ``after`` (unsimplified: ``2(wx − y)·x``), or None
    when ``after`` holds no derivative left to take.
    """

    rule: str
    before: sympy.Expr
    after: sympy.Expr
    text: str
    substeps: tuple[Step, ...] = ()
    gives: sympy.Expr | None = None


@dataclass(frozen=True)
class Partial:
    """∂L/∂symbol: the derivative to take, the steps, and the simplified result.

    With data rows, ``result`` is the per-row partial (in the columns' names)
    and ``rows`` their count; :attr:`mean` is then ∂L/∂symbol itself.
    """

    symbol: str
    derivative: sympy.Expr
    result: sympy.Expr
    steps: tuple[Step, ...] = ()
    rows: int = 0
    data: tuple[str, ...] = ()

    @property
    def mean(self) -> sympy.Expr:
        """Return ∂L/∂symbol: ``result`` itself, or its mean (1/n)·Σᵢ over the rows, with
        each data column ``x`` written as the row's ``x_i``."""
        if not self.rows:
            return self.result
        i = sympy.Symbol("i", integer=True, positive=True)
        indexed = self.result.xreplace(
            {make_symbol(n): sympy.Symbol(f"{n}_i", real=True) for n in self.data}
        )
        return sympy.Sum(indexed, (i, 1, self.rows)) / self.rows


@dataclass(frozen=True)
class Derivation:
    """Every wrt partial of a problem, derived once; renderers never differentiate again.

    ``analysis`` is a :class:`tutor.analysis.Analysis` of the descent (fixed
    point, contraction factor, learning-rate bound) for the problem's rate.
    """

    problem: Problem
    partials: tuple[Partial, ...]
    analysis: Any = None

    def partial(self, symbol: str) -> Partial:
        """Return the partial with respect to ``symbol``."""
        for p in self.partials:
            if p.symbol == symbol:
                return p
        raise KeyError(symbol)

    # Jupyter's display hooks: thin adapters over tutor.render.jupyter.

    def _repr_latex_(self) -> str:
        """Return the loss and each partial's steps as LaTeX ``align*`` blocks."""
        from .render.jupyter import derivation_latex

        return derivation_latex(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Return the derivation as LaTeX and as plain text, for Jupyter to choose from."""
        from .render.jupyter import mimebundle

        return mimebundle(self)


@dataclass(frozen=True)
class Point:
    """The loss and both gradients at one set of values (where a descent starts)."""

    values: Mapping[str, float]
    loss: float
    symbolic: Mapping[str, float]
    autodiff: Mapping[str, float]


@dataclass(frozen=True)
class RawUpdate:
    """What a gradient backend computed for one update, before SymPy's gradient is added."""

    values: dict[str, float]
    loss: float
    gradient: dict[str, float]
    updated: dict[str, float]


@dataclass(frozen=True)
class Update:
    """One gradient-descent update: the values before it, the loss there, both gradients,
    the values after it (the loss is that of the values *before*, as the notebook prints)."""

    step: int
    values: Mapping[str, float]
    loss: float
    symbolic: Mapping[str, float]
    autodiff: Mapping[str, float]
    updated: Mapping[str, float]


@dataclass(frozen=True, eq=False)
class Columns:
    """A descent's numbers as float64 NumPy arrays, one row per update.

    ``values`` holds every named value before the update, in the order of
    ``names``; ``loss`` is the loss there; ``autodiff`` and ``symbolic`` hold
    the two gradients and ``updated`` the descended values after the update,
    one column per ``wrt`` symbol. ``symbolic`` is None until SymPy's gradient
    has been evaluated. Long runs stay in this form: building one Python
    object per update would cost more than computing it.
    """

    names: tuple[str, ...]
    wrt: tuple[str, ...]
    values: Any
    loss: Any
    autodiff: Any
    updated: Any
    symbolic: Any = None

    def __len__(self) -> int:
        return len(self.loss)

    def __eq__(self, other: object) -> bool:
        """Equal names and equal numbers bit for bit (so NaN equals NaN, and −0 is not 0)."""
        if not isinstance(other, Columns):
            return NotImplemented
        if (self.names, self.wrt) != (other.names, other.wrt):
            return False
        return all(
            same_bits(getattr(self, f), getattr(other, f))
            for f in ("values", "loss", "autodiff", "updated", "symbolic")
        )

    __hash__ = None  # type: ignore[assignment]

    def head(self, count: int) -> Columns:
        """Return the first ``count`` rows."""
        return Columns(
            self.names,
            self.wrt,
            self.values[:count],
            self.loss[:count],
            self.autodiff[:count],
            self.updated[:count],
            None if self.symbolic is None else self.symbolic[:count],
        )

    @staticmethod
    def concat(pieces: list[Columns], names: tuple[str, ...], wrt: tuple[str, ...]) -> Columns:
        """Return the rows of ``pieces`` one after another (no rows when there are none)."""
        import numpy as np

        def stack(field: str, width: int | None) -> Any:
            arrays = [getattr(p, field) for p in pieces]
            if any(a is None for a in arrays):
                return None
            if not arrays:
                return np.empty((0,) if width is None else (0, width), dtype=np.float64)
            return np.concatenate(arrays)

        return Columns(
            names,
            wrt,
            stack("values", len(names)),
            stack("loss", None),
            stack("autodiff", len(wrt)),
            stack("updated", len(wrt)),
            stack("symbolic", len(wrt)),
        )

    def updates(self, first: int = 1) -> tuple[Update, ...]:
        """Return one :class:`Update` per row, with Python floats (``symbolic`` must be set)."""
        names, wrt = self.names, self.wrt
        return tuple(
            Update(
                step=first + i,
                values=dict(zip(names, v, strict=True)),
                loss=loss,
                symbolic=dict(zip(wrt, s, strict=True)),
                autodiff=dict(zip(wrt, a, strict=True)),
                updated=dict(zip(wrt, u, strict=True)),
            )
            for i, (v, loss, s, a, u) in enumerate(
                zip(
                    self.values.tolist(),
                    self.loss.tolist(),
                    self.symbolic.tolist(),
                    self.autodiff.tolist(),
                    self.updated.tolist(),
                    strict=True,
                )
            )
        )


def same_bits(a: Any, b: Any) -> bool:
    """Return whether two arrays (or None) hold the same float64 numbers, bit for bit.

    NaN equals NaN here, and −0.0 is not 0.0.
    """
    import numpy as np

    if a is None or b is None:
        return a is b
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@dataclass(frozen=True)
class Trajectory:
    """A run of gradient descent and how it ended.

    The numbers are kept in ``columns``; ``updates`` gives them one object per
    update, built on first use. ``final_loss`` is the loss at the values after
    the last update (at the start when none was taken); ``end_curvature`` is
    a :class:`tutor.analysis.Curvature` at those values when the loss is not
    quadratic and the run settled.
    """

    derivation: Derivation
    learning_rate: float
    start: Point
    columns: Columns
    status: str
    reason: str = ""
    final_loss: float | None = None
    end_curvature: Any = None

    @property
    def problem(self) -> Problem:
        return self.derivation.problem

    @property
    def steps(self) -> int:
        """The number of updates taken."""
        return len(self.columns)

    @cached_property
    def updates(self) -> tuple[Update, ...]:
        return self.columns.updates()

    # Jupyter's display hooks: thin adapters over tutor.render.jupyter.

    def _repr_html_(self) -> str:
        """Return the table of updates and the loss plot (inline SVG) as HTML."""
        from .render.jupyter import trajectory_html

        return trajectory_html(self)

    def _repr_latex_(self) -> str:
        """Return the derivation and the table of updates as LaTeX."""
        from .render.jupyter import trajectory_latex

        return trajectory_latex(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Return the run as HTML, LaTeX and plain text, for Jupyter to choose from."""
        from .render.jupyter import mimebundle

        return mimebundle(self)
