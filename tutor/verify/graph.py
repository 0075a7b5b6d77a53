"""The operation model: TensorFlow's forward computation as a graph of roundings.

Each node is one TensorFlow operation with its static rounding count; a
function of the registry adds its kernel, or the operations of its formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..expression import Binary, Call, Name, Node, Num, Unary, to_sympy
from ..functions import REGISTRY, Arithmetic, by_op
from ..model import Problem
from .precision import Precision, pow_roundings, precision, representable, roundings


@dataclass(frozen=True)
class _Node:
    """One TensorFlow operation (or input, or constant) with its static error count."""

    op: str
    args: tuple[int, ...] = ()
    k: int = 0
    rows: bool = False
    exact: bool = False  # the computed value always equals the exact one
    scale: bool = False  # the value is always 0 or ±2ʲ: multiplying by it rounds nothing
    value: float = 0.0
    fraction: Fraction | None = None
    name: str = ""
    text: str = ""
    floor: int = 0  # inputs: 1 when TF flushes one of the (data) values to zero


def _is_scale(q: Fraction | None) -> bool:
    """Return whether ``q`` is 0 or ± a power of two."""
    if q is None:
        return False
    n, d = abs(q.numerator), q.denominator
    return n == 0 or (n & (n - 1) == 0 and d & (d - 1) == 0)


class _Graph:
    """Builds the nodes in topological order; identical operations are built once.

    Sharing identical nodes is exact: TF's kernels are deterministic, so the same
    operation on the same inputs gives the same bits.
    """

    def __init__(self, prec: Precision, rows: int) -> None:
        self.prec = prec
        self.rows = rows
        self.nodes: list[_Node] = []
        self._index: dict[tuple[Any, ...], int] = {}
        self.context = ""  # what the operations being added compute, for reports

    def add(self, node: _Node) -> int:
        """Return the index of ``node``, adding it unless an identical one exists."""
        key = (node.op, node.args, node.value, node.fraction, node.name, node.rows, node.k)
        if key not in self._index:
            self._index[key] = len(self.nodes)
            self.nodes.append(node)
        return self._index[key]

    def const(self, value: Fraction | float, *, rows: bool = False, text: str = "") -> int:
        """Add a constant; it rounds once (k = 1) unless the dtype holds it exactly."""
        q = value if isinstance(value, Fraction) else None
        exact = q is not None and representable(q, self.prec)
        return self.add(
            _Node(
                "const",
                k=0 if exact else 1,
                rows=rows,
                exact=exact,
                scale=exact and _is_scale(q),
                value=float(value),
                fraction=q,
                text=text or _number_text(float(value)),
            )
        )

    def input(self, name: str, values: Sequence[float] | None, rows: bool) -> int:
        """Add a symbol's tensor: sampled values are exact; data and constants may round."""
        # Each value as one array: a data column holds up to 100 000 of them.
        given = np.asarray(values or (), dtype=np.float64)
        with np.errstate(all="ignore"):
            rounded = given.astype(self.prec.numpy).astype(np.float64)
        held = np.isfinite(rounded) & (rounded == given)
        held &= (rounded == 0) | (np.abs(rounded) >= self.prec.tiny)
        tiny = (given != 0) & (np.abs(given) < self.prec.tiny)
        floor = int(np.any(~held & tiny))
        k = int(np.any(~held & ~tiny))
        exact = k == 0 and floor == 0
        node = _Node("input", k=k, rows=rows, exact=exact, name=name, text=name, floor=floor)
        return self.add(node)

    def op(self, op: str, *args: int, text: str = "") -> int:
        """Add operation ``op`` on ``args``, folding exact constants as TF's result would be."""
        folded = self._fold(op, args)
        if folded is not None:
            return folded
        nodes = [self.nodes[a] for a in args]
        k, exact, scale = _static_rule(op)(self, nodes)
        rows = any(n.rows for n in nodes)
        text = text or self.context or op
        return self.add(_Node(op, args, k=k, rows=rows, exact=exact, scale=scale, text=text))

    def _fold(self, op: str, args: tuple[int, ...]) -> int | None:
        nodes = [self.nodes[a] for a in args]
        if op not in _FOLD or not all(n.op == "const" and n.exact for n in nodes):
            return None
        fractions = [n.fraction for n in nodes]
        if any(q is None for q in fractions):
            return None
        try:
            value = _FOLD[op](*fractions)
        except (ZeroDivisionError, ValueError):
            return None
        return self.const(value, rows=any(n.rows for n in nodes))

    def addn(self, terms: Sequence[int]) -> int:
        """Return the sum of gradient contributions (TF's AddN), or the one contribution."""
        return terms[0] if len(terms) == 1 else self.op("addn", *terms, text="a sum of gradients")


_FOLD: dict[str, Callable[..., Fraction]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
}


def _number_text(value: float) -> str:
    return f"{value:g}"


# Static rules: (k, exact, scale) of an operation from its arguments' nodes.


def _static_round(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes) + 1, False, False


def _static_mul(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    a, b = nodes
    if a.scale or b.scale:
        other = b if a.scale else a
        return other.k, False, False
    return a.k + b.k + 1, False, False


def _static_exact(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes), all(n.exact for n in nodes), False


def _static_select(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    branches = nodes[1:]
    k = max(n.k for n in branches)
    return k, all(n.exact for n in branches), all(n.scale for n in branches)


def _static_flag(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return 0, True, True


def _static_function(name: str) -> Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]:
    def rule(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
        return nodes[0].k + roundings(name, graph.prec), False, False

    return rule


def _static_square(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return _static_mul(graph, [nodes[0], nodes[0]])


def _static_pow(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    base, exponent = nodes
    if _const_exponent(exponent) == 1:
        return base.k, base.exact, base.scale
    c = _const_exponent(exponent)
    if c is not None:
        return base.k + pow_roundings(c), False, False
    return max(base.k, exponent.k) + pow_roundings(None), False, False


def _static_sum(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return nodes[0].k + graph.rows - 1, False, False


def _static_addn(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes) + len(nodes) - 1, False, False


def _const_exponent(node: _Node) -> float | None:
    """The exponent's value when it is a constant the dtype holds exactly, else None."""
    return node.value if node.op == "const" and node.exact else None


_STATIC: dict[str, Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]] = {
    "add": _static_round,
    "sub": _static_round,
    "div": _static_round,
    "mul": _static_mul,
    "square": _static_square,
    "neg": _static_exact,
    "select": _static_select,
    "sign": _static_flag,
    "gt": _static_flag,
    "ge": _static_flag,
    "le": _static_flag,
    "pow": _static_pow,
    "rowsum": _static_sum,
    "addn": _static_addn,
}


def _static_rule(op: str) -> Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]:
    """Return the static rule of ``op``: arithmetic here, a function's kernel from its record."""
    if op in _STATIC:
        return _STATIC[op]
    record = _kernel(op)
    return _static_exact if record.bound.kind == "exact" else _static_function(op)


def _kernel(op: str) -> Any:
    """Return the registry's record of the function computed by the kernel ``op``."""
    record = by_op(op)
    if record is None:
        raise KeyError(f"the error bound has no operation {op!r}")
    return record


# ---------------------------------------------------------------------------------------
# Forward: the ops build_loss runs, in the order the file writes them.

_BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def source(tree: Node) -> str:
    """Return the loss text of ``tree``, parenthesised only where needed.

    >>> from tutor.expression import parse
    >>> source(parse("(w*x - (y))**2", {"w", "x", "y"}))
    '(w*x - y)**2'
    """
    if isinstance(tree, Num):
        return tree.text
    if isinstance(tree, Name):
        return tree.id
    if isinstance(tree, Unary):
        return tree.op + _wrapped(tree.operand, 3, False)
    if isinstance(tree, Binary):
        level = _PRECEDENCE[tree.op]
        left = _wrapped(tree.left, level + (tree.op == "**"), False)
        right = _wrapped(tree.right, level, tree.op in "-/**")
        join = "**" if tree.op == "**" else ("*" if tree.op == "*" else f" {tree.op} ")
        return f"{left}{join}{right}"
    return f"{tree.func}({', '.join(source(a) for a in tree.args)})"


def _wrapped(tree: Node, level: int, strict: bool) -> str:
    text = source(tree)
    own = 5 if isinstance(tree, Num | Name | Call) else 3 if isinstance(tree, Unary) else 0
    if isinstance(tree, Binary):
        own = _PRECEDENCE[tree.op]
    return f"({text})" if own < level or (strict and own == level) else text


def _forward(graph: _Graph, tree: Node, problem: Problem) -> int:
    text = source(tree)
    if isinstance(tree, Num):
        return graph.const(Fraction(str(to_sympy(tree))), text=text)
    if isinstance(tree, Name):
        return _name(graph, tree.id, problem)
    if isinstance(tree, Unary):
        inner = _forward(graph, tree.operand, problem)
        return graph.op("neg", inner, text=text) if tree.op == "-" else inner
    if isinstance(tree, Binary):
        left = _forward(graph, tree.left, problem)
        right = _forward(graph, tree.right, problem)
        return graph.op(_BINARY_OPS[tree.op], left, right, text=text)
    args = [_forward(graph, a, problem) for a in tree.args]
    texts = [source(a) for a in tree.args]
    return _call(graph, tree.func, args, texts, text)


def _name(graph: _Graph, name: str, problem: Problem) -> int:
    if name in ("pi", "E"):
        return graph.const(math.pi if name == "pi" else math.e, text=name)
    if name in problem.data:
        return graph.input(name, problem.data[name], rows=True)
    if name in problem.constants:
        return graph.input(name, [problem.constants[name]], rows=False)
    return graph.input(name, None, rows=False)


def _call(graph: _Graph, func: str, args: list[int], texts: list[str], text: str) -> int:
    """Add the operations of a call of ``func``: its kernel, or the operations of its formula."""
    record = REGISTRY[func]
    if record.formula is None:
        return graph.op(record.bound.op, *args, text=text)
    values = [_Traced(graph, a, t) for a, t in zip(args, texts, strict=True)]
    return record.formula(_graph_arithmetic(graph, text), *values).index


class _Traced:
    """A node of the bound's graph as a formula sees it: arithmetic adds operations."""

    def __init__(self, graph: _Graph, index: int, text: str) -> None:
        self.graph = graph
        self.index = index
        self.text = text

    def _op(self, op: str, sign: str, other: Any, swap: bool = False) -> _Traced:
        b = other if isinstance(other, _Traced) else self._const(other)
        left, right = (b, self) if swap else (self, b)
        text = f"{left.text}{sign}{right.text}"
        return _Traced(self.graph, self.graph.op(op, left.index, right.index, text=text), text)

    def _const(self, value: Any) -> _Traced:
        q = Fraction(value)
        return _Traced(self.graph, self.graph.const(q), _number_text(float(q)))

    def __add__(self, other: Any) -> _Traced:
        return self._op("add", " + ", other)

    def __radd__(self, other: Any) -> _Traced:
        return self._op("add", " + ", other, swap=True)

    def __sub__(self, other: Any) -> _Traced:
        return self._op("sub", " - ", other)

    def __rsub__(self, other: Any) -> _Traced:
        return self._op("sub", " - ", other, swap=True)

    def __mul__(self, other: Any) -> _Traced:
        return self._op("mul", "*", other)

    def __rmul__(self, other: Any) -> _Traced:
        return self._op("mul", "*", other, swap=True)

    def __truediv__(self, other: Any) -> _Traced:
        return self._op("div", "/", other)

    def __rtruediv__(self, other: Any) -> _Traced:
        return self._op("div", "/", other, swap=True)


def _graph_arithmetic(graph: _Graph, text: str) -> Arithmetic:
    """Return the :class:`Arithmetic` that adds a formula's operations to ``graph``.

    ``text`` is the call the formula computes, which names its branch switch.
    """

    def unary(op: str, shown: str) -> Callable[[_Traced], _Traced]:
        def build(a: _Traced) -> _Traced:
            label = shown.format(a.text)
            return _Traced(graph, graph.op(op, a.index, text=label), label)

        return build

    def le(a: _Traced, b: _Traced) -> _Traced:
        label = f"{text} at {a.text} = {b.text}"
        return _Traced(graph, graph.op("le", a.index, b.index, text=label), label)

    def where(c: _Traced, a: _Traced, b: _Traced) -> _Traced:
        return _Traced(graph, graph.op("select", c.index, a.index, b.index, text=text), text)

    def const(q: Fraction, like: Any) -> _Traced:
        return _Traced(graph, graph.const(q), _number_text(float(q)))

    return Arithmetic(unary("abs", "|{}|"), unary("square", "{}²"), le, where, const)


#: The TensorFlow operation type of each arithmetic operation of the bound's graph.
_TF_TYPES = {
    "add": "AddV2",
    "sub": "Sub",
    "mul": "Mul",
    "div": "RealDiv",
    "neg": "Neg",
    "pow": "Pow",
    "square": "Square",
    "le": "LessEqual",
    "gt": "Greater",
    "ge": "GreaterEqual",
    "select": "SelectV2",
    "sign": "Sign",
}


def forward_operations(problem: Problem, dtype: str | None = None) -> dict[str, int]:
    """Return how often the bound models each TensorFlow operation type in the loss's forward pass.

    The operation types are TensorFlow's own (``Mul``, ``SelectV2``, a kernel's
    ``tf_op``), so the count can be compared with the graph TensorFlow builds
    (``tests/test_bound.py`` does, for every registered function).

    >>> from tutor.problem import load
    >>> forward_operations(load("seed-w"))
    {'Mul': 1, 'Sub': 1, 'Pow': 1}
    """
    graph = _Graph(precision(dtype or problem.dtype), problem.rows)
    for name in problem.wrt:
        _name(graph, name, problem)
    _forward(graph, problem.tree, problem)
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.op in ("input", "const"):
            continue
        kind = _TF_TYPES.get(node.op) or _kernel(node.op).bound.tf_op
        counts[kind] = counts.get(kind, 0) + 1
    return counts
