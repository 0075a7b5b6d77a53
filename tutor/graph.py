"""The loss as a computation graph: the chain rule node by node, as reverse mode runs it.

:func:`build` returns a :class:`Graph` with one node per operation TensorFlow
runs for the loss (the order :func:`tutor.autodiff.build_loss` builds it in),
and for every node:

* its forward value at the given values;
* the local derivative of its consumer with respect to it (symbolic, and
  its number), on the edge between them;
* its adjoint ∂L/∂node: the upstream gradient times the local derivative,
  as a closed form (SymPy) evaluated exactly, and, unless ``autodiff`` is
  off, as TensorFlow computes it (``tape.gradient`` of the loss with respect
  to the intermediate tensor, watched on the tape);
* the derivation's name for it (the inner function ``u`` of a chain rule)
  and the rule steps of the derivation that differentiate it.

A symbol used twice is one leaf with two incoming edges: each edge carries
its path's contribution and the leaf's gradient is their sum. With data,
the graph is one row's (its nodes carry that row's part of ∂L/∂node, with
the 1/n of the mean) under a mean node; the leaves also carry the whole
∂L/∂s over every row.

TensorFlow and SymPy are compared under the forward error bound of
:mod:`tutor.verify`, as ``tutor verify`` compares them.

>>> from tutor.problem import load
>>> graph = build(load("seed-w"), autodiff=False)
>>> [(n.label, n.value) for n in graph.nodes if n.kind == "operation"]
[('(wx − y)²', 20.25), ('u = wx − y', -4.5), ('wx', 1.5)]
>>> graph.leaf("w").adjoint.symbolic
-27.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import sympy

from ._graph_tree import Entry, skeleton, with_placeholders
from ._mathtext import unicode as _m
from .expression import Binary, Call, Name, Node, Unary, to_sympy
from .model import Problem, Step

if TYPE_CHECKING:
    from ._graph_tape import Autodiff

#: Working precision (bits) of the exact values: SymPy's closed forms in mpmath.
PRECISION_BITS = 200
#: What a comparison of TensorFlow's adjoint with SymPy's can conclude (as in ``tutor verify``).
VERDICTS = ("pass", "fail", "kink", "singular", "overflow", "undefined")
#: Node kinds: the mean over rows, an operation, a symbol (leaf), a number (leaf).
KINDS = ("mean", "operation", "symbol", "number")


@dataclass(frozen=True)
class Adjoint:
    """∂L/∂(a node) or a path's share of it: SymPy's closed form and number, and TF's.

    ``verdict`` is empty when TensorFlow was not asked; otherwise one of
    :data:`VERDICTS`, with ``tolerance`` the bound TF's number had to meet.
    """

    expr: sympy.Expr
    symbolic: float
    autodiff: float | None = None
    tolerance: float | None = None
    verdict: str = ""
    note: str = ""


@dataclass(frozen=True)
class GraphNode:
    """One node: an operation, a symbol or a number, with its value and its adjoint.

    ``form`` is the operation written on its inputs' names (``u²``);
    ``short`` the operation on its inputs' names or ids (``y·log(n5)``), for
    pictures; ``inputs`` the ids of the nodes it reads; ``steps`` the derivation's rule
    steps that differentiate this node (``∂L/∂w: chain rule, inner u = wx −
    y``). ``total`` is, for a symbol with data, ∂L/∂s over every row.
    """

    id: str
    kind: str
    op: str
    expr: sympy.Expr
    form: sympy.Expr
    name: str
    value: float
    adjoint: Adjoint | None
    inputs: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    total: Adjoint | None = None
    short: sympy.Expr | None = None
    written: str = ""

    @property
    def label(self) -> str:
        """The node as text: ``u = wx − y`` when the derivation names it, else ``wx − y``.

        ``written`` (the loss text of the subtree) stands in for the expression
        where SymPy collapsed the operation: ``w − w`` rather than ``0``.
        """
        if self.kind == "mean":
            return "L"
        shown = self.written or _m(self.expr)
        return f"{self.name} = {shown}" if self.name else shown


@dataclass(frozen=True)
class Edge:
    """An input of an operation: the local derivative and the gradient passed down it.

    ``passed`` is the consumer's adjoint times ``local``: the child's adjoint
    when the child is an operation, one path's contribution when it is a
    symbol used more than once. Edges into numbers carry no gradient.
    """

    parent: str
    child: str
    position: int
    local: sympy.Expr | None
    local_value: float | None
    passed: Adjoint | None


@dataclass(frozen=True)
class ChainLink:
    """A chain-rule step of the derivation and the graph nodes it corresponds to."""

    symbol: str
    inner_name: str
    inner: sympy.Expr
    outer: sympy.Expr
    outer_nodes: tuple[str, ...]
    inner_nodes: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """The computation graph of a problem's loss at ``values`` (after ``at`` updates).

    ``nodes`` run from the loss down to the leaves (a node before its inputs);
    ``row`` is the 0-based data row shown (None without data).
    """

    problem: Problem
    values: Mapping[str, float]
    at: int
    row: int | None
    nodes: tuple[GraphNode, ...]
    edges: tuple[Edge, ...]
    chain: tuple[ChainLink, ...]
    autodiff: bool
    loss: float

    def node(self, node_id: str) -> GraphNode:
        """Return the node with id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def leaf(self, symbol: str) -> GraphNode:
        """Return the leaf of ``symbol``."""
        return self.node(symbol)

    def edges_into(self, node_id: str) -> tuple[Edge, ...]:
        """Return the edges that read ``node_id`` (two or more for a symbol used twice)."""
        return tuple(e for e in self.edges if e.child == node_id)

    def edges_from(self, node_id: str) -> tuple[Edge, ...]:
        """Return the edges to the inputs of ``node_id``, in argument order."""
        return tuple(e for e in self.edges if e.parent == node_id)

    @property
    def root(self) -> GraphNode:
        """The node the backward pass starts from (the mean with data, else the loss)."""
        return self.nodes[0]

    @property
    def failures(self) -> tuple[str, ...]:
        """Where TensorFlow's adjoint and SymPy's disagree beyond the bound, one line each."""
        found: list[tuple[str, Adjoint | None]] = []
        for node in self.nodes:
            found += [(f"∂L/∂({node.label})", node.adjoint)]
            found += [(f"∂L/∂{node.id} over every row", node.total)]
        for edge in self.edges:
            if self.node(edge.child).kind == "symbol":
                found.append((f"the path {edge.parent} → {edge.child}", edge.passed))
        return tuple(
            f"{where}: SymPy {adj.symbolic!r}, TF {adj.autodiff!r}, beyond the bound "
            f"{adj.tolerance:.3g}"
            for where, adj in dict.fromkeys(found)
            if adj is not None and adj.verdict == "fail"
        )


# ---------------------------------------------------------------------------------------
# The derivation's view: names of inner functions, and the steps about each node.


def _derivation_refs(
    partials: Sequence[tuple[str, Sequence[Step]]],
    loss: sympy.Expr | None = None,
) -> tuple[dict[sympy.Expr, str], dict[sympy.Expr, list[str]], list[tuple[str, str, Any, Any]]]:
    """Return the inner functions' names, each expression's step descriptions, and the chains.

    The names are the derivation's one scheme (:func:`tutor.steps.inner_names`): each inner
    expression of the loss its own letter, the same in every partial and in the graph.
    """
    from .steps import inner_names

    named: dict[sympy.Expr, str] = {}
    if loss is not None:
        named = {expr: str(name) for expr, name in inner_names(loss).items()}
    about: dict[sympy.Expr, list[str]] = {}
    chains: list[tuple[str, str, Any, Any]] = []

    def visit(step: Step, symbol: str) -> None:
        before = step.before
        if isinstance(before, sympy.Derivative) and before.variables:
            expr = before.expr
            text = f"∂L/∂{symbol}: {step.rule} rule"
            if step.rule == "chain" and step.substeps:
                outer_step = step.substeps[0].before
                if isinstance(outer_step, sympy.Derivative):
                    u, outer = outer_step.variables[0], outer_step.expr
                    inner = next((a for a in expr.args if outer.xreplace({u: a}) == expr), None)
                    if inner is not None:
                        named.setdefault(inner, str(u))
                        chains.append((symbol, str(u), inner, outer))
                        text += f" (outer {_m(outer)}, inner {u} = {_m(inner)})"
            if text not in about.setdefault(expr, []):
                about[expr].append(text)
        for sub in step.substeps:
            visit(sub, symbol)

    for symbol, steps in partials:
        for step in steps:
            visit(step, symbol)
    return named, about, chains


# ---------------------------------------------------------------------------------------
# Building the graph.


def build(
    problem: Problem,
    values: Mapping[str, float] | None = None,
    *,
    at: int = 0,
    row: int = 0,
    autodiff: bool = True,
    derivation: Any = None,
) -> Graph:
    """Return the computation graph of ``problem``'s loss at ``values`` (default: its start).

    ``row`` (0-based) is the data row shown when the problem has data.
    ``autodiff`` adds TensorFlow's adjoints and their verdicts (importing
    TensorFlow); without it the graph holds SymPy's side only.
    ``derivation`` (a :class:`tutor.model.Derivation`) supplies the names of
    inner functions; without it the rule steps of each wrt partial are derived.
    """
    if problem.data and not 0 <= row < problem.rows:
        raise ValueError(f"row {row} is outside 0…{problem.rows - 1}")
    point = _rounded({**problem.values, **(values or {})}, problem.dtype)
    if derivation is None:
        from .steps import explain

        mean = bool(problem.data)
        partials = [
            (s, explain(problem.loss, problem.symbol(s), mean_over_rows=mean)[0])
            for s in problem.wrt
        ]
    else:
        partials = [(p.symbol, p.steps) for p in derivation.partials]
    refs = _derivation_refs(partials, problem.loss)
    sym = _Symbolic(problem, point, row if problem.data else None, refs)
    tf_side = None
    if autodiff:
        from ._graph_tape import Autodiff

        tf_side = Autodiff(problem, point, sym)
    return sym.graph(at, tf_side)


def _rounded(values: Mapping[str, float], dtype: str) -> dict[str, float]:
    """Return ``values`` as the ``dtype`` numbers TensorFlow holds, back in Python floats."""
    with np.errstate(over="ignore"):
        return {k: float(np.array(v, dtype=dtype)) for k, v in values.items()}


class _Symbolic:
    """SymPy's side: expressions, local derivatives and adjoints, evaluated exactly."""

    def __init__(
        self,
        problem: Problem,
        point: Mapping[str, float],
        row: int | None,
        refs: tuple[dict[sympy.Expr, str], dict[sympy.Expr, list[str]], list[Any]],
    ) -> None:
        self.problem = problem
        self.point = point
        self.row = row
        self.named, self.about, self.chains = refs
        self.entries = skeleton(problem.tree)
        self.root = len(self.entries) - 1
        self.n = problem.rows
        self.locals: dict[tuple[int, int], sympy.Expr] = {}
        self.local_forms: dict[tuple[int, int], sympy.Expr] = {}
        self.forms: dict[int, sympy.Expr] = {}
        self.shorts: dict[int, sympy.Expr] = {}
        self._ids: dict[int, str] | None = None
        self._locals()
        self.adjoints = self._adjoints()

    def env(self, row: int | None) -> dict[str, float]:
        """The values of every symbol in data row ``row`` (or without data)."""
        env = {**self.problem.constants, **self.point}
        if row is not None:
            env.update({k: v[row] for k, v in self.problem.data.items()})
        return env

    def exact(self, expr: sympy.Expr, row: int | None = None) -> Any:
        """Return ``expr`` at the graph's row in mpmath (None where it has no finite real value)."""
        from .numeric import evaluate

        with mpmath.workprec(PRECISION_BITS):
            try:
                value = evaluate(expr, self.env(self.row if row is None else row), precise=True)
            except (ZeroDivisionError, TypeError, ValueError, OverflowError, KeyError):
                return None
            if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
                return None
            return value

    def number(self, expr: sympy.Expr) -> float:
        value = self.exact(expr)
        return math.nan if value is None else float(value)

    def label(self, i: int) -> sympy.Expr:
        """The entry as its consumer's form writes it: the derivation's name, or the expression."""
        entry = self.entries[i]
        name = self.named.get(entry.expr) if entry.kind == "operation" else None
        return sympy.Symbol(name, real=True) if name else entry.expr

    def short_name(self, i: int) -> sympy.Expr:
        """The entry as a picture's box names it: a symbol, the derivation's name, or its id."""
        entry = self.entries[i]
        if entry.kind != "operation":
            return entry.expr
        name = self.named.get(entry.expr)
        return sympy.Symbol(name or self.ids()[i], real=True)

    def _locals(self) -> None:
        for i, entry in enumerate(self.entries):
            if entry.kind != "operation":
                continue
            shallow, placeholders = with_placeholders(entry, self.entries)
            f = to_sympy(shallow)
            symbols = {c: sympy.Symbol(p, real=True) for c, p in placeholders.items()}
            self.forms[i] = f.xreplace({s: self.label(c) for c, s in symbols.items()})
            self.shorts[i] = f.xreplace({s: self.short_name(c) for c, s in symbols.items()})
            full = {s: self.entries[c].expr for c, s in symbols.items()}
            named = {s: self.label(c) for c, s in symbols.items()}
            for c, s in symbols.items():
                derivative = sympy.diff(f, s)
                self.locals[(i, c)] = derivative.xreplace(full)
                self.local_forms[(i, c)] = derivative.xreplace(named)

    def _adjoints(self) -> dict[int, sympy.Expr]:
        """∂L/∂entry for every varying entry, top-down: upstream times local derivative."""
        top = sympy.Rational(1, self.n) if self.n else sympy.S.One
        out = {self.root: top}
        for i in range(self.root, -1, -1):
            if i not in out:
                continue
            for c in self.entries[i].children:
                if (i, c) in self.locals:
                    # factor_terms keeps 2·(wx − y) whole; SymPy would distribute the 2.
                    out[c] = sympy.factor_terms(out[i] * self.locals[(i, c)])
        return out

    def leaf_adjoint(self, symbol: str) -> sympy.Expr:
        """∂L/∂symbol in the graph's row: the sum over the symbol's uses."""
        uses = self.uses(symbol)
        return sympy.Add(*(self.adjoints[c] for c in uses)) if uses else sympy.S.Zero

    def uses(self, symbol: str) -> list[int]:
        return [
            i
            for i, e in enumerate(self.entries)
            if e.kind == "symbol" and isinstance(e.tree, Name) and e.tree.id == symbol
        ]

    def preorder(self) -> list[int]:
        """Return the entries from the loss down, each before its inputs, inputs left to right."""
        out: list[int] = []

        def visit(i: int) -> None:
            out.append(i)
            for c in self.entries[i].children:
                visit(c)

        visit(self.root)
        return out

    def ids(self) -> dict[int, str]:
        """Node ids: n1, n2, … for operations top-down, the name for symbols, c1, … for numbers."""
        if self._ids is None:
            self._ids = self._number_ids()
        return self._ids

    def _number_ids(self) -> dict[int, str]:
        order = self.preorder()
        ops = [i for i in order if self.entries[i].kind == "operation"]
        nums = [i for i in order if self.entries[i].kind == "number"]
        out = {i: f"n{k}" for k, i in enumerate(ops, 1)}
        out.update({i: f"c{k}" for k, i in enumerate(nums, 1)})
        for i, e in enumerate(self.entries):
            if e.kind == "symbol" and isinstance(e.tree, Name):
                out[i] = e.tree.id
        return out

    def graph(self, at: int, tf_side: Autodiff | None) -> Graph:
        ids = self.ids()
        nodes: list[GraphNode] = []
        edges: list[Edge] = []
        seen: set[str] = set()
        for i in self.preorder():
            entry, node_id = self.entries[i], ids[i]
            for position, c in enumerate(entry.children):
                edges.append(self._edge(i, c, position, ids, tf_side))
            if node_id in seen:
                continue
            seen.add(node_id)
            nodes.append(self._node(i, ids, tf_side))
        if self.n:
            top = nodes[0]
            nodes.insert(0, self._mean_node(ids, tf_side))
            edges.insert(0, self._mean_edge(top))
        loss = self._loss()
        return Graph(
            problem=self.problem,
            values=dict(self.point),
            at=at,
            row=self.row,
            nodes=tuple(nodes),
            edges=tuple(edges),
            chain=self._chain(ids),
            autodiff=tf_side is not None,
            loss=loss,
        )

    def _loss(self) -> float:
        if not self.n:
            return self.number(self.entries[self.root].expr)
        with mpmath.workprec(PRECISION_BITS):
            parts = [self.exact(self.entries[self.root].expr, r) for r in range(self.n)]
            if any(p is None for p in parts):
                return math.nan
            return float(mpmath.fsum(parts) / self.n)

    def _adjoint(self, expr: sympy.Expr, judged: Adjoint | None) -> Adjoint:
        symbolic = self.number(expr)
        if judged is None:
            return Adjoint(expr, symbolic)
        return dataclasses.replace(judged, expr=expr, symbolic=symbolic)

    def _node(self, i: int, ids: dict[int, str], tf_side: Autodiff | None) -> GraphNode:
        entry = self.entries[i]
        if entry.kind == "symbol":
            assert isinstance(entry.tree, Name)
            return self._leaf(entry.tree.id, entry, tf_side)
        adjoint = None
        if entry.varying:
            expr = self.adjoints[i]
            adjoint = self._adjoint(expr, tf_side.node(i, expr) if tf_side else None)
        op = _op_name(entry.tree)
        return GraphNode(
            id=ids[i],
            kind=entry.kind,
            op=op,
            expr=entry.expr,
            form=self.forms.get(i, entry.expr),
            short=self.shorts.get(i),
            written=_written(entry, self.entries),
            name=self.named.get(entry.expr, "") if entry.kind == "operation" else "",
            value=self.number(entry.expr),
            adjoint=adjoint,
            inputs=tuple(ids[c] for c in entry.children),
            steps=tuple(self.about.get(entry.expr, ())) if entry.kind == "operation" else (),
        )

    def _leaf(self, symbol: str, entry: Entry, tf_side: Autodiff | None) -> GraphNode:
        expr = self.leaf_adjoint(symbol)
        adjoint = self._adjoint(expr, tf_side.leaf(symbol, expr) if tf_side else None)
        total = None
        if self.n and symbol not in self.problem.data:
            total = self._total(symbol, expr, tf_side)
        return GraphNode(
            id=symbol,
            kind="symbol",
            op="",
            expr=entry.expr,
            form=entry.expr,
            name="",
            value=self.number(entry.expr),
            adjoint=adjoint,
            total=total,
        )

    def _total(self, symbol: str, per_row: sympy.Expr, tf_side: Autodiff | None) -> Adjoint:
        """∂L/∂symbol over every row: the sum of each row's part."""
        with mpmath.workprec(PRECISION_BITS):
            parts = [self.exact(per_row, r) for r in range(self.n)]
            exact = None if any(p is None for p in parts) else mpmath.fsum(parts)
        i = sympy.Symbol("i", integer=True, positive=True)
        expr = sympy.Sum(per_row * self.n, (i, 1, self.n)) / self.n
        symbolic = math.nan if exact is None else float(exact)
        if tf_side is None:
            return Adjoint(expr, symbolic)
        return dataclasses.replace(tf_side.total(symbol, exact), expr=expr, symbolic=symbolic)

    def _mean_node(self, ids: dict[int, str], tf_side: Autodiff | None) -> GraphNode:
        i, n = sympy.Symbol("i", integer=True, positive=True), self.n
        expr = sympy.Sum(sympy.Function("ℓ")(i), (i, 1, n)) / n
        judged = tf_side.seed() if tf_side else None
        return GraphNode(
            id="L",
            kind="mean",
            op="mean",
            expr=expr,
            form=expr,
            name="L",
            value=self._loss(),
            adjoint=self._adjoint(sympy.S.One, judged),
            inputs=(ids[self.root],),
        )

    def _mean_edge(self, top: GraphNode) -> Edge:
        local = sympy.Rational(1, self.n)
        return Edge("L", top.id, 0, local, float(local), top.adjoint)

    def _edge(
        self, i: int, c: int, position: int, ids: dict[int, str], tf_side: Autodiff | None
    ) -> Edge:
        local = self.locals.get((i, c))
        if local is None:
            return Edge(ids[i], ids[c], position, None, None, None)
        expr = self.adjoints[c]
        judged = tf_side.node(c, expr) if tf_side else None
        return Edge(
            ids[i],
            ids[c],
            position,
            self.local_forms[(i, c)],
            self.number(local),
            self._adjoint(expr, judged),
        )

    def _chain(self, ids: dict[int, str]) -> tuple[ChainLink, ...]:
        """Return each chain-rule step with its outer nodes and, among their inputs, the inner."""
        links = []
        for symbol, name, inner, outer in self.chains:
            outer_expr = outer.xreplace({sympy.Symbol(name, real=True): inner})
            outers = [
                i
                for i, e in enumerate(self.entries)
                if e.kind == "operation" and e.expr == outer_expr
            ]
            inners = [c for i in outers for c in self.entries[i].children]
            inner_ids = tuple(ids[c] for c in inners if self.entries[c].expr == inner)
            outer_ids = tuple(ids[i] for i in outers)
            links.append(ChainLink(symbol, name, inner, outer, outer_ids, inner_ids))
        return tuple(dict.fromkeys(links))


def _written(entry: Entry, entries: Sequence[Entry]) -> str:
    """Return the subtree as the loss writes it when SymPy's form has fewer operations, else ""."""
    if entry.kind != "operation":
        return ""
    operations = 0
    pending = [entry]
    while pending:
        e = pending.pop()
        operations += e.kind == "operation"
        pending += [entries[c] for c in e.children]
    if sympy.count_ops(entry.expr) >= operations:
        return ""
    from .verify.graph import source

    return source(entry.tree).replace(" - ", " − ").replace("*", "·")


def _op_name(tree: Node) -> str:
    if isinstance(tree, Unary):
        return "neg"
    if isinstance(tree, Binary):
        return tree.op
    if isinstance(tree, Call):
        return tree.func
    return ""
