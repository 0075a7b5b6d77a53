"""The operation model of the tape: TensorFlow's registered gradients, op for op."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from .graph import _Graph, _kernel

_Grad = Callable[[_Graph, int, int], tuple[int | None, ...]]


def _grad_add(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return grad, grad


def _grad_sub(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return grad, g.op("neg", grad)


def _grad_mul(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    return g.op("mul", grad, b), g.op("mul", grad, a)


def _grad_div(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    # RealDiv: grad / b and grad * ((-a / b) / b)
    quotient = g.op("div", g.op("div", g.op("neg", a), b), b)
    return g.op("div", grad, b), g.op("mul", grad, quotient)


def _grad_neg(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("neg", grad),)


def _grad_pow(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    one = g.const(Fraction(1))
    base = g.op("mul", g.op("mul", grad, b), g.op("pow", a, g.op("sub", b, one)))
    positive = g.op("gt", a, g.const(Fraction(0)), text=f"{g.nodes[a].text} at 0 (pow)")
    safe = g.op("select", positive, a, one)
    log = g.op("select", positive, g.op("log", safe), g.const(Fraction(0)))
    return base, g.op("mul", g.op("mul", grad, i), log)


def _grad_square(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    # Square: grad * (x * 2)
    (a,) = g.nodes[i].args
    return (g.op("mul", grad, g.op("mul", a, g.const(Fraction(2)))),)


def _grad_select(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    c, _, _ = g.nodes[i].args
    zero = g.const(Fraction(0))
    return None, g.op("select", c, grad, zero), g.op("select", c, zero, grad)


_GRADIENTS: dict[str, _Grad] = {
    "add": _grad_add,
    "sub": _grad_sub,
    "mul": _grad_mul,
    "square": _grad_square,
    "div": _grad_div,
    "neg": _grad_neg,
    "pow": _grad_pow,
    "select": _grad_select,
}


def _gradient_rule(op: str) -> _Grad:
    """Return TF's gradient of ``op``: arithmetic here, a function's kernel from its record."""
    if op in _GRADIENTS:
        return _GRADIENTS[op]
    backward = _kernel(op).bound.backward
    if backward is None:
        raise KeyError(f"the error bound has no gradient for {op!r}")
    return backward


def _depends(graph: _Graph, target: int) -> set[int]:
    """Return the nodes whose value depends on ``target`` (the tape records these)."""
    found = {target}
    for i, node in enumerate(graph.nodes):
        if any(a in found for a in node.args):
            found.add(i)
    return found


def _seed(graph: _Graph, root: int) -> int:
    """The gradient of the loss at its root: 1, or 1/n per row under reduce_mean."""
    if not graph.nodes[root].rows:
        return graph.const(Fraction(1))
    one = graph.const(Fraction(1), rows=True)
    return graph.op("div", one, graph.const(Fraction(graph.rows)), text="1/n")


def _backward(graph: _Graph, root: int, target: int) -> int:
    """Add TF's backward ops from ``root`` to ``target``; return the gradient's node."""
    depends = _depends(graph, target)
    pending: dict[int, list[int]] = {root: [_seed(graph, root)]}
    for i in range(root, target, -1):
        if i not in pending:
            continue
        grad = graph.addn(pending.pop(i))
        node = graph.nodes[i]
        graph.context = f"the gradient through {node.text}"
        for arg, contribution in zip(
            node.args, _gradient_rule(node.op)(graph, i, grad), strict=True
        ):
            if contribution is None or arg not in depends:
                continue
            if node.rows and not graph.nodes[arg].rows:
                contribution = graph.op("rowsum", contribution, text="a sum over the rows")
            pending.setdefault(arg, []).append(contribution)
    return graph.addn(pending[target]) if target in pending else graph.const(Fraction(0))


def _ancestors(graph: _Graph, target: int) -> tuple[int, ...]:
    """Return the nodes ``target`` is computed from, in topological order."""
    needed = {target}
    for i in range(target, -1, -1):
        if i in needed:
            needed.update(graph.nodes[i].args)
    return tuple(sorted(needed))
