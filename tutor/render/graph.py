"""The computation graph of a loss as text, a rich tree, TikZ, Graphviz DOT and JSON.

Every renderer shows the same numbers: each node's forward value, the local
derivative on the edge to its consumer, its adjoint ∂L/∂node (SymPy's, and
TensorFlow's with its verdict when the graph has them), and each symbol's
gradient as the sum of its paths.
"""

from __future__ import annotations

import json
import math
from typing import Any

import sympy

from .._clean import clean
from .._mathtext import minus
from .._mathtext import unicode as _m
from .._numbers import number
from ..graph import Adjoint, Edge, Graph, GraphNode
from . import latex as _latex


def _subscript(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


#: How each verdict is marked after TensorFlow's number.
_MARKS = {"pass": "✓", "fail": "✗ DISAGREES"}


def _n(value: float | None) -> str:
    return "?" if value is None else minus(number(value))


def _factor(value: float | None) -> str:
    """A number as a factor of a product: in parentheses when negative."""
    text = _n(value)
    return f"({text})" if text.startswith("−") else text


def _tf(adj: Adjoint | None) -> str:
    """Return "   [TF −9 ✓]", TF's number and its verdict, or "" without TensorFlow."""
    if adj is None or not adj.verdict:
        return ""
    return f"   [TF {_n(adj.autodiff)} {_mark(adj)}]"


def _mark(adj: Adjoint) -> str:
    """✓ within the bound, ✗ beyond it, or the kind of point where the bound does not apply."""
    mark = _MARKS.get(adj.verdict, f"— a {adj.verdict} point, see below")
    if adj.verdict == "fail":
        mark += f" beyond the bound {minus(f'{adj.tolerance:.3g}')}"
    return mark


def _ref(graph: Graph, node: GraphNode) -> str:
    """The node as a derivative's numerator or denominator: its name, else its expression."""
    if node.kind == "mean":
        return "L"
    if graph.row is not None and node.id == graph.root.inputs[0]:
        return f"ℓ{_subscript(graph.row + 1)}"
    if node.name:
        return node.name
    text = node.written or _m(node.form if node.kind == "operation" else node.expr)
    return text if node.kind == "symbol" else f"({text})"


_RELATIONS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def _math(expr: sympy.Basic) -> str:
    """Return ``expr`` on one line; a piecewise one reads ``u if d ≥ |u|, else d·sign(u)``."""
    if isinstance(expr, sympy.Piecewise):
        pieces = []
        for value, cond in expr.args:
            shown = _bars(value)
            pieces.append(shown if cond is sympy.true else f"{shown} if {_condition(cond)}")
        return ", else ".join(pieces)
    return _bars(expr)


def _bars(expr: sympy.Basic) -> str:
    """Return ``expr`` on one line with absolute values written |u| rather than Abs(u)."""
    bars = {a: sympy.Symbol(f"|{_m(a.args[0])}|", real=True) for a in expr.atoms(sympy.Abs)}
    return _m(expr.xreplace(bars))


def _condition(cond: sympy.Basic) -> str:
    if isinstance(cond, sympy.core.relational.Relational) and cond.rel_op in _RELATIONS:
        return f"{_side(cond.lhs)} {_RELATIONS[cond.rel_op]} {_side(cond.rhs)}"
    return _m(cond)


def _side(expr: sympy.Basic) -> str:
    return f"|{_m(expr.args[0])}|" if isinstance(expr, sympy.Abs) else _m(expr)


def _local(graph: Graph, edge: Edge) -> str:
    """Return "∂(u²)/∂u = 2u = −9": the local derivative on ``edge``, symbolic and its number."""
    parent, child = graph.node(edge.parent), graph.node(edge.child)
    head = f"∂{_ref(graph, parent)}/∂{_ref(graph, child)}"
    assert edge.local is not None
    if edge.local.is_Number:
        return f"{head} = {_n(edge.local_value)}"
    return f"{head} = {_math(edge.local)} = {_n(edge.local_value)}"


def header(graph: Graph) -> list[str]:
    """Return the lines above the graph: what it is, where it is evaluated, how to read it."""
    problem = graph.problem
    values = ", ".join(f"{k} = {_n(v)}" for k, v in graph.values.items())
    when = f"after {graph.at} update{'s' * (graph.at != 1)}" if graph.at else "at the start"
    lines = [
        f"{problem.id}: the computation graph of L = {_m(problem.loss)}",
        f"at {values} ({when})",
    ]
    if graph.row is not None:
        row = ", ".join(f"{k} = {_n(v[graph.row])}" for k, v in problem.data.items())
        lines.append(
            f"data row {graph.row + 1} of {problem.rows} ({row}); L is the mean of the "
            f"{problem.rows} rows' losses, so every ∂L/∂node below is this row's part"
        )
    sides = "SymPy's closed form" + (" and TensorFlow's tape" if graph.autodiff else "")
    lines.append(
        f"Forward: each node's value. Backward: ∂L/∂node = ∂L/∂(its consumer) × the local "
        f"derivative, from {sides}."
    )
    return lines


def _node_lines(graph: Graph, node: GraphNode, edge: Edge | None) -> list[str]:
    """Return the lines describing ``node`` reached through ``edge`` (None for the top)."""
    tag = "" if node.kind in ("symbol", "mean") else f"  [{node.id}]"
    label = node.label
    if node.kind == "mean":
        label = f"L = (1/{graph.problem.rows}) Σᵢ ℓᵢ"
    elif graph.row is not None and node.id == graph.root.inputs[0]:
        label = f"{_ref(graph, node)} = {label}"
    head = f"{label}{tag}  = {_n(node.value)}"
    if node.kind == "number":
        return [f"{head}  (a number: no gradient)"]
    if edge is None:
        what = "the mean over rows" if node.kind == "mean" else "the loss"
        lines = [f"{head}   ∂L/∂L = 1 ({what})"]
    elif edge.passed is None:
        lines = [f"{head}  (held fixed: no gradient flows here)"]
    else:
        up = graph.node(edge.parent).adjoint
        upstream = _n(up.symbolic if up else None)
        product = f"{upstream} × {_factor(edge.local_value)} = {_n(edge.passed.symbolic)}"
        if node.kind == "symbol":
            where = f"passes {product} to {node.id}"
        else:
            where = f"∂L/∂{_ref(graph, node)} = {product}"
        lines = [head, f"local {_local(graph, edge)};  {where}{_tf(edge.passed)}"]
    lines += [f"derivation: {s}" for s in node.steps]
    return lines


def _tree(graph: Graph) -> list[tuple[int, list[str]]]:
    """Return (depth, lines) for each node in the order a tree shows them; leaves once per use."""
    out: list[tuple[int, list[str]]] = []

    def visit(node: GraphNode, edge: Edge | None, depth: int) -> None:
        out.append((depth, _node_lines(graph, node, edge)))
        for e in graph.edges_from(node.id):
            visit(graph.node(e.child), e, depth + 1)

    visit(graph.root, None, 0)
    return out


def _both(adj: Adjoint) -> str:
    """Return "-27 from SymPy, -27 from TensorFlow ✓" (SymPy's alone without TensorFlow)."""
    sympy_side = f"{_n(adj.symbolic)} from SymPy"
    if not adj.verdict:
        return sympy_side
    return f"{sympy_side}, {_n(adj.autodiff)} from TensorFlow {_mark(adj)}"


def leaf_lines(graph: Graph) -> list[str]:
    """Return each symbol's accumulated gradient: its paths and their sum, SymPy and TF."""
    lines = ["Leaves: each symbol's gradient is the sum of what its paths pass down"]
    for node in graph.nodes:
        if node.kind != "symbol" or node.adjoint is None:
            continue
        paths = [e for e in graph.edges_into(node.id) if e.passed is not None]
        shares = [_n(e.passed.symbolic) for e in paths if e.passed is not None]
        through = ", ".join(
            f"through {graph.node(e.parent).label}: {_n(e.passed.symbolic)}"
            for e in paths
            if e.passed is not None
        )
        total = _both(node.adjoint)
        what = (
            f"∂L/∂{node.id}"
            if graph.row is None
            else f"row {graph.row + 1}'s part of ∂L/∂{node.id}"
        )
        if len(paths) > 1:
            count = "two" if len(paths) == 2 else str(len(paths))
            sums = " + ".join(f"({s})" if s.startswith("-") else s for s in shares)
            lines.append(f"  {what} = {sums} = {total}")
            lines.append(f"      {count} paths into {node.id}: {through}")
        elif paths:
            lines.append(f"  {what} = {total}   (one path: {through})")
        else:
            lines.append(f"  {what} = {total}   (the loss is {node.id} itself)")
        if node.total is not None:
            lines.append(
                f"  ∂L/∂{node.id} over all {graph.problem.rows} rows = {_both(node.total)}"
            )
    return lines


def chain_lines(graph: Graph) -> list[str]:
    """Return each chain-rule step of the derivation with the nodes it corresponds to."""
    if not graph.chain:
        return []
    lines = ["Chain-rule steps of the derivation and their nodes:"]
    for link in graph.chain:
        outer = ", ".join(link.outer_nodes) or "no single node"
        inner = ", ".join(link.inner_nodes) or "no single node"
        lines.append(
            f"  ∂L/∂{link.symbol}: d/d{link.inner_name} {_m(link.outer)} is the local derivative "
            f"of node {outer} with respect to node {inner} ({link.inner_name} = {_m(link.inner)})"
        )
    return lines


def verdict_line(graph: Graph) -> str:
    """Return the sentence saying whether TensorFlow and SymPy agree at every node."""
    if not graph.autodiff:
        return "SymPy's side only (--no-tf): TensorFlow's adjoints were not computed."
    failures = graph.failures
    if failures:
        return "TensorFlow and SymPy DISAGREE beyond the bound: " + "; ".join(failures)
    compared = _compared(graph)
    bound = "within the verification error bound (|TF − SymPy| ≤ γ_k·S + floor)"
    others = [adj for adj in compared if adj.verdict != "pass"]
    if not others:
        return f"TensorFlow's adjoints agree with SymPy's {bound} at every node."
    notes = "; ".join(dict.fromkeys(adj.note for adj in others))
    return (
        f"TensorFlow's adjoints agree with SymPy's {bound} wherever the bound applies; "
        f"{len(others)} of {len(compared)} comparisons are where it does not: {notes}."
    )


def _compared(graph: Graph) -> list[Adjoint]:
    """Every adjoint TensorFlow was compared on: nodes, totals, and each path into a symbol."""
    found = [a for n in graph.nodes for a in (n.adjoint, n.total) if a is not None and a.verdict]
    for edge in graph.edges:
        if graph.node(edge.child).kind == "symbol" and edge.passed and edge.passed.verdict:
            found.append(edge.passed)
    return found


def text(graph: Graph) -> str:
    """Return the graph as plain text: a tree from the loss down, the leaves, the chain steps."""
    lines = [*header(graph), ""]
    tree = _tree(graph)
    for k, (depth, block) in enumerate(tree):
        last = _is_last(tree, k)
        prefix = _prefix(tree, k)
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        cont = "" if depth == 0 else ("   " if last else "│  ")
        lines.append(prefix + branch + block[0])
        lines += [
            prefix + cont + ("│  " if _has_children(tree, k) else "   ") + b for b in block[1:]
        ]
    lines += ["", *leaf_lines(graph)]
    chain = chain_lines(graph)
    if chain:
        lines += ["", *chain]
    lines += ["", verdict_line(graph)]
    return clean("\n".join(lines)) + "\n"


def _next_shallower(tree: list[tuple[int, list[str]]], k: int) -> int:
    depth = tree[k][0]
    for j in range(k + 1, len(tree)):
        if tree[j][0] < depth:
            return j
    return len(tree)


def _is_last(tree: list[tuple[int, list[str]]], k: int) -> bool:
    """Whether entry k is the last child of its parent."""
    depth = tree[k][0]
    return not any(d == depth for d, _ in tree[k + 1 : _next_shallower(tree, k)])


def _has_children(tree: list[tuple[int, list[str]]], k: int) -> bool:
    return k + 1 < len(tree) and tree[k + 1][0] > tree[k][0]


def _prefix(tree: list[tuple[int, list[str]]], k: int) -> str:
    """The vertical bars of the ancestors of entry k that have later children."""
    depth = tree[k][0]
    parts = []
    for level in range(1, depth):
        ancestor = max(j for j in range(k) if tree[j][0] == level)
        parts.append("   " if _is_last(tree, ancestor) else "│  ")
    return "".join(parts)


def rich(graph: Graph) -> Any:
    """Return the graph as a rich renderable: a tree of nodes, then the leaves and chain steps."""
    from rich.console import Group, RenderableType
    from rich.text import Text
    from rich.tree import Tree

    def label(block: list[str]) -> Any:
        head = Text()
        head.append(clean(block[0]), style="bold")
        for line in block[1:]:
            style = "dim" if line.startswith("derivation:") else ""
            head.append("\n" + clean(line), style=style)
        head.highlight_regex(r"\[TF [^\]]*✓\]", "green")
        head.highlight_regex(r"\[TF [^\]]*point[^\]]*\]", "yellow")
        head.highlight_regex(r"\[TF [^\]]*✗[^\]]*\]", "bold red")
        return head

    tree = _tree(graph)
    root = Tree(label(tree[0][1]))
    stack = [root]
    for depth, block in tree[1:]:
        del stack[depth:]
        stack.append(stack[-1].add(label(block)))
    style = "bold red" if graph.failures else "bold green"
    parts: list[RenderableType] = [Text(clean("\n".join(header(graph))) + "\n"), root]
    parts.append(Text("\n" + clean("\n".join(leaf_lines(graph)))))
    chain = chain_lines(graph)
    if chain:
        parts.append(Text("\n" + clean("\n".join(chain))))
    parts.append(Text("\n" + clean(verdict_line(graph)), style=style))
    return Group(*parts)


# ---------------------------------------------------------------------------------------
# JSON


def _num(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _adjoint_json(adj: Adjoint | None) -> dict[str, Any] | None:
    if adj is None:
        return None
    out: dict[str, Any] = {
        "expr": str(adj.expr),
        "latex": _latex.math(adj.expr),
        "symbolic": _num(adj.symbolic),
    }
    if adj.verdict:
        out.update(
            autodiff=_num(adj.autodiff),
            tolerance=_num(adj.tolerance),
            verdict=adj.verdict,
            note=adj.note,
        )
    return out


def to_json(graph: Graph) -> str:
    """Return the graph as one strict JSON object: nodes, edges, chain steps, the gradient."""
    nodes = [
        {
            "id": n.id,
            "kind": n.kind,
            "op": n.op,
            "label": n.label,
            "expr": str(n.expr),
            "latex": _latex.math(n.expr),
            "name": n.name,
            "form": str(n.form),
            "value": _num(n.value),
            "adjoint": _adjoint_json(n.adjoint),
            "total": _adjoint_json(n.total),
            "inputs": list(n.inputs),
            "steps": list(n.steps),
        }
        for n in graph.nodes
    ]
    edges = [
        {
            "from": e.child,
            "to": e.parent,
            "position": e.position,
            "local": None if e.local is None else str(e.local),
            "local_value": _num(e.local_value),
            "passed": _adjoint_json(e.passed),
        }
        for e in graph.edges
    ]
    gradient = {}
    for n in graph.nodes:
        adj = n.total or n.adjoint
        if n.kind == "symbol" and adj is not None and n.id not in graph.problem.data:
            entry: dict[str, Any] = {"symbolic": _num(adj.symbolic)}
            if adj.verdict:
                entry["autodiff"] = _num(adj.autodiff)
            gradient[n.id] = entry
    chain = [
        {
            "symbol": c.symbol,
            "inner_name": c.inner_name,
            "inner": str(c.inner),
            "outer": str(c.outer),
            "outer_nodes": list(c.outer_nodes),
            "inner_nodes": list(c.inner_nodes),
        }
        for c in graph.chain
    ]
    body = {
        "problem": graph.problem.id,
        "loss": _num(graph.loss),
        "expression": str(graph.problem.loss),
        "at": graph.at,
        "values": {k: _num(v) for k, v in graph.values.items()},
        "row": None if graph.row is None else graph.row + 1,
        "rows": graph.problem.rows,
        "autodiff": graph.autodiff,
        "agree": not graph.failures if graph.autodiff else None,
        "nodes": nodes,
        "edges": edges,
        "chain": chain,
        "gradient": gradient,
    }
    return json.dumps({"graph": body}, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------
# Graphviz DOT


def _dot_string(text: str) -> str:
    """Return ``text`` as a DOT quoted string (backslash and quote escaped, lines as \\n)."""
    body = clean(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def _dot_node_label(node: GraphNode) -> str:
    lines = [node.label, f"value {_n(node.value)}"]
    if node.adjoint is not None:
        lines.append(f"∂L/∂· = {_n(node.adjoint.symbolic)}{_tf(node.adjoint)}")
    if node.total is not None:
        lines.append(f"over all rows {_n(node.total.symbolic)}{_tf(node.total)}")
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    """Return the graph in Graphviz DOT: values flow up the arrows, gradients down their labels."""
    lines = [
        f"digraph {_dot_string(graph.problem.id)} {{",
        "  rankdir=BT;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in graph.nodes:
        shape = ", shape=ellipse" if node.kind in ("symbol", "number") else ""
        lines.append(
            f"  {_dot_string(node.id)} [label={_dot_string(_dot_node_label(node))}{shape}];"
        )
    for e in graph.edges:
        label = ""
        if e.local is not None and e.passed is not None:
            local = _n(e.local_value)
            if not e.local.is_Number:
                local = f"{_math(e.local)} = {local}"
            label = f"local {local}\ngradient {_n(e.passed.symbolic)}"
        lines.append(
            f"  {_dot_string(e.child)} -> {_dot_string(e.parent)} [label={_dot_string(label)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# TikZ


#: The widest picture, in cm: the text width of an A4 page with the handout's margins.
_WIDTH_CM = 16.0
_STEP_CM = 3.2
_LEVEL_CM = 2.6
#: The tallest picture, in cm: most of the text height, leaving room for the legend.
_HEIGHT_CM = 19.0


def _layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Return (x, y) in cm for each node: a tidy tree, the symbols side by side on the bottom row.

    Leaves of the tree take one slot each, left to right; an operation sits
    above the middle of its inputs. A symbol used twice is drawn once, below
    the middle of its uses, in a slot of its own.
    """
    order: list[tuple[GraphNode, int, float]] = []
    slots = [0]

    def visit(node: GraphNode, depth: int) -> float:
        children = [graph.node(e.child) for e in graph.edges_from(node.id)]
        if not children:
            x = float(slots[0])
            slots[0] += 1
        else:
            x = sum(visit(c, depth + 1) for c in children) / len(children)
        order.append((node, depth, x))
        return x

    visit(graph.root, 0)
    bottom = max(d for _, d, _ in order)
    step = min(_STEP_CM, _WIDTH_CM / max(1, slots[0] - 1))
    level = min(_LEVEL_CM, _HEIGHT_CM / max(1, bottom))
    out: dict[str, tuple[float, float]] = {}
    uses: dict[str, list[float]] = {}
    for node, depth, x in order:
        if node.kind == "symbol":
            uses.setdefault(node.id, []).append(x)
        else:
            out[node.id] = (x * step, -depth * level)
    symbols = sorted(uses, key=lambda k: sum(uses[k]) / len(uses[k]))
    spread = max(1, slots[0] - 1) / max(1, len(symbols) - 1) if len(symbols) > 1 else 0.0
    for k, node_id in enumerate(symbols):
        middle = sum(uses[node_id]) / len(uses[node_id])
        x = k * spread if len(symbols) > 1 else middle
        out[node_id] = (x * step, -bottom * level)
    return out


def _tikz_number(value: float | None) -> str:
    """Return a number as LaTeX mathematics (E-notation as a power of ten), "?" if unknown."""
    return "?" if value is None else _latex.tex_number(value)


#: Expressions longer than this (as text) are shown in a box by their operation on named inputs.
_SHORT_LABEL = 18


def _tikz_title(graph: Graph, node: GraphNode) -> str:
    if node.kind == "mean":
        return rf"$L = \frac{{1}}{{{graph.problem.rows}}}\sum_i \ell_i$"
    expr = node.expr
    if node.kind == "operation" and node.short is not None and len(_m(expr)) > _SHORT_LABEL:
        expr = node.short
    body = _latex.math(expr)
    if node.name:
        body = f"{node.name} = {body}"
    elif graph.row is not None and node.id == graph.root.inputs[0]:
        body = rf"\ell_{{{graph.row + 1}}} = {body}"
    tag = rf"{{\scriptsize {node.id}:}} " if node.kind == "operation" else ""
    return f"{tag}${body}$"


def _tikz_node(graph: Graph, node: GraphNode) -> str:
    title = _tikz_title(graph, node)
    lines = [title] if node.kind == "number" else [title, rf"$= {_tikz_number(node.value)}$"]
    if node.adjoint is not None:
        grad = rf"$\partial L/\partial\cdot = {_tikz_number(node.adjoint.symbolic)}$"
        if node.adjoint.verdict:
            grad += (
                r" \checkmark" if node.adjoint.verdict == "pass" else f" ({node.adjoint.verdict})"
            )
        lines.append(grad)
    if node.total is not None:
        lines.append(rf"all rows: ${_tikz_number(node.total.symbolic)}$")
    return r" \\ ".join(lines)


def tikz(graph: Graph) -> str:
    """Return the graph as a TikZ picture (plain TikZ, no libraries): values up, gradients down.

    Each edge is labelled with its local derivative and, in red, the gradient
    passed down it.
    """
    places = _layout(graph)
    lines = [
        r"\begin{tikzpicture}[every node/.style={font=\small},",
        r"  op/.style={draw, rounded corners, align=center, fill=white, inner sep=3pt},",
        r"  leaf/.style={draw, rounded corners=7pt, align=center, fill=black!6, inner sep=3pt},",
        r"  lab/.style={font=\scriptsize, fill=white, inner sep=1pt, align=center}]",
    ]
    boxes = []
    for node in graph.nodes:
        x, y = places[node.id]
        style = "leaf" if node.kind in ("symbol", "number") else "op"
        boxes.append(
            rf"\node[{style}] ({node.id}) at ({x:.2f},{y:.2f}) {{{_tikz_node(graph, node)}}};"
        )
    lines += boxes
    for e in graph.edges:
        label = ""
        if e.local is not None and e.passed is not None:
            shown = _tikz_number(e.local_value)
            if not e.local.is_Number and len(_m(e.local)) <= _SHORT_LABEL // 2:
                shown = f"{_latex.math(e.local)} = {shown}"
            label = (
                rf"node[lab, pos=0.5] {{${shown}$ \\ "
                rf"\textcolor{{red}}{{${_tikz_number(e.passed.symbolic)}$}}}}"
            )
        lines.append(rf"\draw[->] ({e.child}) -- {label} ({e.parent});")
    # The boxes again, over the arrows that cross them: an arrow never hides a number.
    lines += ["% the boxes again, drawn over the arrows", *boxes, r"\end{tikzpicture}"]
    return "\n".join(lines)


def latex(graph: Graph) -> str:
    """Return a LaTeX fragment: the TikZ picture and a line saying how to read it."""
    legend = (
        "Each box: the node, its value, and $\\partial L/\\partial\\cdot$, the gradient of the "
        "loss with respect to it. Each arrow: the local derivative, and in red the gradient "
        "passed down it (the upstream gradient times the local derivative)."
    )
    if graph.row is not None:
        legend += (
            f" The loss is the mean of the {graph.problem.rows} rows' losses; the graph is "
            f"row {graph.row + 1}'s, so each box holds that row's part of the gradient "
            "(and a symbol's box its gradient over all rows)."
        )
    if graph.autodiff:
        legend += (
            " A tick: TensorFlow's tape gives the same gradient within the verification bound."
        )
    # A wide graph is scaled down to the line (only then): its boxes stay legible, and the
    # picture never runs into the margin.
    fitted = (
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        + tikz(graph)
        + "%\n}"
    )
    return "\n".join([r"\begin{center}", fitted, r"\end{center}", legend, ""])
