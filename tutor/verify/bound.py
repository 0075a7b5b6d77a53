"""The forward error bound TensorFlow's gradient meets: |g_tf − g| ≤ γ_k·S + floor.

``g`` is the exact gradient (SymPy's closed form evaluated in high precision),
``g_tf`` TensorFlow's ``GradientTape`` gradient in float32 or float64. The
bound is the standard forward error bound (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., ch. 3), derived for the computation
TensorFlow actually runs, one formula for both dtypes:

* **Model.** A basic operation rounds once: fl(a ∘ b) = (a ∘ b)(1 + δ),
  |δ| ≤ u, u = 2⁻²⁴ (float32) or 2⁻⁵³ (float64); ``sqrt`` too (IEEE).
  A library function f (``exp``, ``log``, …) errs by at most c_f·u relative
  to its exact value at its computed argument, so it counts as c_f roundings
  (:data:`ROUNDINGS`, with how each c_f was found).
* **γ_k.** γ_k = k·u/(1 − k·u) bounds |Π(1 + δ_i)^±1 − 1| over k roundings
  (Lemma 3.1), and γ_j + γ_k + γ_j·γ_k ≤ γ_{j+k} (Lemma 3.3) lets counts add.
* **Running bound.** Every value v TensorFlow computes gets a magnitude
  M ≥ |v|, a count k and a floor coefficient F with
  |fl(v) − v| ≤ E = γ_k·M + F·T. Sampled inputs are exact (k = 0, M = |v|);
  a constant, data value or literal the dtype cannot hold counts one
  rounding, and so does the 1/n with which ``reduce_mean`` seeds the rows
  (unless n is a power of 2). Then

  - a ± b: M = M_a + M_b, k = max(k_a, k_b) + 1;
  - a · b: M = M_a·M_b, k = k_a + k_b + 1 (k_a when b is 0 or ±2ʲ: no rounding);
  - a / b: M = ρ·(M_a + |v|·M_b)/|b|, k = max(k_a, k_b) + 1, with
    ρ = |b|/(|b| − E_b) ≥ 1 from |b'| ≥ |b| − E_b (exact, not first order);
  - f(a): M = s·M_a + |v|, k = k_a + c_f, where s = sup |f'(t)| over the
    argument's rounding interval |t − a| ≤ E_a (the mean value theorem
    gives |f(a') − f(a)| ≤ s·E_a; f's own rounding adds c_f·u·|f(a')|).
    s is computed from a bound on f'' (sin, cos, tanh, σ, softplus), from
    monotonicity (exp: e^(a+E_a); log: 1/(a − E_a); sqrt; tan; powers);
  - |a|, relu, max, min, ``where``: exact operations that are 1-Lipschitz:
    M and k of the arguments (the larger).
  - a sum of n terms (TF's ``AddN``, or ``reduce_sum`` over data rows):
    M = Σ M_i, k = max k_i + n − 1, whatever order TF adds in.

  S is M of the gradient and k its count: the gradient *as TensorFlow
  computes it* (the forward ops of :func:`tutor.autodiff.build_loss`, then
  the backward ops of TF's registered gradients in ``math_grad.py`` and
  ``nn_grad.py``) re-evaluated with every term's magnitude. Not SymPy's
  simplified closed form: simplification cancels terms TF still rounds
  (∂/∂w of w·x + w·(y − x) is y for SymPy but x + (y − x) for TF, which
  errs by about u·|x|, however small y is).
* **Floor.** TF on the CPU flushes subnormal results (and inputs) to zero:
  an absolute error below T, the smallest normal number, per operation,
  which no relative bound covers. F counts these errors, each weighted by how
  much the rest of the computation magnifies it (F of a·b is F_a·M_b +
  F_b·M_a + 1, and so on). Floors are first order: products of two error
  terms (orders u·T and T²) are left out.
* **Where the bound stops.** At a kink (abs, relu, max, min, huber's switch,
  a comparison) TF picks a branch from a rounded value: where the exact
  switching quantity lies within its rounding error of the switch, TF may
  take the other branch; that point is reported as a kink, with what each
  side returned. Where an argument's rounding interval reaches a singularity
  (division by ≈ 0, log or sqrt near 0, tan near a pole) s is unbounded: a
  singular point. Where an exact intermediate plus its error bound reaches
  the dtype's largest finite number, TF may overflow to ±inf (and NaN after
  it): an overflow. These verdicts are TF's arithmetic, not disagreements.

The values M, F, hazards and the "exact" intermediates are evaluated in NumPy
float64, vectorised over points. That evaluation errs too: S is raised by the
factor 1 + γ_{2n}(2⁻⁵³) (n operations, each M a sum of products of
non-negative numbers), and a hazard is flagged where the distance to the
switch is within E plus the float64 error bound of the intermediate.

>>> import numpy as np
>>> from tutor.problem import load
>>> analysis = gradient_bound(load("seed-w"), "w")
>>> analysis.k
3
>>> a = analysis.assess({"w": np.array([0.5]), "x": np.array([3.0]), "y": np.array([6.0])})
>>> round(float(a.magnitude[0]), 9), float(a.value[0])
(45.0, -27.0)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import Problem
from ._evaluate import Hazard, _errors, _evaluator, _labelled, _Run, _State
from .backward import _ancestors, _backward
from .graph import _forward, _Graph, _name, _Node
from .precision import HAZARD_KINDS, U64, Precision, gamma, precision


@dataclass(frozen=True)
class Assessment:
    """The bound at each of a batch of points, and where it stops applying."""

    k: int
    precision: Precision
    value: np.ndarray
    magnitude: np.ndarray
    floor: np.ndarray
    bound: np.ndarray
    hazards: tuple[Hazard, ...] = ()

    def hazards_at(self, i: int) -> tuple[Hazard, ...]:
        """Return the hazards at point ``i`` of the first kind present: kink, singular, overflow."""
        for kind in HAZARD_KINDS:
            found = tuple(h for h in self.hazards if h.kind == kind and h.mask[i])
            if found:
                # The first overflow or undefined value is the cause; later ones follow from it.
                return found if kind in ("kink", "singular") else found[:1]
        return ()


@dataclass(frozen=True)
class GradientBound:
    """TF's computation of one partial as a graph of operations, ready to bound at points."""

    symbol: str
    precision: Precision
    nodes: tuple[_Node, ...]
    order: tuple[int, ...]
    target: int
    rows: int
    data: Mapping[str, np.ndarray]
    constants: Mapping[str, float]

    @property
    def k(self) -> int:
        """The number of roundings on the longest path to the gradient."""
        return self.nodes[self.target].k

    def assess(self, points: Mapping[str, Any], chunk: int = 1 << 16) -> Assessment:
        """Return the bound at each point (``points``: symbol → array of shape (N,))."""
        arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in points.items()}
        size = len(next(iter(arrays.values()))) if arrays else 1
        step = max(1, chunk // max(self.rows, 1))
        parts = [
            self._assess({k: v[i : i + step] for k, v in arrays.items()}, min(step, size - i))
            for i in range(0, size, step)
        ]
        return parts[0] if len(parts) == 1 else _concatenate(parts)

    def _assess(self, points: Mapping[str, np.ndarray], size: int) -> Assessment:
        shape = (size, self.rows) if self.rows else (size,)
        env: dict[str, Any] = {k: v.reshape(size, 1) if self.rows else v for k, v in points.items()}
        env.update({k: np.float64(v) for k, v in self.constants.items()})
        env.update({k: v.reshape(1, -1) for k, v in self.data.items()})
        run = _Run(self, env, shape)
        with np.errstate(all="ignore"):
            for i in self.order:
                self._step(run, i)
            return self._result(run, size)

    def _step(self, run: _Run, i: int) -> None:
        node = self.nodes[i]
        args = [run.states[a] for a in node.args]
        v, m, f = _evaluator(node.op)(run, node, args)
        state = _State(v, m, f)
        _errors(node, state, self.precision)
        if node.op not in ("gt", "ge", "le"):
            size = np.abs(v)
            run.flag(
                "overflow",
                node,
                (size >= self.precision.largest) | (size + state.e >= self.precision.largest),
            )
            new_nan = np.isnan(v) & ~functools.reduce(np.logical_or, _nans(args), False)
            run.flag("undefined", _labelled(node, "has no real value"), new_nan)
        run.states[i] = state

    def _result(self, run: _Run, size: int) -> Assessment:
        out = run.states[self.target]

        def flat(x: Any) -> np.ndarray:
            array = np.asarray(x, dtype=np.float64)
            return np.broadcast_to(array.reshape(-1) if array.ndim else array, (size,))

        prec = self.precision
        # S is evaluated in float64: raise it by its own worst relative error.
        magnitude = flat(out.m) * (1 + gamma(2 * len(self.order), U64))
        floor = flat(out.f) * prec.tiny
        bound = gamma(self.k, prec.u) * magnitude + floor
        hazards = _merge(run.hazards)
        return Assessment(self.k, prec, flat(out.v), magnitude, floor, bound, hazards)


def _nans(states: Sequence[_State]) -> list[Any]:
    return [np.isnan(s.v) for s in states if not isinstance(s.v, bool | np.bool_)]


def _merge(hazards: Sequence[Hazard]) -> tuple[Hazard, ...]:
    """Combine hazards of the same kind and text (one per distinct cause)."""
    merged: dict[tuple[str, str], np.ndarray] = {}
    for h in hazards:
        key = (h.kind, h.text)
        merged[key] = merged[key] | h.mask if key in merged else h.mask.copy()
    return tuple(Hazard(kind, text, mask) for (kind, text), mask in merged.items() if mask.any())


def _concatenate(parts: Sequence[Assessment]) -> Assessment:
    keys = list(dict.fromkeys((h.kind, h.text) for p in parts for h in p.hazards))
    hazards = []
    for kind, text in keys:
        masks = [_mask_of(p, kind, text) for p in parts]
        hazards.append(Hazard(kind, text, np.concatenate(masks)))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return Assessment(
        k=parts[0].k,
        precision=parts[0].precision,
        value=joined("value"),
        magnitude=joined("magnitude"),
        floor=joined("floor"),
        bound=joined("bound"),
        hazards=tuple(hazards),
    )


def _mask_of(part: Assessment, kind: str, text: str) -> np.ndarray:
    for h in part.hazards:
        if (h.kind, h.text) == (kind, text):
            return h.mask
    return np.zeros(len(part.value), dtype=bool)


def gradient_bound(problem: Problem, symbol: str, dtype: str | None = None) -> GradientBound:
    """Return the graph of TF's computation of ∂L/∂``symbol`` in ``dtype``, ready to assess.

    ``dtype`` defaults to the problem's. The gradient is the one TF computes with
    ``symbol`` the only watched source.
    """
    prec = precision(dtype or problem.dtype)
    graph = _Graph(prec, problem.rows)
    target = _name(graph, symbol, problem)
    root = _forward(graph, problem.tree, problem)
    gradient = _backward(graph, root, target)
    return GradientBound(
        symbol=symbol,
        precision=prec,
        nodes=tuple(graph.nodes),
        order=_ancestors(graph, gradient),
        target=gradient,
        rows=problem.rows,
        data={k: np.array(v, dtype=np.float64) for k, v in problem.data.items()},
        constants=dict(problem.constants),
    )
