"""One notation in every medium: exact plain and LaTeX for each form, none of the old forms left."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
from sympy import Abs, E, Heaviside, Max, Piecewise, Rational, exp, pi, sqrt, tanh

from tutor import derive, load, loads
from tutor._mathtext import latex_name, plain_name, unicode, written
from tutor.expression import parse
from tutor.functions import REGISTRY, sigmoid
from tutor.problem import problems_dir
from tutor.render import latex, terminal, text
from tutor.render.code import labelled_code, wrapped
from tutor.render.handout import context, render

w, x, y, d = sympy.symbols("w x y d", real=True)
SHIPPED = sorted(p.stem for p in problems_dir().glob("*.toml"))


def problem_text(loss: str, **extra: float) -> str:
    """Return a problem file for ``loss`` over w (start 0.5), x = 3, y = 6, d = 1."""
    values = {"w": 0.5, "x": 3.0, "y": 6.0, "d": 1.0, **extra}
    used = {n: v for n, v in values.items() if re.search(rf"\b{n}\b", loss)}
    lines = "\n".join(f"{n} = {v!r}" for n, v in used.items())
    return (
        f'title = "t"\nloss = "{loss}"\n[values]\n{lines}\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 2\n'
    )


# ---------------------------------------------------------------------------------------
# Each form, exactly, in plain text and in LaTeX.

FORMS = [
    # (expression, plain, LaTeX)
    (w**w, "w^w", "w^{w}"),
    # A power 1/3, as written: ∛ would promise the real cube root of a negative base.
    ((w - 8) ** Rational(1, 3), "(w − 8)^(1/3)", r"\left(w - 8\right)^{1/3}"),
    (w ** Rational(5, 2), "w^(5/2)", "w^{5/2}"),
    (sqrt(w), "√w", r"\sqrt{w}"),
    (1 / sqrt(w * x), "1/√(wx)", r"\frac{1}{\sqrt{w x}}"),
    (w ** (x + 1) * y, "w^(x + 1)·y", r"w^{x + 1} y"),
    (Abs(w * x - y), "|wx − y|", r"\left|{w x - y}\right|"),
    (Max(0, 1 - w * x * y), "max(0, 1 − wxy)", r"\max\left(0, 1 - w x y\right)"),
    (Heaviside(w, 0), "H(w)", r"H\left(w\right)"),
    (pi * w, "πw", r"\pi w"),
    (E * w, "e·w", r"e \cdot w"),
    (exp(-1), "e⁻¹", "e^{-1}"),
    (exp(2 * w), "e^(2w)", "e^{2 w}"),
    (tanh(w) ** 2, "tanh²(w)", r"\tanh^{2}{\left(w \right)}"),
    (1 - tanh(w) ** 2, "1 − tanh²(w)", r"1 - \tanh^{2}{\left(w \right)}"),
    (
        sigmoid(w) * (1 - sigmoid(w)),
        "(1 − σ(w))σ(w)",
        r"\left(1 - \sigma\left(w\right)\right) \sigma\left(w\right)",
    ),
    (-3 * (w - x), "3x − 3w", "3 x - 3 w"),
    (-w * x, "−wx", "- w x"),
    (
        Piecewise((w, Abs(w) <= d), (d * sympy.sign(w), True)),
        "{w if |w| ≤ d; d·sign(w) otherwise}",
        r"\begin{cases} w & \text{if } \left|{w}\right| \le d \\ "
        r"d \operatorname{sign}{\left(w \right)} & \text{otherwise} \end{cases}",
    ),
]


@pytest.mark.parametrize("expr, plain, tex", FORMS, ids=[f[1] for f in FORMS])
def test_each_form_prints_as_a_teacher_writes_it(expr, plain, tex):
    assert unicode(expr) == plain
    assert latex.math(expr) == tex


def test_a_mean_over_rows_has_its_summand_in_brackets():
    i, n = sympy.symbols("i n")
    mean = sympy.Sum(-y * sympy.log(sigmoid(w * x)) - (1 - y) * x, (i, 1, n)) / n
    assert unicode(mean) == "(1/n) Σᵢ₌₁ⁿ [−x(1 − y) − y·log(σ(wx))]"
    assert latex.math(mean) == (
        r"\frac{1}{n} \sum_{i=1}^{n} \left[- x \left(1 - y\right) - y "
        r"\log{\left(\sigma\left(w x\right) \right)}\right]"
    )
    logistic = load("logistic")
    assert text.loss_line(logistic).startswith("L = (1/6) Σᵢ [−(yᵢ·log(σ(wxᵢ + b))")
    assert text.loss_line(logistic).endswith(")]")


@pytest.mark.parametrize(
    "name, plain, tex",
    [
        ("lam", "λ", r"\lambda"),
        ("eta", "η", r"\eta"),
        ("rate", "rate", r"\mathit{rate}"),
        ("wscr", "wscr", r"\mathit{wscr}"),
        ("what", "what", r"\mathit{what}"),
        ("w1", "w₁", "w_{1}"),
        ("x_i", "xᵢ", "x_{i}"),
        ("lam_max", "λ_max", r"\lambda_{\mathrm{max}}"),
    ],
)
def test_a_name_is_one_symbol_and_the_same_in_every_medium(name, plain, tex):
    assert plain_name(name) == plain
    assert latex_name(name) == tex
    assert unicode(sympy.Symbol(name, real=True)) == plain
    assert latex.math(sympy.Symbol(name, real=True)) == tex


def test_ridge_writes_lambda_in_plain_latex_and_the_handout():
    ridge = derive(load("ridge"))
    shown = text.derivation(ridge)
    assert "Loss: L = (wx − y)² + λw²" in shown
    assert (
        r"\frac{\partial L}{\partial w} = 2 \left(\lambda w + x \left(w x - y\right)\right)"
        in shown
    )
    page = context(_handout("ridge"))["worked"][0]
    assert page["loss"] == r"\left(w x - y\right)^{2} + \lambda w^{2}"
    assert not re.search(r"\blam\b", page["loss"] + page["update_rule"])


@pytest.mark.parametrize(
    "loss, plain, tex",
    [
        ("abs(w)**2", "|w|²", r"\left|w\right|^{2}"),
        ("exp(w)**2", "(e^w)²", r"\left(e^{w}\right)^{2}"),
        ("0.3*w", "0.3w", "0.3 w"),
        ("1e-3*w**2", "1e−3·w²", r"10^{-3} \cdot w^{2}"),
        (
            "w**2.5 + (w - 8)**(1/3)",
            "w^2.5 + (w − 8)^(1/3)",
            r"w^{2.5} + \left(w - 8\right)^{1/3}",
        ),
        ("-(w - x)*2", "−(w − x)·2", r"-\left(w - x\right) \cdot 2"),
    ],
)
def test_the_loss_is_shown_as_written(loss, plain, tex):
    tree = parse(loss, {"w", "x"})
    assert written(tree) == plain
    assert latex.written(tree) == tex


def test_the_loss_as_written_leaves_the_derivation_its_exact_expression():
    problem = loads(problem_text("0.3*w + 1e-3*w**2"))
    assert problem.loss == Rational(3, 10) * w + Rational(1, 1000) * w**2
    assert "Loss: L = 0.3w + 1e−3·w²" in text.derivation(derive(problem))


def test_rule_sentences_speak_notation_not_code():
    u = sympy.Symbol("u", real=True)
    rule = lambda name: REGISTRY[name].rule(REGISTRY[name].sympy(u), u)  # noqa: E731
    assert rule("sigmoid") == (
        "The sigmoid's derivative is σ(1 − σ): d/du σ(u) = σ(u)(1 − σ(u)), kept in σ "
        "rather than expanded into exponentials."
    )
    assert rule("tanh") == "The derivative of tanh is 1 − tanh²: d/du tanh(u) = 1 − tanh²(u)."
    assert rule("sqrt").startswith("√u is u^(1/2), so by the power rule d/du √u = ")
    assert "H(u)" in rule("relu") and "Heaviside" not in rule("relu")
    assert rule("abs").startswith(
        "|u| has slope −1 for u < 0 and 1 for u > 0, so d/du |u| = sign(u)"
    )
    huber = REGISTRY["huber"]
    assert "threshold d:" in huber.rule(huber.sympy(u, d), u)


def test_no_side_of_an_equation_repeats_itself():
    # A constant curvature 2 and a numeric bound on η are printed once, not "2 = 2".
    deriv = derive(loads(problem_text("(w - 3)**2")))
    lines = text.analysis_lines(deriv)
    assert "  ∂²L/∂w² = 2: positive, so the loss has a unique minimum, the fixed point" in lines
    assert any(line.startswith("  stable for η < 1; ") for line in lines)
    items = latex.analysis_items(deriv)
    assert r"Curvature: $\frac{\partial^2 L}{\partial w^2} = 2$: positive" in items[1]
    assert any(item.startswith(r"Stable for $\eta < 1$; ") for item in items)


def test_numbers_in_latex_are_powers_of_ten_and_in_text_have_true_minus_signs():
    assert latex.tex_number(1.15e8) == r"1.15 \times 10^{8}"
    assert latex.tex_number(-2.5e-7) == r"-2.5 \times 10^{-7}"
    assert latex.tex_number(1e-5) == "10^{-5}"
    assert text.num(-27.0) == "−27"
    assert text.num(-9.5e-7) == "−9.5e−07"


def test_update_lines_carry_true_minus_signs_and_the_loss_is_visible_in_latex(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--steps", "1", "--format", "plain")
    assert status == 0
    # The closed form is shown once above the updates; each update substitutes into it.
    assert "  ∂L/∂w = 2x(wx − y)\n" in out
    assert "  ∂L/∂w = 2·3·(0.5·3 − 6) = −27\n" in out
    assert "  w ← w − η·∂L/∂w, η = 0.01\n" in out
    assert "  w ← 0.5 − 0.01·(−27) = 0.77\n" in out
    assert "completed: 1 update, final loss 13.62, distance to the fixed point 1.23 " in out
    assert "(ran the 1 update it was given)" in out
    assert "up to 1 update\n" in out
    status, out, _ = run_cli("step", "seed-w", "--steps", "1", "--format", "latex")
    assert "\\begin{gather*}\n\\text{Update 1:}\\quad L = 20.25 \\\\\n" in out
    assert r"&& \quad \text{power}" in out  # a substep's rule indented in the left-aligned column


def test_json_values_never_show_negative_zero(run_cli, tmp_path):
    path = tmp_path / "z.toml"
    path.write_text(problem_text("(w - x)**2").replace("w = 0.5", "w = -0.0"))
    status, out, _ = run_cli("step", str(path), "--format", "json")
    assert status == 0
    assert "-0.0" not in out
    assert json.loads(out.splitlines()[0])["values"]["w"] == 0.0


def test_escape_keeps_two_hyphens_subscripts_and_true_minus():
    assert latex.escape("tutor step ridge --set lam=0") == "tutor step ridge -{}-set lam=0"
    assert latex.escape("2/λ_max = -2.4") == r"2/$\lambda$\textsubscript{max} = $-$2.4"
    assert latex.unsupported("Price in € and 価格, 3 ≤ λ") == ["€", "価", "格"]


def test_check_refuses_prose_a_handout_cannot_typeset(run_cli, tmp_path):
    path = tmp_path / "euro.toml"
    path.write_text(problem_text("(w*x - y)**2").replace('title = "t"', 'title = "Cost in €"'))
    status, out, err = run_cli("check", str(path))
    assert status == 2
    assert out == (
        f"{path}: title: the character '€' (U+20AC) cannot be typeset in a handout; "
        "write it out in words or leave it out (README: 'Characters in prose')\n"
    )
    assert err.strip() == "tutor check: the file has errors"


def test_show_code_is_labelled_after_the_derivation(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--steps", "1", "--show-code", "--format", "plain")
    assert status == 0
    label = (
        "# One update of seed-w in TensorFlow (tensor mode, float32):\nimport tensorflow as tf\n"
    )
    assert out.index("Loss: L = (wx − y)²") < out.index(label) < out.index("Update 1: L = 20.25")
    status, out, _ = run_cli("step", "seed-w", "--steps", "1", "--show-code", "--format", "seed")
    assert out.startswith(label) and out.endswith("\nLoss = 20.25,  w = 00.77 \n")


def test_code_listing_wraps_inside_brackets_and_stays_python():
    code = wrapped(labelled_code(load("logistic")), 84)
    assert max(map(len, code.splitlines())) <= 84
    compile(code, "update.py", "exec")
    assert "    w.numpy(), b.numpy()))" in code.splitlines()


def _handout(problem_id: str, graph: bool = False):
    from tutor.autodiff import TensorFlowBackend
    from tutor.handout import build

    return build([load(problem_id)], TensorFlowBackend(), graph=graph)


def test_handout_title_once_loss_with_significant_digits_tables_on_the_point():
    source = render(_handout("ridge"))
    assert source.count("Ridge (L2-regularised) regression") == 1
    assert r"\section{" not in source
    assert "\\usepackage{dcolumn}" in source
    assert re.search(r"\\begin\{longtable\}\{rD\{\.\}\{\.\}\{2\}D\{\.\}\{\.\}\{3\}", source)
    assert "\n46 & 1.78 & 1.778 & " in source  # L to four significant digits, not 0.00


# ---------------------------------------------------------------------------------------
# Acceptance: none of the old forms anywhere.

#: Forms a reader must never see, in any medium (plain, rich, LaTeX, handout).
FORBIDDEN = {
    "power as product": r"··|\*\*",
    "SymPy Abs": r"\bAbs\(",
    "SymPy Max/Min": r"\b(?:Max|Min)\(",
    "Piecewise": r"Piecewise",
    "Heaviside": r"Heaviside|\\theta\\left\(",
    "exp(−1)": r"exp\([−-]1\)",
    "code product": r"\)\*\(|\w\*\(|\)\*\w",
    "repeated side": r"(?:(?<=[=<:] )|^)(\d+(?:\.\d+)?) = \1(?![\w.])",
    "threshold d = d": r"threshold d = d\b",
    "one plural": r"\b1 updates\b|\b1 of 1 files\b",
    "unknown character": r"\[U\+[0-9A-F]{4}\]",
}
#: Forms only plain and rich text must not show (LaTeX writes its minus as -).
FORBIDDEN_PLAIN = {
    # A shell command in a problem's prose (--set w=-0.5) keeps its ASCII minus.
    "ASCII minus before a number": r"(?<![\w.\\{^\-=])-(?=\d)",
    "SymPy constants": r"(?<![A-Za-z_])(?:pi|E)(?![A-Za-z_(])",
    "Ew as one symbol": r"\bE[a-z]\b",
}
#: Forms only LaTeX must not show.
FORBIDDEN_LATEX = {
    "E-notation": r"(?<![\w\\])\d+(?:\.\d+)?e[+\-−]?\d",
    "multi-letter name as letters": r"(?<![\\\w{])lam\s*w|\\mathscr|\\mathfrak",
    "escaped subscript": r"\\_(?:max|min|\d)",
    "en dash for --": r"(?<![-{])--(?:set|format|steps)",
    "d beside ∂ (every derivative of a partial is written with ∂)": r"\\frac\{d\}\{d",
}

#: Losses using each registry function with fractional and symbolic powers.
FUNCTION_LOSSES = {
    name: (
        f"{name}(w*x - y, d)**2.5 + w**w + (w + 8)**(1/3)"
        if REGISTRY[name].arity == 2
        else f"{name}(w*x + 4)**(1/3) + {name}(w)**2.5 + (w + 8)**w + w**(1/2)"
    )
    for name in REGISTRY
}


def _plain_lines(out: str) -> list[str]:
    """Return the lines of plain output that are not LaTeX or code (those keep ASCII)."""
    keep, code = [], False
    for line in out.splitlines():
        if line.startswith("# One update of"):
            code = True
        if code or line.lstrip("│ ").startswith("LaTeX:"):
            continue
        keep.append(line)
    return keep


def _check(out: str, patterns: dict[str, str], where: str) -> None:
    for label, pattern in patterns.items():
        found = re.search(pattern, out, re.M)
        assert found is None, (
            f"{where}: {label}: {out[max(0, found.start() - 60) : found.end() + 60]!r}"
        )


def _rich(renderable) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("name", sorted(FUNCTION_LOSSES))
def test_no_old_form_in_a_derivation_using_each_function(name):
    deriv = derive(loads(problem_text(FUNCTION_LOSSES[name])))
    plain = "\n".join(_plain_lines(text.derivation(deriv)))
    _check(plain, {**FORBIDDEN, **FORBIDDEN_PLAIN}, f"{name} plain")
    rich = "\n".join(_plain_lines(_rich(terminal.derivation(deriv))))
    _check(rich, {**FORBIDDEN, **FORBIDDEN_PLAIN}, f"{name} rich")
    tex = latex.derivation(deriv) + "\n".join(latex.analysis_items(deriv))
    _check(tex, {**FORBIDDEN, **FORBIDDEN_LATEX}, f"{name} latex")


@pytest.mark.parametrize("problem_id", SHIPPED)
def test_no_old_form_in_a_shipped_problems_output(problem_id):
    from tutor.autodiff import TensorFlowBackend
    from tutor.descent import descend

    problem = load(problem_id)
    traj = descend(derive(problem), TensorFlowBackend())
    plain = "\n".join(_plain_lines(text.trajectory(traj) + "\n" + labelled_code(problem)))
    _check(plain, {**FORBIDDEN, **FORBIDDEN_PLAIN}, f"{problem_id} plain")
    rich = "\n".join(_plain_lines(_rich(terminal.trajectory(traj))))
    _check(rich, {**FORBIDDEN, **FORBIDDEN_PLAIN}, f"{problem_id} rich")
    typeset = re.sub(r"(?m)^%.*$", "", latex.trajectory(traj))  # comments are not typeset
    _check(typeset, {**FORBIDDEN, **FORBIDDEN_LATEX}, f"{problem_id} latex")
    source = render(_handout(problem_id))
    # The code listing is Python, and the plot's coordinates are data, not typeset text.
    source = re.sub(r"\\begin\{Verbatim\}.*?\\end\{Verbatim\}", "", source, flags=re.S)
    source = re.sub(r"coordinates \{.*?\};", "", source)
    _check(source, {**FORBIDDEN, **FORBIDDEN_LATEX}, f"{problem_id} handout")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdfLaTeX")
@pytest.mark.parametrize("problem_id", SHIPPED)
def test_every_shipped_handout_builds_without_overfull_lines_or_missing_characters(
    problem_id, tmp_path: Path
):
    # logistic's computation graph is wider than the line: it is scaled to fit.
    handout = _handout(problem_id, graph=problem_id in ("logistic", "seed-w"))
    (tmp_path / "h.tex").write_text(render(handout), encoding="utf-8")
    done = subprocess.run(
        [
            "pdflatex",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-no-shell-escape",
            "h.tex",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (tmp_path / "h.log").read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, log[-2000:]
    bad = [
        line
        for line in log.splitlines()
        if re.search(r"Overfull \\hbox|Missing character|Unicode character", line)
    ]
    assert bad == []


@pytest.mark.parametrize(
    "args",
    [
        ("graph", "seed-w", "--format", "plain"),
        ("graph", "least-squares", "--format", "plain", "--row", "2"),
        ("graph", "huber", "--format", "plain"),
        ("verify", "seed-w", "--examples", "20", "--seed", "2"),
        ("pitfalls", "integer-dtype", "--format", "plain"),
        ("pitfalls", "sqrt-at-zero", "--format", "plain"),
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_every_command_writes_numbers_with_the_true_minus(run_cli, args):
    status, out, err = run_cli(*args)
    assert status == 0, err
    # TensorFlow's own printout (tf.Tensor(-27.0, …)) and the code listed keep Python's text.
    prose, code = [], False
    for line in out.splitlines():
        if line in ("The code", "The fixed code"):
            code = True
        elif line and not line.startswith(" "):
            code = False
        if not code and "tf.Tensor(" not in line:
            prose.append(line)
    _check("\n".join(prose), {**FORBIDDEN, **FORBIDDEN_PLAIN}, " ".join(args))


def test_practice_reads_back_numbers_copied_from_its_own_output(run_cli, monkeypatch):
    # The tutor writes −27 and 0.01·(−27); a student who copies them is understood.
    import io

    answers = "2*x*(w*x - y)\n−27\n0.5 − 0.01·(−27)\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(answers))
    status, out, _ = run_cli("practice", "seed-w", "--updates", "1")
    assert status == 0
    assert "Correct: ∂L/∂w = −27." in out
    assert "Correct: w = 0.77." in out
    assert "Cannot read" not in out


def test_the_handout_chains_the_algebra_and_says_what_each_rule_gives():
    # logistic's ∂L/∂w: the moves after the rules, each named, one under the other.
    source = render(_handout("logistic"))
    moves = re.findall(r"\\text\{(substitute|cancel|expand|collect|factor):\}", source)
    assert moves[:5] == ["substitute", "cancel", "expand", "collect", "factor"]
    assert r"\text{so the chain rule gives}" in source
    assert r"\frac{d}{d" not in source


def test_practice_hints_write_partial_derivatives_with_the_partial_sign():
    from tutor.render.practice import hint_text

    partial = derive(load("logistic")).partial("w")

    def every(steps):
        for step in steps:
            yield step
            yield from every(step.substeps)

    hints = [hint_text(step, "w") for step in every(partial.steps)]
    assert any("chain rule, ∂/∂w f(" in h for h in hints)
    assert not any(re.search(r"\bd/d[a-z]|\bd[a-z]/d[a-z]\b", h) for h in hints), hints


def test_a_subscripted_name_is_written_one_way_in_every_sentence(run_cli, tmp_path):
    # w1 and lam_max are w₁ and λ_max in the steps, the brief chain line and the analysis.
    path = tmp_path / "names.toml"
    path.write_text(
        'title = "names"\nloss = "abs(w1 - lam_max) + rate*w1**2"\n'
        "[values]\nw1 = 0.5\nlam_max = 2.0\nrate = 0.3\n"
        '[descent]\nwrt = ["w1"]\nlearning_rate = 0.01\nsteps = 3\n'
    )
    for detail in ("brief", "full"):
        status, out, _ = run_cli("show", str(path), "--format", "plain", "--detail", detail)
        assert status == 0
        prose = "\n".join(_plain_lines(out))
        assert re.search(r"\bw1\b|\blam_max\b", prose) is None, prose
    assert "·∂u/∂w₁ = " in run_cli("show", str(path), "--format", "plain", "--detail", "brief")[1]
