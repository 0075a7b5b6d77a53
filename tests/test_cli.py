"""The command line: the notebook's lines byte for byte, and one clear line per bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("problem", ["seed-w", "seed-variable"])
def test_seed_format_prints_the_notebooks_twenty_lines(run_cli, problem):
    status, out, err = run_cli("step", problem, "--format", "seed")
    assert status == 0, err
    assert out.encode() == (GOLDEN / f"{problem}.txt").read_bytes()


def test_seed_x_matches_the_notebook_up_to_its_cut(run_cli):
    status, out, _ = run_cli("step", "seed-x", "--format", "seed")
    golden = (GOLDEN / "seed-x.txt").read_text().splitlines()
    lines = out.splitlines(keepends=True)
    assert status == 0
    assert len(lines) == 100
    assert all(line.endswith(" \n") for line in lines)
    # The notebook's output stops after 38 full lines and the start of the 39th.
    assert [line.rstrip("\n") for line in lines[:38]] == golden[:38]
    assert lines[38].startswith(golden[38])


def test_seed_x_follows_the_closed_form_of_its_iteration(run_cli):
    """x_k − 12 = (1 − 2ηw²)^k (x_0 − 12) = 0.95^k · (−9), up to float32 rounding.

    Each float32 update x ← x − η·2w(wx − y) rounds five times; each rounding
    errs by at most u = 2⁻²⁴ of a term no larger than M = |x| + η·2|w|(|w||x| + |y|)
    ≤ 12 + 0.1·(0.5·12 + 6) = 13.2. An error made at step j shrinks by the
    contraction 0.95 afterwards, so the total after k steps is at most
    γ₅·M / (1 − 0.95) with γ₅ = 5u/(1 − 5u).
    """
    status, out, _ = run_cli("step", "seed-x", "--format", "json")
    updates = [json.loads(line) for line in out.splitlines()[:-1]]
    u = 2.0**-24
    bound = (5 * u / (1 - 5 * u)) * 13.2 / (1 - 0.95)
    k = np.arange(1, 101)
    closed = 12.0 - 9.0 * 0.95**k
    got = np.array([upd["updated"]["x"] for upd in updates])
    assert status == 0
    assert np.max(np.abs(got - closed)) <= bound
    printed = [
        line.split("x = ")[1].strip()
        for line in run_cli("step", "seed-x", "--format", "seed")[1].splitlines()
    ]
    assert printed == [f"{v:05.2f}" for v in got]


@pytest.mark.parametrize("mode", ["tensor", "variable"])
def test_seed_linear_shows_the_gradient_two(run_cli, mode):
    status, out, _ = run_cli("step", "seed-linear", "--variables", mode, "--format", "plain")
    assert status == 0
    assert "TF 2.0" in out
    assert f"{mode} mode" in out
    status, out, _ = run_cli("step", "seed-linear", "--variables", mode, "--format", "json")
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["start"]["gradient"]["x"] == {"symbolic": 2.0, "autodiff": 2.0}
    assert summary["steps"] == 0


def test_tensor_and_variable_modes_give_identical_iterates(run_cli):
    runs = {}
    for mode in ("tensor", "variable"):
        _, out, _ = run_cli("step", "seed-x", "--variables", mode, "--format", "json")
        runs[mode] = [json.loads(line) for line in out.splitlines()[:-1]]
    assert [u["updated"] for u in runs["tensor"]] == [u["updated"] for u in runs["variable"]]
    assert [u["loss"] for u in runs["tensor"]] == [u["loss"] for u in runs["variable"]]


def test_json_gradients_agree_within_the_float32_forward_error_bound(run_cli):
    """|g_TF − g| ≤ γ₃·S for ∂/∂w of (wx − y)² = 2x(wx − y).

    TF rounds three times on the way to ∂L/∂w: w·x, then − y, then the
    backward product with x (doubling is exact). The standard forward error
    bound (Higham, ch. 3) for k roundings is γ_k·S, γ_k = k·u/(1 − k·u), with
    S = 2|x|(|w||x| + |y|) the derivative re-evaluated on the terms' absolute
    values — not on the result, which cancellation makes small near wx = y.
    """
    u = 2.0**-24
    gamma3 = 3 * u / (1 - 3 * u)
    for problem, sym in (("seed-w", "w"), ("seed-x", "x")):
        status, out, _ = run_cli("step", problem, "--format", "json")
        records = [json.loads(line) for line in out.splitlines()]
        assert status == 0
        assert records[-1]["summary"]["status"] == "completed"
        for rec in records[:-1]:
            v = rec["values"]
            other = v["x"] if sym == "w" else v["w"]
            s = 2 * abs(other) * (abs(v["w"]) * abs(v["x"]) + abs(v["y"]))
            g = rec["gradient"][sym]
            assert abs(g["autodiff"] - g["symbolic"]) <= gamma3 * s, rec


def test_json_lines_are_strict_json_with_the_contract_keys(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--format", "json", "--steps", "3")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [r["step"] for r in records[:-1]] == [1, 2, 3]
    assert set(records[0]) >= {"step", "loss", "values", "gradient", "updated"}
    assert records[0]["values"] == {"x": 3.0, "y": 6.0, "w": 0.5}
    assert records[0]["gradient"] == {"w": {"symbolic": -27.0, "autodiff": -27.0}}
    assert records[-1]["summary"]["status"] == "completed"


def test_plain_step_shows_each_update_beside_its_latex_derivation(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--format", "plain", "--steps", "1")
    assert status == 0
    # The closed form once, above the updates; each update substitutes its numbers into it.
    head, _, update = out.partition("Update 1:")
    assert "  ∂L/∂w = 2x(wx − y)\n" in head
    assert r"LaTeX: \frac{\partial L}{\partial w} = 2 x \left(w x - y\right)" in head
    assert (
        r"LaTeX: \frac{\partial L}{\partial w} = "
        r"2 \cdot 3 \cdot \left(0.5 \cdot 3 - 6\right) = -27" in update
    )
    assert r"w \leftarrow 0.5 - 0.01\cdot \left(-27\right) = 0.77" in update
    assert "∂L/∂w = 2·3·(0.5·3 − 6) = −27" in update
    assert "2x(wx − y)" not in update
    assert "SymPy −27.0   TF −27.0" in out


def test_overrides_change_the_run(run_cli):
    status, out, _ = run_cli(
        "step",
        "seed-w",
        "--format",
        "json",
        "--lr",
        "0.1",
        "--steps",
        "2",
        "--set",
        "w=1",
        "--dtype",
        "float64",
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert records[0]["values"]["w"] == 1.0
    # float64: w ← 1 − 0.1·2·3·(3 − 6) = 2.8 exactly as float64 arithmetic gives it.
    assert records[0]["updated"]["w"] == 1.0 - 0.1 * (2 * 3.0 * (1.0 * 3.0 - 6.0))
    assert len(records) == 3


def test_version_and_help(run_cli):
    status, out, _ = run_cli("--version")
    assert status == 0 and out.startswith("tutor, version ")
    status, out, _ = run_cli("step", "--help")
    assert status == 0 and "--format" in out and "seed" in out


def test_list_names_the_shipped_problems(run_cli):
    status, out, _ = run_cli("list")
    assert status == 0
    ids = [line.split()[0] for line in out.splitlines()]
    assert {"seed-linear", "seed-w", "seed-x", "seed-variable"} <= set(ids)


BAD_INPUTS = {
    "unknown problem id": (["step", "seed-ww"], "Did you mean 'seed-w'?"),
    "missing file": (["step", "nope.toml"], "no such file"),
    "unknown wrt": (["step", "seed-w", "--wrt", "z"], "'z' is not a symbol"),
    "zero learning rate": (["step", "seed-w", "--lr", "0"], "positive"),
    "negative learning rate": (["step", "seed-w", "--lr", "-1"], "positive"),
    "nan learning rate": (["step", "seed-w", "--lr", "nan"], "positive"),
    "negative steps": (["step", "seed-w", "--steps", "-1"], "--steps"),
    "fractional steps": (["step", "seed-w", "--steps", "1.5"], "--steps"),
    "set without equals": (["step", "seed-w", "--set", "w0.5"], "SYM=VALUE"),
    "set non-number": (["step", "seed-w", "--set", "w=abc"], "SYM=VALUE"),
    "set unknown symbol": (["step", "seed-w", "--set", "q=1"], "'q' is not a symbol"),
    "bad format": (["step", "seed-w", "--format", "html"], "--format"),
    "bad variables": (["step", "seed-w", "--variables", "var"], "--variables"),
    "unknown option": (["step", "seed-w", "--lrr", "1"], "--lrr"),
    "missing problem": (["step"], "PROBLEM"),
    "show unknown wrt": (["show", "seed-w", "--wrt", "q"], "'q' is not a symbol"),
    "all with json": (["step", "seed-w", "--all", "--format", "json"], "--all"),
    "all with seed": (["step", "seed-w", "--all", "--format", "seed"], "--all"),
}


@pytest.mark.parametrize("args, expected", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line(refuses, args, expected):
    refuses(args, expected)


def test_show_code_prints_the_notebooks_cell(run_cli):
    status, out, _ = run_cli("step", "seed-variable", "--show-code", "--format", "seed")
    assert status == 0
    assert "w = tf.Variable(0.5)\n" in out
    assert "w.assign_sub(0.01 * grad_w)\n" in out
    assert "loss = (w * x - y) ** 2\n" in out


@pytest.mark.slow
def test_generated_code_takes_the_same_update_as_the_tutor(run_cli, tmp_path):
    import subprocess
    import sys

    from tutor import load
    from tutor.render.code import update_code

    for problem in ("seed-w", "seed-variable"):
        script = tmp_path / f"{problem}.py"
        script.write_text(update_code(load(problem)))
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True
        )
        assert done.stdout == "Loss = 20.25,  w = 00.77 \n"


def test_interactive_refuses_without_a_terminal(run_cli):
    status, out, err = run_cli("step", "seed-w", "--interactive")
    assert status == 2
    assert "needs a terminal" in err


def test_show_json_gives_result_latex_and_named_steps(run_cli):
    import sympy

    from tutor.functions import FUNCTIONS

    for problem in ("seed-w", "logistic", "huber"):
        status, out, _ = run_cli("show", problem, "--format", "json")
        doc = json.loads(out)
        assert status == 0
        for sym, partial in doc["partials"].items():
            names = {n: f for n, (f, _) in FUNCTIONS.items() if isinstance(f, type)}
            symbols = {s: sympy.Symbol(s, real=True) for s in ("w", "x", "y", "b", "d")}
            # The result reads back into the same SymPy expression.
            from tutor import derive, load

            expected = derive(load(problem)).partial(sym).result
            assert sympy.sympify(partial["result"], locals={**names, **symbols}) == expected
            assert partial["latex"]
            assert partial["steps"] and all(
                {"rule", "text", "latex"} <= set(step) for step in partial["steps"]
            )
    status, out, _ = run_cli("show", "seed-w", "--format", "json")
    rules = [s["rule"] for s in json.loads(out)["partials"]["w"]["steps"]]
    assert rules == ["chain", "simplify"]


def test_show_seed_w_reads_as_a_teacher_writes_it(run_cli):
    status, out, _ = run_cli("show", "seed-w", "--format", "plain")
    assert status == 0
    assert "[chain]" in out and "u = wx − y" in out
    assert "[power]" in out
    assert "[held constant] ∂/∂w[x] = 0" in out
    assert "∂L/∂w = 2x(wx − y)" in out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_a_reader_that_stops_early_ends_the_run_quietly_with_0(fmt):
    """As with '| head -1': the first line is read, then the pipe is closed."""
    command = [sys.executable, "-m", "tutor", "step", "seed-x", "--steps", "5000"]
    with subprocess.Popen(
        [*command, "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as done:
        assert done.stdout.readline()
        done.stdout.close()
        err = done.stderr.read()
    assert done.returncode == 0
    assert err == b""
