"""Renderers: exact output, byte for byte, for the notebook's problem."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import pytest
import sympy
from rich.console import Console

import tutor
from tutor._mathtext import unicode
from tutor._numbers import exact, number
from tutor.model import Update
from tutor.render import latex, terminal, text

GOLDEN = Path(__file__).parent / "golden"
w, x, y = sympy.symbols("w x y", real=True)


def two_steps(backend):
    problem = dataclasses.replace(tutor.load("seed-w"), steps=2)
    return tutor.descend(tutor.derive(problem), backend)


def test_plain_step_output_is_exact(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--steps", "2", "--format", "plain")
    assert status == 0
    assert out == (GOLDEN / "seed-w-steps2-plain.txt").read_text()


def test_rich_output_at_width_100_is_exact(backend):
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    console.print(terminal.trajectory(two_steps(backend)), crop=False)  # as the CLI prints
    assert buffer.getvalue() == (GOLDEN / "seed-w-steps2-rich100.txt").read_text()


def test_seed_line_keeps_the_notebooks_trailing_space():
    update = Update(1, {"w": 0.5}, 20.25, {}, {}, {"w": 0.7699999809265137})
    assert text.seed_line(update, ("w",)) == "Loss = 20.25,  w = 00.77 "
    two = Update(1, {}, 20.25, {}, {}, {"w": 0.77, "b": 0.1})
    assert text.seed_line(two, ("w", "b")) == "Loss = 20.25,  w = 00.77,  b = 00.10 "


def test_unicode_writes_products_as_a_teacher_does():
    assert unicode(2 * x * (w * x - y)) == "2x(wx − y)"
    assert unicode((w * x - y) ** 2) == "(wx − y)²"
    assert unicode(2 * x * (w * x - y), {"w": 0.5, "x": 3.0, "y": 6.0}) == "2·3·(0.5·3 − 6)"
    assert unicode(sympy.Derivative((w * x - y) ** 2, w)) == "∂/∂w[(wx − y)²]"


def test_latex_substitutes_numbers_with_parenthesised_negatives():
    result = latex.substituted(2 * x * (w * x - y), {"w": -0.5, "x": 3.0, "y": 6.0})
    assert result == r"2 \cdot 3 \cdot \left(\left(-0.5\right) \cdot 3 - 6\right)"


def test_numbers_shown_to_people():
    assert [number(v) for v in (0.7699999809265137, -27.0, -0.0, 1e-9)] == [
        "0.77",
        "-27",
        "0",
        "1e-09",
    ]
    assert exact(-22.139999389648438, "float32") == "-22.14"
    assert exact(-22.140000343322754) == "-22.140000343322754"


def test_sparkline_is_log_scaled():
    assert text.sparkline([100.0, 10.0, 1.0]) == "█▅▁"
    assert text.sparkline([]) == ""


# Substituted numbers: the arithmetic on the printed numbers gives the printed result.


def _arithmetic(text: str) -> float:
    """Evaluate printed arithmetic (numbers, + − · and parentheses) with a tiny AST walk."""
    import ast
    import operator
    import re

    source = text.replace("·", "*").replace("−", "-")
    assert re.fullmatch(r"[0-9.e()*+\- ]+", source), text
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        raise AssertionError(f"unexpected {ast.dump(node)} in {text}")

    return walk(ast.parse(source, mode="eval"))


def _significant(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(digits)


@pytest.mark.parametrize("problem", ["seed-w", "seed-x", "ridge", "bowl", "valley", "linear-bias"])
def test_substituted_numbers_check_by_hand_and_both_gradients_share_a_precision(run_cli, problem):
    status, out, _ = run_cli("step", problem, "--format", "plain")
    assert status == 0
    checked = 0
    updates = out.split("\nUpdate 1:")[1]  # past the problem's own prose
    for line in updates.splitlines():
        # Numbers are printed with the true minus sign; Python reads the ASCII one.
        line = line.strip().replace("−", "-")
        if line.startswith("∂L/∂") and "·" in line:
            *_, substituted, result = line.split(" = ")
            assert number(_arithmetic(substituted)) == result, line
            checked += 1
        elif " ← " in line and not line.startswith("LaTeX"):
            rhs, new = line.split(" ← ")[1].rsplit(" = ", 1)
            new, _, note = new.partition(" (")
            if note:
                # The run rounded: the exact result of the printed numbers is given beside it.
                # The run's value is within two float32 roundings (η·g, then the subtraction)
                # of it, and is printed to half a unit of its last printed digit.
                exact = note.removesuffix(")").split(" rounding of ")[1]
                assert number(_arithmetic(rhs), _significant(exact)) == exact, line
                value = float(new)
                half_unit = 0.5 * 10.0 ** (
                    math.floor(math.log10(abs(value))) - _significant(new) + 1
                )
                assert abs(float(exact) - value) <= 2 * 2.0**-23 * abs(value) + half_unit, line
            else:
                assert number(_arithmetic(rhs), max(_significant(new), 4)) == new, line
            checked += 1
        elif line.startswith("SymPy "):
            parts = line.split()
            sym, tf, diff = parts[1], parts[3], parts[-1]
            assert parts[4:7] == ["TF", "-", "SymPy"]
            if sym != tf and float(sym) and float(tf):
                assert _significant(sym) == _significant(tf), line
                assert (float(tf) - float(sym) > 0) == (float(diff) > 0), line
    assert checked > 10


def test_a_wrapped_derivation_line_keeps_its_indentation():
    # At 70 columns the analysis's sentences wrap; each continuation starts under its
    # line's text (two spaces in), not at the panel's edge where it reads as a heading.
    buffer = io.StringIO()
    console = Console(file=buffer, width=70, color_system=None, force_terminal=False)
    console.print(terminal.derivation(tutor.derive(tutor.load("seed-w")), latex_below=False))
    inside = [line[2:-2].rstrip() for line in buffer.getvalue().splitlines()[1:-1]]
    analysis = inside[inside.index("Convergence (the loss is quadratic in w):") + 1 :]
    assert analysis[:2] == [
        "  ∂²L/∂w² = 2x² = 18: positive, so the loss has a unique minimum,",
        "  the fixed point",
    ]
    assert all(line.startswith("  ") for line in analysis if line)


def test_shown_in_rich_the_closed_forms_latex_lines_are_whole_below_the_panel():
    # At 60 columns the LaTeX of ridge's ∂L/∂w is wider than a panel: it is printed after
    # the panel on one line (the terminal soft-wraps it), so a copy gives the formula whole.
    buffer = io.StringIO()
    console = Console(file=buffer, width=60, color_system=None, force_terminal=False)
    console.print(terminal.derivation(tutor.derive(tutor.load("ridge"))), crop=False)
    lines = buffer.getvalue().splitlines()
    latex = (
        r"LaTeX: \frac{\partial L}{\partial w} = "
        r"2 \left(\lambda w + x \left(w x - y\right)\right)"
    )
    assert lines[-1] == latex
    assert not any("LaTeX" in line for line in lines[:-1])


def test_a_narrow_table_folds_its_numbers_and_never_cuts_them(backend):
    # Two partials' columns at 60 columns are too wide: rich's default would end each cell
    # in "…", dropping the exponent; folded, every digit and exponent stays.
    problem = dataclasses.replace(tutor.load("least-squares"), steps=1)
    traj = tutor.descend(tutor.derive(problem), backend)
    u = Update(
        1,
        {"w": 0.5, "b": 0.25},
        1.5,
        {"w": 1.0000273e-07, "b": -9.4739214e-05},
        {"w": 8.1956e-08, "b": -1.0430812e-05},
        {"w": 0.49, "b": 0.24},
    )
    buffer = io.StringIO()
    console = Console(file=buffer, width=60, color_system=None, force_terminal=False)
    console.print(terminal.table(traj, [u]), crop=False)
    narrow = buffer.getvalue()
    assert "…" not in narrow and "SymPy" not in narrow  # the gradients are in the updates
    assert "0.49" in narrow and "0.24" in narrow
    buffer = io.StringIO()
    console = Console(file=buffer, width=140, color_system=None, force_terminal=False)
    console.print(terminal.table(traj, [u]), crop=False)
    wide = buffer.getvalue()
    assert "…" not in wide
    for pair in ("1.000027e−07", "8.195600e−08", "−9.473921e−05", "−1.043081e−05"):
        assert pair in wide  # as side_by_side writes each pair
