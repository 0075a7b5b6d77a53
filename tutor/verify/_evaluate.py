"""The magnitude analysis: each operation's value, magnitude and floor at points (NumPy)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .graph import _const_exponent, _kernel, _Node
from .precision import EPS64_SUBNORMAL, U64, Precision, gamma

if TYPE_CHECKING:
    from .bound import GradientBound


@dataclass(frozen=True)
class Hazard:
    """Points where the bound does not apply: a kink, a singular point or an overflow."""

    kind: str
    text: str
    mask: np.ndarray


@dataclass
class _State:
    v: Any
    m: Any
    f: Any
    e: Any = 0.0  # the dtype's error bound E = γ_k·M + F·T
    d: Any = 0.0  # E plus the float64 evaluation's own error bound


@dataclass
class _Run:
    """One evaluation pass: inputs, states of the nodes so far, hazards found."""

    analysis: GradientBound
    env: Mapping[str, Any]
    shape: tuple[int, ...]
    states: dict[int, _State] = field(default_factory=dict)
    hazards: list[Hazard] = field(default_factory=list)

    def flag(self, kind: str, node: _Node, mask: Any) -> None:
        """Record a hazard of ``kind`` at the points of ``mask`` (any row counts)."""
        if not np.any(mask):
            return
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        if mask.ndim == 2:
            mask = mask.any(axis=-1)
        self.hazards.append(Hazard(kind, node.text, mask.reshape(-1)))


def _errors(node: _Node, s: _State, prec: Precision) -> None:
    """Fill in E (the dtype's bound) and D (E plus float64's) for a node's state."""
    if node.exact:
        s.e, s.d = 0.0, 0.0
        return
    s.e = gamma(node.k, prec.u) * s.m + s.f * prec.tiny
    s.d = s.e + gamma(node.k + 1, U64) * s.m + s.f * EPS64_SUBNORMAL


def _ev_input(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    v = run.env[node.name]
    return v, np.abs(v), float(node.floor)


def _ev_const(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    return node.value, abs(node.value), 0.0


def _ev_add(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    v = a.v + b.v if node.op == "add" else a.v - b.v
    return v, a.m + b.m, a.f + b.f + 1


def _ev_neg(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    return -a.v, a.m, a.f


def _ev_mul(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    first, second = (run.analysis.nodes[j] for j in node.args)
    v = a.v * b.v
    if first.scale or second.scale:
        c, x = (a, b) if first.scale else (b, a)
        return v, np.abs(c.v) * x.m, np.abs(c.v) * x.f + 1
    return v, a.m * b.m, _times(b.m, a.f) + _times(a.m, b.f) + 1


def _ev_div(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    size = np.abs(b.v)
    run.flag("singular", node, size <= b.d)
    with np.errstate(all="ignore"):
        v = a.v / b.v
        rho = np.where(size > b.e, size / (size - b.e), np.inf)
        m = rho * (a.m + _times(np.abs(v), b.m * (b.e > 0))) / size
        f = rho * (a.f + _times(np.abs(v), b.f)) / size + 1
    return v, m, f


def _ev_exact(fn: Callable[..., Any]) -> Callable[[_Run, _Node, list[_State]], Any]:
    """abs, relu, max, min: exact and 1-Lipschitz, so the arguments' bounds carry over."""

    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        v = fn(*(a.v for a in args))
        return v, _largest(a.m for a in args), _largest(a.f for a in args)

    return rule


def _times(slope: Any, error: Any) -> Any:
    """slope·error, where an error of exactly 0 contributes 0 even to an infinite slope."""
    return np.where(error == 0, 0.0, slope * error)


def _largest(values: Iterable[Any]) -> Any:
    return functools.reduce(np.maximum, values)


def _ev_compare(fn: Callable[[Any, Any], Any]) -> Callable[[_Run, _Node, list[_State]], Any]:
    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        a, b = args
        run.flag("kink", node, np.abs(a.v - b.v) <= a.d + b.d)
        return fn(a.v, b.v), 0.0, 0.0

    return rule


def _ev_sign(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    run.flag("kink", node, np.abs(a.v) <= a.d)
    v = np.sign(a.v)
    return v, np.abs(v), 0.0


def _ev_select(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    c, a, b = args
    return np.where(c.v, a.v, b.v), np.where(c.v, a.m, b.m), np.where(c.v, a.f, b.f)


def _ev_rowsum(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args

    def total(x: Any) -> Any:
        return np.broadcast_to(x, run.shape).sum(axis=-1, keepdims=True)

    return total(a.v), total(a.m), total(a.f) + run.analysis.rows - 1


def _ev_addn(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    return (
        sum(a.v for a in args),
        sum(a.m for a in args),
        sum(a.f for a in args) + len(args) - 1,
    )


def _unary(
    fn: Callable[[Any], Any], slope: Callable[[_Run, _Node, _State], Any]
) -> Callable[[_Run, _Node, list[_State]], Any]:
    """A library function: M = s·M_a + |v| with s = sup |f'| on the argument's interval."""

    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        (a,) = args
        v = fn(a.v)
        if run.analysis.nodes[node.args[0]].exact:
            return v, np.abs(v), 1.0
        s = slope(run, node, a)
        return v, _times(s, a.m) + np.abs(v), _times(s, a.f) + 1

    return rule


def _slope_exp(run: _Run, node: _Node, a: _State) -> Any:
    return np.exp(a.v + a.e)


def _slope_log(run: _Run, node: _Node, a: _State) -> Any:
    run.flag("singular", _labelled(node, "near 0"), a.v <= a.d)
    return np.where(a.v > a.e, 1 / np.where(a.v > a.e, a.v - a.e, 1.0), np.inf)


def _slope_sqrt(run: _Run, node: _Node, a: _State) -> Any:
    run.flag("singular", _labelled(node, "near 0"), a.v <= a.d)
    low = np.where(a.v > a.e, a.v - a.e, 1.0)
    return np.where(a.v > a.e, 0.5 / np.sqrt(low), np.inf)


def _slope_tan(run: _Run, node: _Node, a: _State) -> Any:
    gap = np.abs(np.cos(a.v)) - a.e
    run.flag("singular", _labelled(node, "near a pole"), np.abs(np.cos(a.v)) <= a.d)
    return np.where(gap > 0, 1 / np.where(gap > 0, gap, 1.0) ** 2, np.inf)


def _slope_curved(run: _Run, node: _Node, a: _State) -> Any:
    """sup |f'| ≤ min(cap, |f'(a)| + max|f''|·E_a), by the mean value theorem on f'."""
    model = _kernel(node.op).bound
    return np.minimum(model.slope_cap, np.abs(model.derivative(a.v)) + model.curvature * a.e)


_SLOPES: dict[str, Callable[[_Run, _Node, _State], Any]] = {
    "exp": _slope_exp,
    "log": _slope_log,
    "sqrt": _slope_sqrt,
    "tan": _slope_tan,
    "curved": _slope_curved,
}


def _labelled(node: _Node, where: str) -> _Node:
    return _Node(node.op, node.args, rows=node.rows, text=f"{node.text} {where}")


def _ev_pow(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    base, exponent = (run.analysis.nodes[j] for j in node.args)
    c = _const_exponent(exponent)
    v = np.power(a.v, b.v)
    if c == 1 or (c is not None and base.exact):
        return (v, a.m, a.f) if c == 1 else (v, np.abs(v), 1.0)
    if c is not None:
        s = _power_slope(run, node, a, c)
        return v, _times(s, a.m) + np.abs(v), _times(s, a.f) + 1
    return _pow_general(run, node, a, b, v)


def _power_slope(run: _Run, node: _Node, a: _State, c: float) -> Any:
    """sup |c·t^(c−1)| over |t − a| ≤ E_a: at the far end for c ≥ 1, the near end below."""
    size = np.abs(a.v)
    if c >= 1 and float(c).is_integer():
        return abs(c) * (size + a.e) ** (c - 1)
    run.flag("singular", _labelled(node, "near 0"), size <= a.d)
    if c >= 1:
        return abs(c) * (size + a.e) ** (c - 1)
    near = np.where(size > a.e, size - a.e, 1.0)
    return np.where(size > a.e, abs(c) * near ** (c - 1), np.inf)


def _pow_general(run: _Run, node: _Node, a: _State, b: _State, v: Any) -> tuple[Any, Any, Any]:
    """a**b with a rounded or variable exponent: first order in both errors."""
    run.flag("singular", _labelled(node, "near a base of 0"), np.abs(a.v) <= a.d)
    beyond = _labelled(node, "with an exponent beyond ±64, where pow's error is not measured")
    run.flag("singular", beyond, np.abs(b.v) + b.d > 64)
    safe = np.where(a.v != 0, np.abs(a.v), 1.0)
    ds_a = np.abs(b.v) * np.abs(np.power(safe, b.v - 1))
    ds_b = np.abs(v) * np.abs(np.log(safe))
    m = _times(ds_a, a.m) + _times(ds_b, b.m) + np.abs(v)
    return v, m, _times(ds_a, a.f) + _times(ds_b, b.f) + 1


def _ev_square(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    if run.analysis.nodes[node.args[0]].scale:
        return a.v * a.v, np.abs(a.v) * a.m, np.abs(a.v) * a.f + 1
    return a.v * a.v, a.m * a.m, 2 * _times(a.m, a.f) + 1


_Evaluator = Callable[[_Run, _Node, list[_State]], tuple[Any, Any, Any]]

_EVALUATORS: dict[str, _Evaluator] = {
    "input": _ev_input,
    "const": _ev_const,
    "add": _ev_add,
    "sub": _ev_add,
    "neg": _ev_neg,
    "mul": _ev_mul,
    "square": _ev_square,
    "div": _ev_div,
    "pow": _ev_pow,
    "gt": _ev_compare(np.greater),
    "ge": _ev_compare(np.greater_equal),
    "le": _ev_compare(np.less_equal),
    "sign": _ev_sign,
    "select": _ev_select,
    "rowsum": _ev_rowsum,
    "addn": _ev_addn,
}


@functools.cache
def _kernel_evaluator(op: str, record: Any) -> _Evaluator:
    if record.bound.kind == "exact":
        return _ev_exact(record.numpy)
    return _unary(record.numpy, _SLOPES[record.bound.slope])


def _evaluator(op: str) -> _Evaluator:
    """Return how ``op`` is evaluated: arithmetic here, a function's kernel from its record."""
    if op in _EVALUATORS:
        return _EVALUATORS[op]
    return _kernel_evaluator(op, _kernel(op))
