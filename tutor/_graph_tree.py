"""The skeleton of a loss tree: one entry per operation TensorFlow runs, per symbol use, per number.

Shared by :mod:`tutor.graph` (SymPy's side) and :mod:`tutor._graph_tape`
(TensorFlow's), so both walk the same operations in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from .expression import Binary, Call, Name, Node, Num, Unary, names, to_sympy
from .functions import CONSTANTS


@dataclass(frozen=True)
class Entry:
    """One operation or leaf occurrence of the tree, with where it sits in the tree."""

    tree: Node
    path: tuple[int, ...]
    children: tuple[int, ...]
    kind: str
    expr: sympy.Expr
    varying: bool  # depends on some symbol (it has an adjoint)


def skeleton(tree: Node) -> list[Entry]:
    """Return the entries of ``tree`` in post-order; unary plus runs no operation and is skipped."""
    out: list[Entry] = []

    def walk(node: Node, path: tuple[int, ...]) -> int:
        if isinstance(node, Unary) and node.op == "+":
            return walk(node.operand, (*path, 0))
        children: tuple[int, ...] = ()
        if isinstance(node, Unary):
            children = (walk(node.operand, (*path, 0)),)
        elif isinstance(node, Binary):
            children = (walk(node.left, (*path, 0)), walk(node.right, (*path, 1)))
        elif isinstance(node, Call):
            children = tuple(walk(a, (*path, k)) for k, a in enumerate(node.args))
        if isinstance(node, Name) and node.id not in CONSTANTS:
            kind = "symbol"
        elif isinstance(node, Num | Name):
            kind = "number"
        else:
            kind = "operation"
        out.append(Entry(node, path, children, kind, to_sympy(node), bool(names(node))))
        return len(out) - 1

    walk(tree, ())
    return out


def with_placeholders(entry: Entry, entries: Sequence[Entry]) -> tuple[Node, dict[int, str]]:
    """Return the entry's operation with each varying input replaced by a placeholder name."""
    placeholders = {c: f"_{c}" for c in entry.children if entries[c].varying}

    def arg(c: int) -> Node:
        return Name(placeholders[c]) if c in placeholders else entries[c].tree

    node = entry.tree
    args = [arg(c) for c in entry.children]
    if isinstance(node, Unary):
        return Unary(node.op, args[0]), placeholders
    if isinstance(node, Binary):
        return Binary(node.op, args[0], args[1]), placeholders
    if isinstance(node, Call):
        return Call(node.func, tuple(args)), placeholders
    return node, placeholders


def replace_at(tree: Node, path: tuple[int, ...], new: Node) -> Node:
    """Return ``tree`` with the subtree at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(tree, Unary):
        return Unary(tree.op, replace_at(tree.operand, rest, new))
    if isinstance(tree, Binary):
        if head == 0:
            return Binary(tree.op, replace_at(tree.left, rest, new), tree.right)
        return Binary(tree.op, tree.left, replace_at(tree.right, rest, new))
    if isinstance(tree, Call):
        args = list(tree.args)
        args[head] = replace_at(args[head], rest, new)
        return Call(tree.func, tuple(args))
    raise ValueError(f"no subtree at {path} in {tree!r}")


def subtree(tree: Node, path: tuple[int, ...]) -> Node:
    for head in path:
        if isinstance(tree, Unary):
            tree = tree.operand
        elif isinstance(tree, Binary):
            tree = tree.left if head == 0 else tree.right
        elif isinstance(tree, Call):
            tree = tree.args[head]
    return tree
