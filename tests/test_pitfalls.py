"""The GradientTape pitfall lab: every pitfall run live against the installed TensorFlow.

Each test states what TensorFlow does today (None, an exception, a warning, NaN)
and what SymPy's gradient is, computed here by hand from the seed's loss
L = (w·x − y)², ∂L/∂w = 2x(wx − y), ∂L/∂x = 2w(wx − y), ∂²L/∂w² = 2x².
A TensorFlow upgrade that changes a behaviour fails here, and the lab's text
is then updated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tutor import load
from tutor.pitfalls import PITFALLS, Lab, find, run
from tutor.problem import shipped_ids
from tutor.render import pitfalls as render
from tutor.verify import gamma

U32 = 2.0**-24

needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
    reason="TeX Live, latexmk and poppler-utils are installed by .ci/run",
)


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def bound_seed_w(w: float, x: float, y: float) -> float:
    """The forward error bound of TF's float32 ∂L/∂w of (w·x − y)²: γ_3·S, S = 2|x|(|w||x| + |y|).

    Three roundings on the path (w·x, − y, the products of the backward pass
    by 2 and by x are exact or counted in k = 3, see tutor.verify's doctest).
    """
    return gamma(3, U32) * 2 * abs(x) * (abs(w) * abs(x) + abs(y))


@pytest.fixture(scope="module")
def labs() -> dict[str, Lab]:
    return {p.name: run(p.name) for p in PITFALLS}


def tensor(value: float, dtype: str = "float32") -> str:
    return f"tf.Tensor({value!r}, shape=(), dtype={dtype})"


def test_catalogue_has_at_least_the_eleven_pitfalls_of_the_issue():
    names = {p.name for p in PITFALLS}
    assert len(names) == len(PITFALLS) >= 11
    assert {
        "unwatched-tensor",
        "integer-dtype",
        "reassigned-variable",
        "numpy-inside-tape",
        "non-persistent-tape",
        "gradient-outside-outer-tape",
        "non-scalar-target",
        "unconnected-source",
        "non-differentiable-op",
        "mixed-dtypes",
        "sqrt-at-zero",
    } <= names


def test_unwatched_tensor_gives_none_and_watching_gives_sympys_gradient(labs):
    lab = labs["unwatched-tensor"]
    assert "tape.watch" not in lab.broken_code and "tape.watch(w)" in lab.fixed_code
    assert lab.broken.lines() == ["grad_w = None"] and not lab.broken.error
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}"]  # 2·3·(0.5·3 − 6)
    assert lab.agrees


def test_integer_dtype_shows_none_with_tensorflows_own_warning_beside_minus_18(labs):
    lab = labs["integer-dtype"]
    assert "w = tf.convert_to_tensor(1)\n" in lab.broken_code
    assert lab.broken.lines() == ["grad_w = None"]
    assert lab.broken.warnings == (
        "The dtype of the watched tensor must be floating (e.g. tf.float32), got tf.int32",
    )
    (grad,) = [e for e in lab.expected if e.label == "grad_w"]
    assert grad.value == 2 * 3 * (1 * 3 - 6) == -18
    assert "w = tf.convert_to_tensor(1.0)\n" in lab.fixed_code
    assert lab.fixed.lines() == [f"grad_w = {tensor(-18.0)}"] and not lab.fixed.warnings


def test_integer_warning_is_shown_on_every_run_not_only_tensorflows_first_five():
    for _ in range(7):
        assert run("integer-dtype").broken.warnings


def test_reassigned_variable_turns_into_a_tensor_with_none_on_the_next_step(labs):
    lab = labs["reassigned-variable"]
    assert "w = w - 0.01 * grad_w" in lab.broken_code
    assert lab.broken.lines() == [f"step 1: grad_w = {tensor(-27.0)}", "step 2: grad_w = None"]
    assert (
        lab.broken.error == "TypeError: unsupported operand type(s) for *: 'float' and 'NoneType'"
    )
    assert "w.assign_sub(0.01 * grad_w)" in lab.fixed_code
    # The Variable after one update, in float32 as assign_sub computes it.
    w1 = np.float32(0.5) - np.float32(0.01) * np.float32(-27.0)
    exact = 2 * 3 * (float(w1) * 3 - 6)
    second = lab.fixed.result("step 2: grad_w")
    assert second is not None and isinstance(second.value, float)
    assert abs(second.value - exact) <= bound_seed_w(float(w1), 3, 6)
    assert second.shown == tensor(-22.14)


def test_numpy_inside_the_tape_cuts_the_path(labs):
    lab = labs["numpy-inside-tape"]
    assert "w_value = w.numpy()" in lab.broken_code
    assert lab.broken.lines() == ["grad_w = None"]
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}"]


def test_non_persistent_tape_raises_on_the_second_gradient(labs):
    lab = labs["non-persistent-tape"]
    assert lab.broken.lines() == [f"grad_w = {tensor(-27.0)}"]
    assert lab.broken.error == (
        "RuntimeError: A non-persistent GradientTape can only be used to compute one set "
        "of gradients (or jacobians)"
    )
    assert "persistent=True" in lab.fixed_code
    # ∂L/∂x = 2w(wx − y) = 2·0.5·(1.5 − 6)
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}", f"grad_x = {tensor(-4.5)}"]


def test_second_derivative_is_none_when_the_gradient_is_taken_after_the_outer_tape(labs):
    lab = labs["gradient-outside-outer-tape"]
    assert lab.broken.lines() == [f"grad_w = {tensor(-27.0)}", "d2loss_dw2 = None"]
    assert "\n    grad_w = inner.gradient(loss, w)\n" in lab.fixed_code
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}", f"d2loss_dw2 = {tensor(18.0)}"]


def test_second_derivative_of_a_linear_loss_is_zero_not_none():
    lab = run("gradient-outside-outer-tape", load("seed-linear"))
    assert lab.fixed.lines()[-1] == f"d2loss_dx2 = {tensor(0.0)}"
    assert "UnconnectedGradients.ZERO" in lab.fixed_code and lab.agrees


def test_non_scalar_target_sums_the_losses(labs):
    lab = labs["non-scalar-target"]
    assert "x = tf.constant([3.0, 4.0, 5.0])" in lab.broken_code
    # Per row 2x(0.5x − 6): −27, −32, −35; their sum and their mean.
    assert lab.broken.lines()[-1] == f"grad_w = {tensor(-94.0)}"
    fixed = lab.fixed.result("grad_w")
    assert fixed is not None and isinstance(fixed.value, float)
    # reduce_mean: three float32 gradients summed (2 roundings) and divided by 3 (one
    # more, 1/3 is not a float32): γ_k over the sum of the rows' bounds and magnitudes.
    magnitude = sum(2 * x * (0.5 * x + 6) for x in (3, 4, 5)) / 3
    assert abs(fixed.value - (-94 / 3)) <= gamma(3 + 3, U32) * magnitude
    assert lab.agrees


def test_unconnected_source_is_none_and_zero_on_request(labs):
    lab = labs["unconnected-source"]
    assert lab.broken.lines() == [f"grad_w = {tensor(-27.0)}", "grad_b = None"]
    assert "unconnected_gradients=tf.UnconnectedGradients.ZERO" in lab.fixed_code
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}", f"grad_b = {tensor(0.0)}"]


def test_round_and_cast_to_int_have_no_gradient(labs):
    lab = labs["non-differentiable-op"]
    assert "tf.round(w)" in lab.broken_code and "tf.cast(w, tf.int32)" in lab.broken_code
    assert lab.broken.lines() == ["grad_round = None", "grad_cast = None"]
    # TF rounds half to even: round(0.5) = 0.
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0)}", f"rounded_w = {tensor(0.0)}"]


def test_float32_meeting_float64_raises(labs):
    lab = labs["mixed-dtypes"]
    assert lab.broken.lines() == []
    assert lab.broken.error.startswith(
        "InvalidArgumentError: cannot compute Mul as input #1(zero-based) was expected to be "
        "a float tensor but is a double tensor"
    )
    assert lab.fixed.lines() == [f"grad_w = {tensor(-27.0, 'float64')}"]


def test_sqrt_at_zero_is_nan_abs_is_zero_and_sympy_says_undefined(labs):
    lab = labs["sqrt-at-zero"]
    assert lab.point["w"] == 2.0  # y/x: the loss is exactly 0
    assert lab.broken.lines() == [
        f"loss = {tensor(0.0)}",
        f"grad_root = {tensor(float('nan'))}",
        f"grad_abs = {tensor(0.0)}",
    ]
    undefined = {e.label: e for e in lab.expected if e.value is None}
    assert "grad_root" in undefined and "−3 and 3" in undefined["grad_root"].text
    # The safe form: the subgradient 0 at the kink, x·sign(wx − y) = −3 at w = 0.5.
    assert lab.fixed.lines() == [
        f"grad_root (w = 2.0) = {tensor(0.0)}",
        f"grad_root (w = 0.5) = {tensor(-3.0)}",
    ]
    assert [a.label for a in lab.agreement] == ["grad_root (w = 0.5)"] and lab.agrees


def _run_scripts(tmp_path: Path, scripts: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Run each script in its own fresh Python, two at a time (the machine has two cores)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    env.pop("PYTHONPATH", None)  # the scripts need TensorFlow only, not the tutor
    done: dict[str, subprocess.CompletedProcess] = {}
    names = list(scripts)
    for i in range(0, len(names), 2):
        running = {}
        for name in names[i : i + 2]:
            path = tmp_path / f"{name}.py"
            path.write_text(scripts[name])
            running[name] = subprocess.Popen(
                [sys.executable, str(path)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for name, process in running.items():
            out, err = process.communicate(timeout=300)
            done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def test_every_fixed_code_run_as_printed_in_a_fresh_python_gives_sympys_gradient(labs, tmp_path):
    done = _run_scripts(tmp_path, {name: lab.fixed_code for name, lab in labs.items()})
    for name, lab in labs.items():
        result = done[name]
        assert result.returncode == 0, (name, result.stderr[-2000:])
        # The script prints exactly what the live run recorded ...
        assert result.stdout.splitlines() == lab.fixed.lines(), name
        # ... and those values agree with SymPy wherever SymPy's gradient is defined.
        assert lab.agrees, (name, lab.agreement)
        defined = [e for e in lab.expected if e.value is not None and lab.fixed.result(e.label)]
        assert defined, name
        for e in defined:
            assert any(a.label == e.label and a.agrees for a in lab.agreement), (name, e)


_DRIVER = """
import contextlib, io, json, logging, runpy, sys
import tensorflow as tf

records = []
for path in sys.argv[1:]:
    out, log = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log)
    tf.get_logger().addHandler(handler)
    error = ""
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(path, run_name="__main__")
        except Exception as exc:
            error = type(exc).__name__ + ": " + " ".join(str(exc).split())
    tf.get_logger().removeHandler(handler)
    records.append({"stdout": out.getvalue(), "error": error, "log": log.getvalue()})
print(json.dumps(records))
"""


def test_every_broken_code_does_what_the_live_run_says(labs, tmp_path):
    # One fresh Python runs every script in turn (each warning is TF's first there).
    paths = []
    for name, lab in labs.items():
        path = tmp_path / f"{name}.py"
        path.write_text(lab.broken_code)
        paths.append(str(path))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, *paths],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    records = json.loads(done.stdout.splitlines()[-1])
    for (name, lab), record in zip(labs.items(), records, strict=True):
        assert record["stdout"].splitlines() == lab.broken.lines(), name
        assert record["error"].removesuffix(" name:") == lab.broken.error, name
        for warning in lab.broken.warnings:
            assert warning in record["log"], name


def test_pitfalls_follow_the_problems_loss_and_data():
    lab = run("unwatched-tensor", load("least-squares"))
    assert "tf.reduce_mean(" in lab.broken_code and lab.broken.lines() == ["grad_w = None"]
    assert lab.agrees and not lab.note


def test_a_pitfall_the_loss_cannot_show_falls_back_to_the_seed_and_says_why():
    lab = run("sqrt-at-zero", load("logistic"))
    assert lab.problem.id == "seed-w"
    assert lab.note.startswith("logistic's loss ") and "seed-w" in lab.note


def test_unknown_pitfall_name_suggests_the_closest():
    with pytest.raises(Exception, match="Did you mean 'integer-dtype'"):
        find("integer-dtyp")


def test_listing_does_not_import_tensorflow():
    code = (
        "import sys; from tutor.cli import main; status = main(['pitfalls']); "
        "print(status, 'tensorflow' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "0 False"
    assert len(done.stdout.splitlines()) == len(PITFALLS)


def test_cli_integer_dtype_plain(run_cli):
    status, out, err = run_cli("pitfalls", "integer-dtype")
    assert status == 0, err
    assert "    grad_w = None\n" in out
    assert (
        "    TensorFlow warned: The dtype of the watched tensor must be floating "
        "(e.g. tf.float32), got tf.int32\n" in out
    )
    assert "    grad_w: ∂L/∂w = 2x(wx − y) = 2·3·(1·3 − 6) = −18\n" in out
    assert "    grad_w = tf.Tensor(-18.0, shape=(), dtype=float32)\n" in out
    assert "grad_w: −18 agrees with SymPy's −18" in out


def test_cli_json_has_code_observed_expected_and_fix(run_cli):
    status, out, err = run_cli("pitfalls", "integer-dtype", "seed-w", "--format", "json")
    assert status == 0, err
    (line,) = out.splitlines()
    data = json.loads(line)
    assert data["pitfall"] == "integer-dtype" and data["problem"] == "seed-w"
    assert data["broken"]["observed"] == {"grad_w": None}
    assert data["broken"]["warnings"][0].startswith("The dtype of the watched tensor")
    assert data["expected"]["grad_w"]["value"] == -18.0
    assert data["fixed"]["observed"] == {"grad_w": -18.0}
    assert data["gradient"]["grad_w"] == {
        "symbolic": -18.0,
        "autodiff": -18.0,
        "difference": 0.0,
        "bound": data["gradient"]["grad_w"]["bound"],
        "agrees": True,
    }
    assert "tape.watch(w)" in data["fixed"]["code"] and data["fix"]


def test_cli_json_writes_nan_as_a_string(run_cli):
    status, out, _ = run_cli("pitfalls", "sqrt-at-zero", "--problem", "seed-w", "--format", "json")
    assert status == 0
    assert json.loads(out)["broken"]["observed"]["grad_root"] == "nan"


def test_cli_listing_json(run_cli):
    status, out, _ = run_cli("pitfalls", "--format", "json")
    assert status == 0
    assert [p["name"] for p in json.loads(out)["pitfalls"]] == [p.name for p in PITFALLS]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["pitfalls", "integer-dtyp"], "Did you mean 'integer-dtype'?", id="typo"),
        pytest.param(["pitfalls", "nothing-like-it"], "no pitfall 'nothing-like-it'", id="unknown"),
        pytest.param(["pitfalls", "integer-dtype", "nope"], "'nope'", id="bad-problem"),
        pytest.param(
            ["pitfalls", "integer-dtype", "seed-w", "--problem", "seed-x"],
            "given twice",
            id="problem-twice",
        ),
        pytest.param(["pitfalls", "all", "-o", "x.pdf"], "ending in .tex", id="o-not-tex"),
        pytest.param(["pitfalls", "all", "--pdf"], "add -o FILE.tex", id="pdf-without-o"),
        pytest.param(
            ["pitfalls", "all", "-o", "x.tex", "--format", "json"], "does not go", id="o-json"
        ),
        pytest.param(["pitfalls", "--problem", "nope"], "'nope'", id="listing-bad-problem"),
    ],
)
def test_cli_refuses_bad_input(refuses, args, expected):
    refuses(args, expected)


def test_latex_document_escapes_prose_and_keeps_code_verbatim(labs):
    tex = render.document([labs["integer-dtype"]])
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert "\\begin{tfbroken}\nimport tensorflow as tf\n" in tex
    assert (
        "\\item \\texttt{grad\\_\\allowbreak{}w}: $\\partial$L/$\\partial$w =\\allowbreak{} 2x(wx "
        "$-$ y) =\\allowbreak{} 2\\textperiodcentered{}3\\textperiodcentered{}"
        "(1\\textperiodcentered{}3 $-$ 6) =\\allowbreak{} $-$18\n" in tex
    )


@needs_tex
def test_all_pitfalls_build_into_a_pdf(run_cli, tmp_path):
    target = tmp_path / "pitfalls.tex"
    status, out, err = run_cli("pitfalls", "all", "-o", str(target), "--pdf")
    assert status == 0, err
    assert out == f"wrote {target}\nwrote {target.with_suffix('.pdf')}\n"
    text = pdf_text(target.with_suffix(".pdf"))
    for p in PITFALLS:
        assert f"{p.name}: " in text  # typewriter: no ligatures to lose
    assert "got tf.int32" in text and "grad_w = None" in text
    assert "A non-persistent GradientTape can only be used" in text


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_pitfall_on_other_losses_runs_and_its_fix_agrees_with_sympy(problem_id):
    for p in PITFALLS:
        lab = run(p.name, load(problem_id))
        assert lab.agrees, (p.name, lab.agreement)
        assert lab.broken.lines() != lab.fixed.lines() or lab.broken.error, p.name


def test_a_symbol_named_like_the_codes_own_variables_falls_back_to_the_seed():
    from tutor.problem import loads

    problem = loads(
        'title = "t"\nloss = "(w*tape - y)**2"\n[values]\ntape = 3.0\ny = 6.0\nw = 0.5\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 2\n'
    )
    lab = run("unwatched-tensor", problem)
    assert lab.problem.id == "seed-w" and "'tape'" in lab.note


def test_rich_panel_shows_the_same_content_as_plain_text(labs):
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(render.lab_rich(labs["integer-dtype"]))
    shown = buffer.getvalue()
    assert "integer-dtype: An integer dtype" in shown
    assert "│ grad_w = None" in shown
    assert "TensorFlow warned: The dtype of the watched tensor must be floating" in shown
    assert "grad_w: −18 agrees with SymPy's −18" in shown


def test_listing_is_one_line_per_pitfall_name_then_summary():
    lines = render.listing(PITFALLS).splitlines()
    width = max(len(p.name) for p in PITFALLS)
    assert lines == [f"{p.name:<{width}}  {p.summary}" for p in PITFALLS]
    assert lines[1] == (
        "integer-dtype                "
        "an integer tensor is watched with a warning, and its gradient is None"
    )
