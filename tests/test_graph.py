"""The computation graph: values, local derivatives and adjoints, SymPy beside the tape."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from strategies import float32s, loss_sources

from tutor.autodiff import TensorFlowBackend
from tutor.derivation import derive
from tutor.errors import TutorError
from tutor.expression import names, parse
from tutor.graph import build
from tutor.numeric import evaluate
from tutor.problem import load, loads, shipped_ids
from tutor.render import graph as render


def problem_of(loss: str, values: dict[str, float], wrt: list[str] | None = None) -> object:
    """A problem with ``loss`` and ``values``, descending ``wrt`` (default: every value)."""
    lines = ['title = "t"', f'loss = "{loss}"', "[values]"]
    lines += [f"{k} = {v!r}" for k, v in values.items()]
    lines += ["[descent]", f"wrt = {wrt or list(values)!r}", "learning_rate = 0.1", "steps = 1"]
    return loads("\n".join(lines))


@functools.cache
def shipped_graph(problem_id: str):
    return build(load(problem_id))


def exact_partial(problem, expr: sympy.Expr, point) -> mpmath.mpf:
    """``expr`` at ``point`` in 200-bit mpmath, the mean over the data rows if any."""
    columns = zip(*problem.data.values(), strict=True)
    rows = [dict(zip(problem.data, r, strict=True)) for r in columns]
    env = {**problem.constants, **point}
    with mpmath.workprec(200):
        parts = [evaluate(expr, {**env, **row}, precise=True) for row in rows or [{}]]
        return mpmath.fsum(parts) / len(parts)


# The acceptance example: (wx − y)² at w = 0.5, x = 3, y = 6.


def test_seed_w_shows_each_node_value_local_derivative_and_upstream_gradient(run_cli):
    """Forward wx = 1.5, wx − y = −4.5, (wx − y)² = 20.25; backward 2u = −9, then ×1, then ×x.

    Every number is exact in float32 and float64 (halves and small integers),
    so SymPy's and TensorFlow's numbers are printed equal.
    """
    w, x, y = 0.5, 3.0, 6.0
    inner = w * x - y
    upstream = 2 * inner
    status, out, err = run_cli("graph", "seed-w", "--format", "plain")
    assert status == 0, err
    shown = out.replace("−", "-")  # numbers carry a true minus; compared as Python prints them
    assert f"(wx - y)²  [n1]  = {inner**2:g}" in shown
    assert f"u = wx - y  [n2]  = {inner:g}" in shown
    assert f"wx  [n3]  = {w * x:g}" in shown
    assert f"∂(u²)/∂u = 2u = {upstream:g};  ∂L/∂u = 1 × ({upstream:g}) = {upstream:g}" in shown
    assert f"∂L/∂(wx) = {upstream:g} × 1 = {upstream:g}   [TF {upstream:g} ✓]" in shown
    assert f"∂L/∂w = {upstream * x:g} from SymPy, {upstream * x:g} from TensorFlow ✓" in shown
    assert "derivation: ∂L/∂w: chain rule (outer u², inner u = wx − y)" in out
    assert "node n1 with respect to node n2 (u = wx − y)" in out
    assert "agree with SymPy's within the verification error bound" in out


def test_seed_w_graph_holds_the_numbers_of_both_sides():
    graph = shipped_graph("seed-w")
    assert [n.id for n in graph.nodes] == ["n1", "n2", "n3", "w", "x", "y", "c1"]
    assert [graph.node(i).value for i in ("n1", "n2", "n3")] == [20.25, -4.5, 1.5]
    for node_id in ("n2", "n3"):
        adjoint = graph.node(node_id).adjoint
        assert (adjoint.symbolic, adjoint.autodiff, adjoint.verdict) == (-9.0, -9.0, "pass")
    leaf = graph.leaf("w").adjoint
    assert (leaf.symbolic, leaf.autodiff) == (-27.0, -27.0)
    assert graph.node("n2").name == "u"


# Every shipped problem, and random losses: TF's adjoint of every node within the bound.


def _judged(graph):
    """Every (where, adjoint) of the graph that TensorFlow was compared on."""
    for node in graph.nodes:
        for adj in (node.adjoint, node.total):
            if adj is not None and adj.verdict:
                yield node.label, adj
    for edge in graph.edges:
        if edge.passed is not None and edge.passed.verdict:
            yield f"{edge.parent} → {edge.child}", edge.passed


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_node_of_every_shipped_problem_agrees_within_the_bound(problem_id):
    graph = shipped_graph(problem_id)
    judged = list(_judged(graph))
    assert judged
    bad = [(where, adj) for where, adj in judged if adj.verdict == "fail"]
    assert not bad
    # The shipped starting points are away from kinks and singularities.
    assert {adj.verdict for _, adj in judged} == {"pass"}
    assert not graph.failures


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_leaves_carry_the_tutors_gradient(problem_id):
    """Each descended symbol's leaf holds ∂L/∂s: SymPy's partial (exact), TF's (bit for bit)."""
    problem = load(problem_id)
    graph = shipped_graph(problem_id)
    derivation = derive(problem)
    _, tf_gradient = TensorFlowBackend().gradient(problem, graph.values)
    for partial in derivation.partials:
        leaf = graph.leaf(partial.symbol)
        gradient = leaf.total if problem.data else leaf.adjoint
        exact = exact_partial(problem, partial.result, graph.values)
        # Both are 200-bit evaluations of equal closed forms: they agree far below float64.
        assert gradient.symbolic == pytest.approx(float(exact), rel=1e-15, abs=1e-300)
        assert gradient.autodiff == tf_gradient[partial.symbol]


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(loss_sources(max_leaves=6), float32s(4.0), float32s(4.0), float32s(4.0))
def test_random_losses_every_node_within_the_bound(loss, w, x, y):
    try:
        used = names(parse(loss, {"w", "x", "y"}))
        assume(used)
        problem = problem_of(loss, {k: v for k, v in {"w": w, "x": x, "y": y}.items() if k in used})
        graph = build(problem)
    except TutorError:
        assume(False)
        return
    for where, adj in _judged(graph):
        assert adj.verdict != "fail", (where, adj)
    # Each leaf's SymPy adjoint is the partial derivative, which sympy.diff finds independently.
    for node in graph.nodes:
        if node.kind != "symbol":
            continue
        try:
            reference = exact_partial(problem, sympy.diff(problem.loss, node.expr), graph.values)
        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
            continue  # no real value here (1/0, log of a negative number): nothing to compare
        mine = node.adjoint.symbolic
        if not isinstance(reference, mpmath.mpf) or not mpmath.isfinite(reference):
            continue
        if not np.isfinite(mine):
            continue
        assert mine == pytest.approx(float(reference), rel=1e-12, abs=1e-12)


# A symbol used twice: two paths and their sum.


def test_a_symbol_used_twice_shows_both_paths_and_their_sum(run_cli, tmp_path):
    """∂/∂w (wx + w²) = x + 2w: 3 through wx and 1 through w², 4 in all at w = 0.5, x = 3."""
    path = tmp_path / "twice.toml"
    path.write_text(
        'title = "t"\nloss = "w*x + w**2"\n[values]\nw = 0.5\nx = 3.0\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )
    graph = build(load(str(path)))
    paths = graph.edges_into("w")
    assert [graph.node(e.parent).label for e in paths] == ["wx", "w²"]
    assert [e.passed.symbolic for e in paths] == [3.0, 1.0]
    assert [e.passed.autodiff for e in paths] == [3.0, 1.0]
    assert graph.leaf("w").adjoint.symbolic == 4.0
    status, out, _ = run_cli("graph", str(path), "--format", "plain")
    assert status == 0
    assert "∂L/∂w = 3 + 1 = 4 from SymPy, 4 from TensorFlow ✓" in out
    assert "two paths into w: through wx: 3, through w²: 1" in out


# Data: one row's graph under the mean.


def test_a_data_problem_shows_one_row_and_the_mean(run_cli):
    problem = load("least-squares")
    status, out, err = run_cli("graph", "least-squares", "--row", "2", "--format", "plain")
    assert status == 0, err
    x, y = problem.data["x"][1], problem.data["y"][1]
    w, b = problem.values["w"], problem.values["b"]
    n = problem.rows
    residual = w * x + b - y
    assert f"L = (1/{n}) Σᵢ ℓᵢ" in out
    assert f"ℓ₂ = (b + wx − y)²  [n1]  = {residual**2:.4g}" in out
    # Row 2's part of ∂L/∂u is 2u/n.
    shown = out.replace("−", "-")  # numbers carry a true minus; compared as Python prints them
    assert f"∂L/∂u = {1 / n:g} × ({2 * residual:.4g}) = {2 * residual / n:.4g}" in shown
    assert f"∂L/∂w over all {n} rows" in out
    graph = build(problem, row=1)
    exact = exact_partial(problem, derive(problem).partial("w").result, graph.values)
    assert graph.leaf("w").total.symbolic == pytest.approx(float(exact), rel=1e-15)


def test_at_shows_the_values_after_that_many_updates(run_cli):
    status, out, _ = run_cli("graph", "seed-w", "--at", "1", "--format", "json")
    assert status == 0
    body = json.loads(out)["graph"]
    # w ← 0.5 − 0.01·(−27) in float32.
    assert body["values"]["w"] == float(np.float32(0.5) - np.float32(0.01) * np.float32(-27))
    assert body["at"] == 1


# Formats: JSON strict, DOT parsed back, TikZ.


def test_json_is_strict_and_holds_nodes_edges_and_the_gradient(run_cli):
    status, out, _ = run_cli("graph", "seed-w", "--format", "json")
    assert status == 0

    def refuse(name):
        raise ValueError(name)

    body = json.loads(out, parse_constant=refuse)["graph"]
    assert [n["id"] for n in body["nodes"]] == ["n1", "n2", "n3", "w", "x", "y", "c1"]
    assert body["gradient"] == {
        "x": {"symbolic": -4.5, "autodiff": -4.5},
        "y": {"symbolic": 9.0, "autodiff": 9.0},
        "w": {"symbolic": -27.0, "autodiff": -27.0},
    }
    assert {(e["from"], e["to"]) for e in body["edges"]} == {
        ("n2", "n1"),
        ("c1", "n1"),
        ("n3", "n2"),
        ("y", "n2"),
        ("w", "n3"),
        ("x", "n3"),
    }
    assert body["agree"] is True


_DOT_STRING = r'"((?:[^"\\]|\\.)*)"'
_DOT_NODE = re.compile(rf"^\s*{_DOT_STRING} \[label={_DOT_STRING}(?:, shape=\w+)?\];$")
_DOT_EDGE = re.compile(rf"^\s*{_DOT_STRING} -> {_DOT_STRING} \[label={_DOT_STRING}\];$")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Parse the DOT subset the renderer writes: quoted ids, label attributes; refuse the rest."""
    lines = source.strip().splitlines()
    assert re.fullmatch(rf"digraph {_DOT_STRING} {{", lines[0]) and lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[1:-1]:
        if m := _DOT_EDGE.match(line):
            edges.append((_unescape(m[1]), _unescape(m[2]), _unescape(m[3])))
        elif m := _DOT_NODE.match(line):
            nodes[_unescape(m[1])] = _unescape(m[2])
        else:
            assert re.fullmatch(r"\s*(rankdir|node|edge)\b.*;", line), line
    return nodes, edges


@pytest.mark.parametrize("problem_id", ["seed-w", "huber", "logistic"])
def test_dot_output_parses_back_to_the_same_graph(run_cli, problem_id):
    status, out, _ = run_cli("graph", problem_id, "--format", "dot", "--no-tf")
    assert status == 0
    nodes, edges = parse_dot(out)
    graph = build(load(problem_id), autodiff=False)
    assert list(nodes) == [n.id for n in graph.nodes]
    assert [(a, b) for a, b, _ in edges] == [(e.child, e.parent) for e in graph.edges]
    for node in graph.nodes:
        assert nodes[node.id].splitlines()[0] == node.label
    if problem_id == "seed-w":
        assert nodes["w"].splitlines()[1:] == ["value 0.5", "∂L/∂· = −27"]
        assert ("w", "n3", "local x = 3\ngradient −27") in edges


def test_dot_escapes_quotes_and_backslashes():
    nodes, _ = parse_dot(
        render.dot(build(problem_of("w*x", {"w": 1.0, "x": 2.0}), autodiff=False)).replace(
            'label="wx', 'label="w\\"\\\\x'
        )
    )
    assert nodes["n1"].startswith('w"\\x')


def test_latex_is_a_tikz_picture_with_every_node():
    graph = build(load("seed-w"), autodiff=False)
    tex = render.latex(graph)
    assert tex.count(r"\begin{tikzpicture}") == tex.count(r"\end{tikzpicture}") == 1
    for node in graph.nodes:
        assert f"({node.id})" in tex
    assert r"$u = w x - y$" in tex


@pytest.mark.parametrize("fmt", ["dot", "latex", "json"])
def test_no_tf_never_imports_tensorflow(fmt):
    """``python -X importtime`` lists every module the command imported, on stderr."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tutor", "graph", "seed-w", "--no-tf"]
        + ["--format", fmt],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "sympy" in imported
    assert not {name for name in imported if name.split(".")[0] == "tensorflow"}


# The command-line contract.


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["graph", "no-such-problem"], "no-such-problem"),
        (["graph", "seed-w", "--format", "svg"], "'svg' is not one of"),
        (["graph", "seed-w", "--no-tf", "--at", "2"], "--at 2 needs TensorFlow"),
        (["graph", "least-squares", "--row", "9"], "--row 9: least-squares has 5 data rows"),
        (["graph", "seed-w", "--set", "q=1"], "'q' is not a symbol"),
        (["graph", "seed-w", "--row", "2"], "seed-w has no [data] rows"),
        (["step", "seed-w", "--backprop", "--format", "json"], "--backprop shows the graph"),
        (["handout", "seed-w", "--graph", "--variants", "2"], "--graph adds a section"),
    ],
    ids=[
        "unknown problem",
        "format",
        "at without tf",
        "row",
        "set",
        "row without data",
        "backprop json",
        "variants",
    ],
)
def test_bad_input_gets_one_line_and_status_2(run_cli, args, phrase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(*args)
    assert status == 2
    assert out == ""
    assert phrase in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_step_backprop_adds_the_graph_after_the_run(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--steps", "1", "--backprop", "--format", "plain")
    assert status == 0
    run, graph = out.split("The backward pass of update 1, node by node:\n")
    assert "Update 1: L = 20.25" in run
    assert "∂L/∂w = −27 from SymPy, −27 from TensorFlow ✓" in graph


def test_handout_graph_section_holds_the_picture(run_cli, tmp_path):
    target = tmp_path / "h.tex"
    status, out, _ = run_cli("handout", "seed-w", "--graph", "-o", str(target))
    assert status == 0
    tex = target.read_text()
    assert r"\subsection*{The computation graph}" in tex
    assert tex.count(r"\begin{tikzpicture}") == 2  # the graph and the loss plot
    plain = tmp_path / "plain.tex"
    run_cli("handout", "seed-w", "-o", str(plain))
    assert "computation graph" not in plain.read_text()


def test_a_disagreement_is_reported_with_status_1(run_cli, monkeypatch):
    """A tape that drops a factor 2 at one node is caught as verify catches it."""
    from tutor._graph_tape import Autodiff

    original = Autodiff._tape

    def wrong(self):
        grads = original(self)
        first = next(iter(grads))
        grads[first] *= 2
        return grads

    monkeypatch.setattr(Autodiff, "_tape", wrong)
    status, out, err = run_cli("graph", "seed-w", "--format", "plain")
    assert status == 1
    assert "DISAGREES" in out
    assert err.startswith("tutor graph: TensorFlow and SymPy disagree beyond the bound")


@pytest.mark.parametrize("fmt", ["rich", "plain"])
def test_text_formats_show_the_tree(fmt):
    from io import StringIO

    from rich.console import Console

    graph = shipped_graph("seed-w")
    if fmt == "plain":
        assert render.text(graph).startswith("seed-w: the computation graph")
    else:
        buffer = StringIO()
        Console(file=buffer, width=120, color_system=None).print(render.rich(graph))
        assert "u = wx − y" in buffer.getvalue()


def test_a_kink_is_named_not_counted_as_a_disagreement(run_cli):
    """At 1 − wxy = 0 the hinge's max ties: SymPy's H(0) = 1/2, TF's tf.maximum sends 0 to u."""
    args = ("graph", "hinge", "--set", "w=1", "--set", "x=1", "--set", "y=1", "--format", "plain")
    status, out, err = run_cli(*args)
    assert status == 0, err
    assert "∂L/∂u = 1 × 0.5 = 0.5   [TF 0 — a kink point, see below]" in out
    assert "at a kink (max(0, 1 - y*w*x) at 0 = 1 - y*w*x" in out.splitlines()[-1]


@pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
    reason="TeX Live, latexmk and poppler-utils are installed by .ci/run",
)
def test_handout_with_the_graph_builds_into_a_pdf(run_cli, tmp_path):
    target = tmp_path / "h.tex"
    status, out, err = run_cli(
        "handout", "seed-w", "least-squares", "--graph", "-o", str(target), "--pdf"
    )
    assert status == 0, err
    done = subprocess.run(
        ["pdftotext", str(target.with_suffix(".pdf")), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(done.stdout.replace("’", "'").split())
    assert text.count("The computation graph") == 2
    assert "all rows: −27.92" in text  # least-squares: ∂L/∂w over the five rows
    assert "the graph is row 1's, so each box holds that row's part of the gradient" in text


def test_each_use_of_a_symbol_has_its_own_local_derivative():
    """For w·w, ∂(a·b)/∂a = b and ∂(a·b)/∂b = a: each path's local derivative is w, not 2w."""
    graph = build(problem_of("w*w + (w - w)", {"w": 1.5}), autodiff=False)
    square = next(n for n in graph.nodes if n.op == "*")
    edges = [e for e in graph.edges_from(square.id)]
    assert [str(e.local) for e in edges] == ["w", "w"]
    assert [e.local_value for e in edges] == [1.5, 1.5]
    # w − w is 0 to SymPy; the graph names the operation TensorFlow runs.
    difference = next(n for n in graph.nodes if n.op == "-")
    assert difference.label == "w − w"
    assert graph.leaf("w").adjoint.symbolic == 3.0  # 1.5 + 1.5 + 1 − 1
