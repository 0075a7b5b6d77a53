"""Renderers: exact output, byte for byte, for the notebook's problem."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

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
