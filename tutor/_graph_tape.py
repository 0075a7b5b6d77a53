"""TensorFlow's side of the computation graph: the tape watching every intermediate tensor.

Imported by :func:`tutor.graph.build` only when TensorFlow's adjoints are
asked for, so the graph's SymPy side never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import sympy

from ._graph_tree import replace_at, subtree, with_placeholders
from .expression import Binary, Name, Num
from .graph import PRECISION_BITS, Adjoint
from .model import Problem

if TYPE_CHECKING:
    from .graph import _Symbolic

#: The probe symbol the error bound of an intermediate adjoint is computed with.
_PROBE = "t_probe_"


class Autodiff:
    """TF's adjoints of every node, and the bound each must meet against SymPy's."""

    def __init__(self, problem: Problem, point: Mapping[str, float], sym: _Symbolic) -> None:
        self.problem = problem
        self.point = point
        self.sym = sym
        self.grads = self._tape()
        self.totals = self._totals()
        self.places = self._hazard_places()

    def _hazard_places(self) -> dict[str, str]:
        """Where the loss itself is at a kink, singular point or overflow, by kind, as written."""
        from .verify import gradient_bound as analyse

        symbols = [s for s in self.point if s not in self.problem.data]
        if not symbols:
            return {}
        problem = _probed(self.problem, [], self.sym.row)
        assessment = analyse(problem, symbols[0]).assess(
            {k: np.array([v]) for k, v in self.point.items()}
        )
        places: dict[str, str] = {}
        for hazard in assessment.hazards:
            if hazard.mask[0]:
                text = places.get(hazard.kind)
                places[hazard.kind] = f"{text}; {hazard.text}" if text else hazard.text
        return places

    def _tape(self) -> dict[int, float]:
        """Return TF's ∂L/∂entry (in the shown row) for every varying entry.

        Each use of a symbol gets its own tensor (with data, one value per
        row), so the tape gives each path's share; the forward values are
        the same as with one shared tensor.
        """
        from .autodiff import build_loss, tensorflow

        tf = tensorflow()
        problem, entries = self.problem, self.sym.entries
        dtype = tf.float64 if problem.dtype == "float64" else tf.float32
        env = {**problem.constants, **self.point}
        n, row = problem.rows, self.sym.row
        tensors: dict[int, Any] = {}
        with tf.GradientTape() as tape:
            for i, entry in enumerate(entries):
                if entry.kind == "symbol":
                    assert isinstance(entry.tree, Name)
                    name = entry.tree.id
                    if name in problem.data:
                        value = np.array(problem.data[name], dtype=problem.dtype)
                    else:
                        value = np.array(env[name], dtype=problem.dtype)
                        value = np.full(n, value) if n else value
                    tensors[i] = tf.convert_to_tensor(value, dtype=dtype)
                    tape.watch(tensors[i])
                    continue
                shallow, placeholders = with_placeholders(entry, entries)
                bound = {p: tensors[c] for c, p in placeholders.items()}
                tensors[i] = build_loss(shallow, bound, dtype)
            loss = tensors[self.sym.root]
            if n:
                loss = tf.reduce_mean(loss)
        varying = [i for i, e in enumerate(entries) if e.varying]
        grads = tape.gradient(
            loss,
            [tensors[i] for i in varying],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        out = {}
        for i, g in zip(varying, grads, strict=True):
            array = np.asarray(g.numpy(), dtype=np.float64)
            out[i] = float(array[row]) if array.ndim and row is not None else float(array)
        return out

    def _totals(self) -> dict[str, float]:
        """TF's ∂L/∂s of every symbol that is not a data column: the tutor's own gradient."""
        from .autodiff import TensorFlowBackend

        symbols = tuple(s for s in self.point if s not in self.problem.data)
        if not symbols:
            return {}
        configured = dataclasses.replace(self.problem, wrt=symbols, variables="tensor")
        _, grads = TensorFlowBackend().gradient(configured, self.point)
        return grads

    def seed(self) -> Adjoint:
        return Adjoint(sympy.S.One, 1.0, 1.0, 0.0, "pass")

    def node(self, i: int, expr: sympy.Expr) -> Adjoint:
        """TF's adjoint of entry ``i`` judged against SymPy's ``expr`` (the probe on entry i)."""
        return self._judge(self.grads[i], expr, [self.sym.entries[i].path])

    def leaf(self, symbol: str, expr: sympy.Expr) -> Adjoint:
        """TF's ∂L/∂symbol in the row: the sum of its uses' shares, as the tape adds them."""
        uses = self.sym.uses(symbol)
        if not self.problem.data and symbol in self.totals:
            autodiff = self.totals[symbol]
        else:
            autodiff = float(math.fsum(self.grads[i] for i in uses))
        return self._judge(autodiff, expr, [self.sym.entries[i].path for i in uses])

    def total(self, symbol: str, exact: Any) -> Adjoint:
        """TF's ∂L/∂symbol over every row, judged with the tutor's own bound for that partial."""
        from .verify import gradient_bound as analyse

        autodiff = self.totals[symbol]
        analysis = analyse(self.problem, symbol)
        assessment = analysis.assess({k: np.array([v]) for k, v in self.point.items()})
        return _verdict(autodiff, exact, assessment, self.places)

    def _judge(self, autodiff: float, expr: sympy.Expr, paths: list[tuple[int, ...]]) -> Adjoint:
        from .verify import gradient_bound as analyse

        problem = _probed(self.problem, paths, self.sym.row)
        analysis = analyse(problem, _PROBE)
        points = {**{k: np.array([v]) for k, v in self.point.items()}, _PROBE: np.zeros(1)}
        assessment = analysis.assess(points)
        return _verdict(autodiff, self.sym.exact(expr), assessment, self.places)


def _probed(problem: Problem, paths: list[tuple[int, ...]], row: int | None) -> Problem:
    """Return the problem whose ∂/∂t at t = 0 is TF's adjoint of the subtrees at ``paths``.

    Each subtree v becomes v + t: TF's gradient with respect to t runs the same
    backward operations as its gradient with respect to v, and v + 0 adds at
    most one more rounding to the forward values, which the bound counts. With
    data, the row is one problem whose data are constants, divided by n as the
    mean's gradient divides.
    """
    tree = problem.tree
    for path in sorted(paths, key=len, reverse=True):
        tree = replace_at(tree, path, Binary("+", subtree(tree, path), Name(_PROBE)))
    if row is None:
        return dataclasses.replace(problem, tree=tree)
    constants = {**problem.constants, **{k: v[row] for k, v in problem.data.items()}}
    if problem.rows > 1:
        tree = Binary("/", tree, Num(str(problem.rows)))
    return dataclasses.replace(problem, tree=tree, data={}, constants=constants)


def _verdict(
    autodiff: float, exact: Any, assessment: Any, places: Mapping[str, str] | None = None
) -> Adjoint:
    """Return TF's number with its verdict against the exact value (mpmath), as verify judges.

    ``places`` says where the loss itself has each kind of hazard; a hazard
    found only on the way to one adjoint is described as the bound found it.
    """
    tolerance = float(assessment.bound[0])
    base = Adjoint(sympy.S.Zero, math.nan, autodiff, tolerance, "undefined")
    hazards = assessment.hazards_at(0)
    if exact is None:
        return dataclasses.replace(base, note="SymPy's value is undefined here")
    with mpmath.workprec(PRECISION_BITS):
        error = abs(mpmath.mpf(autodiff) - exact) if math.isfinite(autodiff) else mpmath.inf
        within = bool(error <= tolerance) and math.isfinite(tolerance)
    kind = hazards[0].kind if hazards else ""
    if kind != "kink" and within:
        return dataclasses.replace(base, verdict="pass")
    if hazards:
        where = (places or {}).get(kind) or "; ".join(
            dict.fromkeys(_unprobed(h.text) for h in hazards)
        )
        return dataclasses.replace(base, verdict=kind, note=_HAZARD_NOTES[kind].format(where=where))
    return dataclasses.replace(base, verdict="fail")


#: What each hazard means for the comparison, as ``tutor verify`` words it.
_HAZARD_NOTES = {
    "kink": "at a kink ({where}, within rounding error of the switch): TF takes the branch "
    "its rounded values choose, SymPy its own convention",
    "singular": "at a singular point ({where}), within rounding error of it",
    "overflow": "an overflow: {where} reaches the dtype's largest number within its rounding error",
    "undefined": "outside the loss's domain ({where})",
}


def _unprobed(text: str) -> str:
    """Return a hazard's description without the probe symbol the bound was computed with."""
    text = re.sub(rf"\s*\+\s*{_PROBE}", "", text)
    return re.sub(r"\(([\w.]+)\)", r"\1", text)
