"""Handouts: LaTeX from the same data as the terminal, built into PDFs by a real TeX."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import strategies
from hypothesis import HealthCheck, given, settings

from tutor import load
from tutor._numbers import number
from tutor.handout import build
from tutor.render.latex import escape
from tutor.variants import draw

needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
    reason="TeX Live, latexmk and poppler-utils are installed by .ci/run",
)


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


@needs_tex
def test_seed_w_handout_holds_derivation_updates_gradients_and_plot(run_cli, tmp_path):
    target = tmp_path / "seed-w.tex"
    status, out, err = run_cli("handout", "seed-w", "-o", str(target), "--pdf")
    assert status == 0, err
    text = pdf_text(target.with_suffix(".pdf"))
    assert "Derivation" in text and "chain" in text and "power" in text
    golden = (Path(__file__).parent / "golden" / "seed-w.txt").read_text().splitlines()
    for line in golden:
        # Every update of the notebook, in its two decimals, in the table's last column.
        value = f"{float(line.split('w = ')[1]):.2f}"
        assert re.search(rf"\s{re.escape(value)}\s*$", text, re.M), value
    assert "SymPy" in text and "TF" in text
    assert "−22.14" in text  # both gradient columns of update 2, with a true minus
    assert "update k" in text  # the pgfplots axis label: the plot was drawn
    assert "tape.watch(w)" in text


HOSTILE = [
    r"\input{/etc/passwd}",
    r"\immediate\write18{touch MARKER}",
    r"\def\x{\x}\x",
    r"\end{document}",
    r"^^5cinput{/etc/hostname}",
    "# $ % & ~ _ ^ \\ { } < > |",
    "\x1b[31mred\x1b[0m \x07",
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_escape_leaves_no_tex_command(hostile):
    escaped = escape(hostile)
    # After escaping, every backslash starts one of our literal-text commands.
    commands = set(re.findall(r"\\([A-Za-z]+)", escaped))
    assert commands <= {
        "textbackslash",
        "textasciicircum",
        "textasciitilde",
        "textless",
        "textgreater",
        "textbar",
    }
    assert "\x1b" not in escaped and "\x07" not in escaped


@needs_tex
def test_hostile_prose_is_typeset_as_literal_text(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    title = " ".join(HOSTILE[:5])
    problem = tmp_path / "hostile.toml"
    body = Path(load("seed-w").source).read_text().split("loss =", 1)[1]
    # TOML literal strings (triple single quotes) take backslashes as they are.
    quote = "'" * 3
    problem.write_text(
        f"title = {quote}{title}{quote}\nsummary = {quote}{HOSTILE[5]}{quote}\nloss =" + body
    )
    status, _, err = run_cli("handout", str(problem), "-o", "out.tex", "--pdf")
    assert status == 0, err
    text = pdf_text(tmp_path / "out.pdf")
    assert r"\input{/etc/passwd}" in text.replace("\n", " ")
    assert r"\end{document}" in text
    assert not (tmp_path / "MARKER").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.toml", "out.pdf", "out.tex"]


def test_variants_repeat_for_a_seed_and_differ_across_seeds():
    problem = load("seed-w")
    first = [v.problem.values for v in draw(problem, 30, 7)]
    assert first == [v.problem.values for v in draw(problem, 30, 7)]
    assert first != [v.problem.values for v in draw(problem, 30, 8)]
    assert len({tuple(v.items()) for v in first}) > 20


def test_variants_converge_at_the_problems_rate():
    # For (wx − y)², descent at η converges iff |1 − 2ηx²| < 1, i.e. 0 < x² < 1/η.
    problem = load("seed-w")
    for variant in draw(problem, 30, 7):
        x = variant.problem.values["x"]
        assert 0 < x * x < 1 / problem.learning_rate
        assert all(v == round(v, 1) for v in variant.problem.values.values())


def test_answer_key_matches_an_independent_computation(backend):
    """The key's updates against w ← w − η·2x(wx − y) computed in float64.

    The tutor computes in float32: each update rounds 5 times on terms of size
    at most M = |w| + η·2|x|(|w||x| + |y|), and the error of update j is carried
    through later updates multiplied by the contraction |1 − 2ηx²| < 1, so after
    k updates the difference is at most k·γ₅·M_max.
    """
    problem = load("seed-w")
    handout = build([problem], backend, variants=30, seed=7, answers=True)
    u = 2.0**-24
    gamma5 = 5 * u / (1 - 5 * u)
    eta = problem.learning_rate
    for exercise in handout.exercises:
        x, y, w = (exercise.variant.problem.values[k] for k in "xyw")
        updates = exercise.key.updates
        assert len(updates) == 3
        ref = np.float64(w)
        m = 0.0
        for k, update in enumerate(updates, 1):
            m = max(m, abs(ref) + eta * 2 * abs(x) * (abs(ref) * abs(x) + abs(y)))
            g = 2 * x * (ref * x - y)
            assert abs(update.symbolic["w"] - g) <= 2 * k * gamma5 * m * 2 * x * x + 1e-300
            ref = ref - eta * g
            assert abs(update.updated["w"] - ref) <= k * gamma5 * m


def test_missing_tex_exits_3_and_still_writes_the_tex(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status, out, err = run_cli("handout", "seed-w", "-o", "h.tex", "--pdf")
    assert status == 3
    assert "apt-get install" in err and "latexmk" in err
    assert (tmp_path / "h.tex").is_file() and not (tmp_path / "h.pdf").exists()


@needs_tex
def test_thirty_variants_with_answers_build(run_cli, tmp_path):
    target = tmp_path / "class.tex"
    status, _, err = run_cli(
        "handout",
        "seed-w",
        "-o",
        str(target),
        "--variants",
        "30",
        "--seed",
        "7",
        "--answers",
        "--pdf",
    )
    assert status == 0, err
    text = pdf_text(target.with_suffix(".pdf"))
    assert "Variant 30 of 30 (seed 7)" in text
    assert "Answer key" in text


def test_handout_bad_input_exits_2(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args, expected in (
        (["handout", "seed-w", "--answers"], "--variants"),
        (["handout", "seed-w", "-o", "x.pdf"], ".tex"),
        (["handout", "seed-w", "--template", "missing.j2"], "--template"),
    ):
        status, out, err = run_cli(*args)
        assert status == 2 and expected in err, err
    assert list(tmp_path.iterdir()) == []


# Variants: numbers a student can read, the same file for the same seed, a key that is the
# tutor's own descent, and the key as JSON Lines.


def _key_lines(run_cli, *args: str) -> list[dict]:
    status, out, err = run_cli("handout", *args, "--format", "json")
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_the_same_seed_writes_the_same_bytes_and_shows_the_numbers(run_cli, tmp_path):
    outputs = []
    for name in ("a", "b"):
        target = tmp_path / f"{name}.tex"
        args = ["seed-w", "-o", str(target), "--variants", "3", "--seed", "3", "--answers"]
        status, out, err = run_cli("handout", *args)
        assert status == 0, err
        assert out.splitlines() == [f"wrote {target}", f"wrote {tmp_path / f'{name}-key.tex'}"]
        outputs.append((target.read_bytes(), (tmp_path / f"{name}-key.tex").read_bytes()))
    assert outputs[0] == outputs[1]
    sheets, key = (b.decode() for b in outputs[0])
    assert "built-in method" not in sheets + key
    for variant in draw(load("seed-w"), 3, 3):
        shown = ",\\ ".join(f"{n} = {number(v)}" for n, v in variant.problem.values.items())
        assert f"Starting values: ${shown}$" in sheets
        assert f"Starting values: ${shown}$" in key
    assert "Variant 1 of 3" in sheets and "Variant 1 of 3" not in key
    assert "Answer key" in key


@needs_tex
def test_variant_pdfs_show_each_variants_starting_values_and_the_key_apart(run_cli, tmp_path):
    target = tmp_path / "v.tex"
    args = ["seed-w", "-o", str(target), "--variants", "3", "--seed", "3", "--answers", "--pdf"]
    status, _, err = run_cli("handout", *args)
    assert status == 0, err
    sheets = pdf_text(target.with_suffix(".pdf"))
    key = pdf_text(tmp_path / "v-key.pdf")
    for variant in draw(load("seed-w"), 3, 3):
        x = number(variant.problem.values["x"]).replace("-", "−")
        assert re.search(rf"Starting values: x = {re.escape(x)}, y = ", sheets)
        assert re.search(rf"Starting values: x = {re.escape(x)}, y = ", key)
    assert key.count("Variant") == 3 and "Variant 1 of 3" not in key


# run_cli reads (and so empties) the captured output on every call: safe to share.
@given(seed=strategies.variant_seeds())
@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_json_key_is_what_tutor_step_computes_for_each_variant(run_cli, seed):
    records = _key_lines(run_cli, "seed-w", "--variants", "2", "--seed", str(seed))
    assert [r["variant"] for r in records] == [1, 2]
    for record in records:
        assert record["format"] == "tutor-key/1"
        assert record["seed"] == seed and record["problem"] == "seed-w"
        sets = [f"--set={n}={v!r}" for n, v in record["values"].items()]
        status, out, _ = run_cli("step", "seed-w", *sets, "--steps", "3", "--format", "json")
        updates = [json.loads(line) for line in out.splitlines()[:-1]]
        assert record["updates"] == updates
        assert record["values"] == updates[0]["values"]
        assert record["learning_rate"] == load("seed-w").learning_rate


def test_the_json_key_goes_to_a_jsonl_file_and_needs_variants(run_cli, refuses, tmp_path):
    target = tmp_path / "key.jsonl"
    status, out, _ = run_cli(
        "handout", "seed-w", "--variants", "2", "--seed", "1", "--format", "json", "-o", str(target)
    )
    assert status == 0 and out == f"wrote {target}\n"
    lines = target.read_text().splitlines()
    assert [json.loads(li)["variant"] for li in lines] == [1, 2]
    target.unlink()
    refuses(["handout", "seed-w", "--format", "json"], "--variants")
    refuses(["handout", "seed-w", "--variants", "2", "--format", "json", "-o", "k.tex"], ".jsonl")
    refuses(["handout", "seed-w", "--variants", "2", "--format", "json", "--pdf"], "--pdf")


# Data problems: the rows a student needs, and the Hessian of the mean.


def test_a_data_handout_shows_its_rows_and_its_mean_hessian(run_cli, tmp_path):
    """least-squares: H = (1/n) Σ [[2xᵢ², 2xᵢ], [2xᵢ, 2]], computed here with NumPy."""
    problem = load("least-squares")
    target = tmp_path / "ls.tex"
    status, _, err = run_cli("handout", "least-squares", "-o", str(target))
    assert status == 0, err
    tex = target.read_text()
    x, y = (np.array(problem.data[k]) for k in ("x", "y"))
    assert "The data: 5 rows" in tex
    for i, (xi, yi) in enumerate(zip(x, y, strict=True), 1):
        assert f"{i} & {number(xi, 6)} & {number(yi, 6)} \\\\" in tex
    mean = np.array([[np.mean(2 * x * x), np.mean(2 * x)], [np.mean(2 * x), 2.0]])
    shown = " \\\\ ".join(" & ".join(number(v) for v in row) for row in mean)
    assert f"\\begin{{bmatrix}}{shown}\\end{{bmatrix}}" in tex


def test_a_long_data_table_is_capped_and_counted(run_cli, tmp_path):
    from tutor.render.handout import DATA_ROWS

    rows = DATA_ROWS + 70
    xs = ", ".join(f"{i / 10!r}" for i in range(rows))
    ys = ", ".join(f"{2 * i / 10 + 1!r}" for i in range(rows))
    path = tmp_path / "many.toml"
    path.write_text(
        f'title = "many"\nloss = "(w*x - y)**2"\n[values]\nw = 0.0\n[data]\nx = [{xs}]\n'
        f'y = [{ys}]\n[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 3\n'
    )
    status, _, err = run_cli("handout", str(path), "-o", str(tmp_path / "many.tex"))
    assert status == 0, err
    tex = (tmp_path / "many.tex").read_text()
    assert f"The data: {rows} rows" in tex
    assert f"{DATA_ROWS} & " in tex and f"{DATA_ROWS + 1} & " not in tex
    assert "(70 more rows)" in tex
