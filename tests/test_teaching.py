"""Derivations that teach, as a reader sees them: brief and full, names, rows, LaTeX."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import sympy
from rich.console import Console

import tutor
from tutor.graph import build
from tutor.render import terminal
from tutor.steps import rules_used


def lines_of(out: str) -> list[str]:
    return out.rstrip("\n").split("\n")


def test_brief_logistic_fits_one_50_line_screen(run_cli):
    status, out, _ = run_cli("show", "logistic", "--detail", "brief", "--format", "plain")
    assert status == 0
    assert len(lines_of(out)) <= 50
    # The cancellation to the textbook gradient, move by move, in the named form.
    moves = [m[1] for line in lines_of(out) if (m := re.match(r"\s+(\[[a-z ]+\]) = ", line))]
    assert moves[:5] == ["[substitute]", "[cancel]", "[expand]", "[collect]", "[factor]"]
    assert "  let u = b + wx, v = σ(u), r = 1 − σ(u)" in lines_of(out)
    assert "  [factor] = x(σ(u) − y)" in lines_of(out)


@pytest.mark.parametrize("width", [80, 100])
def test_brief_logistic_fits_one_50_line_terminal(width):
    """As `tutor show logistic --detail brief` prints it in a terminal of that width."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(terminal.derivation(tutor.derive(tutor.load("logistic")), "brief"), crop=False)
    assert len(buffer.getvalue().splitlines()) <= 50


@pytest.mark.parametrize("problem", tutor.shipped_ids())
def test_full_detail_shows_every_rule_of_the_tree(run_cli, problem):
    status, out, _ = run_cli("show", problem, "--detail", "full", "--format", "plain")
    assert status == 0
    shown = set(re.findall(r"^\s+\[([a-z ]+(?:SymPy)?)\] ", out, re.M))
    derivation = tutor.derive(tutor.load(problem))
    assert shown == set().union(*(rules_used(p.steps) for p in derivation.partials))


def test_detail_defaults_to_full_when_piped(run_cli):
    _, default, _ = run_cli("show", "seed-w", "--format", "plain")
    _, full, _ = run_cli("show", "seed-w", "--format", "plain", "--detail", "full")
    assert default == full
    assert "[held constant] ∂/∂w[x] = 0" in full


def test_a_misspelt_detail_is_refused(refuses):
    refuses(["show", "seed-w", "--detail", "breif"], "--detail")


def test_constants_are_said_once_per_partial(run_cli):
    _, out, _ = run_cli("show", "logistic", "--format", "plain")
    said = [line for line in lines_of(out) if "are constants here" in line]
    assert said == [
        "  b, x and y are constants here (a partial derivative holds all but w fixed).",
        "  w, x and y are constants here (a partial derivative holds all but b fixed).",
    ]


def test_the_three_factor_product_rule_quotes_its_formula(run_cli, tmp_path):
    path = tmp_path / "three.toml"
    path.write_text(
        'title = "Three factors"\nloss = "w*sin(w)*exp(w)"\n[values]\nw = 0.5\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )
    _, out, _ = run_cli("show", str(path), "--format", "plain")
    assert "(fgh)′ = f′gh + fg′h + fgh′" in out


def test_partials_in_latex_use_the_partial_sign_throughout(run_cli):
    for problem in tutor.shipped_ids():
        _, out, _ = run_cli("show", problem, "--format", "latex")
        assert r"\frac{d}{d" not in out, problem


def test_a_quotients_numerator_is_its_own_line(run_cli, tmp_path):
    path = tmp_path / "quotient.toml"
    path.write_text(
        'title = "A quotient"\nloss = "w/(1 + w**2)"\n[values]\nw = 0.5\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )
    _, out, _ = run_cli("show", str(path), "--format", "plain", "--detail", "brief")
    assert "  [collect] = (1 − w²)/(w² + 1)²" in lines_of(out)


def test_the_graph_names_each_inner_expression_with_its_own_letter():
    graph = build(tutor.load("logistic"), autodiff=False)
    names = {node.name: node.form for node in graph.nodes if node.name}
    assert len(names) == len(set(names.values()))
    assert {"u", "v", "r"} <= set(names)


def _printed_rows(out: str, symbol: str) -> tuple[list[float], str]:
    """The row values printed under ∂L/∂symbol in the first update, and its mean line."""
    out = out.replace("−", "-")  # the text's true minus signs, as Python reads numbers
    block = out.split("Update 1:")[1].split(f"∂L/∂{symbol} =")[1]
    block = re.split(r"\n  \S", block)[0]  # up to the next line of the update itself
    rows = [float(v) for v in re.findall(r"^    row \d+: .* = (\S+)$", block, re.M)]
    mean = re.search(r"^    (mean of the .*|… and .*)$", block, re.M)
    assert mean is not None
    return rows, mean[1]


def test_each_update_shows_every_rows_gradient_and_their_mean(run_cli):
    status, out, _ = run_cli("step", "least-squares", "--steps", "1", "--format", "plain")
    assert status == 0
    problem = tutor.load("least-squares")
    x, y = (np.array(problem.data[n], dtype=np.float64) for n in ("x", "y"))
    w, b = problem.values["w"], problem.values["b"]
    expected = 2 * x * (b + w * x - y)  # the per-row ∂L/∂w, in float64
    rows, mean = _printed_rows(out, "w")
    # Printed to 4 significant digits: half a unit in the 4th digit.
    np.testing.assert_allclose(rows, expected, rtol=5e-4, atol=1e-12)
    assert mean.startswith(f"mean of the {len(x)} rows: (")
    assert float(mean.rsplit(" = ", 1)[1]) == pytest.approx(expected.mean(), rel=5e-4)


def test_beyond_a_handful_of_rows_the_first_rows_and_the_mean(run_cli, tmp_path):
    path = tmp_path / "rows.toml"
    xs = [float(k) for k in range(1, 11)]
    path.write_text(
        'title = "Ten rows"\nloss = "(w*x - y)**2"\n[values]\nw = 0.5\n'
        f"[data]\nx = {xs}\ny = {[2 * v for v in xs]}\n"
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.001\nsteps = 1\n'
    )
    _, out, _ = run_cli("step", str(path), "--format", "plain")
    rows, mean = _printed_rows(out, "w")
    x = np.array(xs)
    np.testing.assert_allclose(rows, (2 * x * (0.5 * x - 2 * x))[:3], rtol=5e-4)
    expected = float(np.mean(2 * x * (0.5 * x - 2 * x)))
    assert mean.startswith("… and 7 more rows; the mean of all 10 is ")
    assert float(mean.rsplit(" ", 1)[1]) == pytest.approx(expected, rel=5e-4)


def test_a_loss_writing_the_sigmoid_with_exp_ends_at_sigma(run_cli, tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        'title = "Sigmoid written out"\n'
        'loss = "-(y*log(1/(1 + exp(-(w*x + b)))) + (1 - y)*log(1 - 1/(1 + exp(-(w*x + b)))))"\n'
        "[values]\nw = 0.0\nb = 0.0\n[data]\nx = [-1.0, 2.0]\ny = [0.0, 1.0]\n"
        '[descent]\nwrt = ["w", "b"]\nlearning_rate = 0.5\nsteps = 1\n'
    )
    _, out, _ = run_cli("show", str(path), "--format", "plain")
    assert "∂L/∂w = (1/2) Σᵢ xᵢ(σ(b + wxᵢ) − yᵢ)" in out
    assert "∂L/∂b = (1/2) Σᵢ [σ(b + wxᵢ) − yᵢ]" in out  # a sum: in brackets
    assert "is the sigmoid" in out
    result = tutor.derive(tutor.load(str(path))).partial("w").result
    assert not result.has(sympy.exp)


def test_sums_take_their_terms_in_the_order_of_the_formula(run_cli):
    # ridge writes (w*x - y)**2 + lam*w**2; SymPy would print λw² first.
    _, brief, _ = run_cli("show", "ridge", "--format", "plain", "--detail", "brief")
    assert "  [sum] term by term: ∂/∂w[(wx − y)²] + λ·∂/∂w[w²]" in lines_of(brief)
    partial = tutor.derive(tutor.load("ridge")).partial("w")
    assert [sub.rule for sub in partial.steps[0].substeps] == ["chain", "constant multiple"]


def test_the_mean_of_the_rows_adds_up_by_hand_even_when_they_cancel():
    # Near logistic's minimum the rows' gradients cancel to 1e−7: at four digits each, the
    # terms would add up to about 1e−5. Their printed digits must give the printed mean.
    from tutor.render.text import mean_line

    results = [0.01120012283, 0.05671889123, -0.5762240553, 0.6288679618, -0.100049596]
    results.append(-sum(results) + 6e-7)
    mean = sum(results) / 6
    line = mean_line(results, mean).replace("−", "-")
    inside, shown = re.fullmatch(r"\s*mean of the 6 rows: \((.*)\)/6 = (\S+)", line).groups()
    terms = [float(t.strip("()")) for t in inside.split(" + ")]
    assert f"{sum(terms) / 6:.4g}" == f"{float(shown):.4g}" == f"{mean:.4g}"
