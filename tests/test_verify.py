"""SymPy's gradient and TensorFlow's agree on random points: the Hypothesis suite, the
proof that it can fail, batch mode and ``tutor verify``.

Every comparison uses the bound of ``tutor.verify.bound`` (γ_k·S plus the floor for flushed
subnormals), derived from the floating-point arithmetic TF performs; no test picks a
tolerance of its own.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import GRADIENT_CONFIGS, gradient_configs, problem_points

from tutor import derive, load, loads
from tutor.problem import shipped_ids
from tutor.render.verify import render
from tutor.verify import (
    FLOAT32,
    VERDICTS,
    batch,
    probe,
    search,
    tensorflow_batch_gradient,
    tensorflow_gradient,
    uniform_points,
)

SHIPPED_PARTIALS = [(pid, sym) for pid in shipped_ids() for sym in load(pid).wrt]


@functools.cache
def probes(problem_id: str, symbol: str) -> dict[tuple[str, str], object]:
    """A probe of the partial in each dtype and style (derived once per test run)."""
    problem = load(problem_id)
    derivation = derive(problem, [symbol])
    return {
        (dtype, style): probe(problem, symbol, derivation=derivation, dtype=dtype, variables=style)
        for dtype, style in GRADIENT_CONFIGS
    }


def explain(check, dtype: str, style: str) -> str:
    return (
        f"{dtype}/{style} at {check.values}: SymPy {check.symbolic!r}, TF {check.autodiff!r}, "
        f"error {check.error:.3g} > tolerance {check.bound:.3g} ({check.ratio:.3g}·u·S)"
    )


# The suite: every shipped partial, random points in its box, both dtypes and both styles.


@pytest.mark.slow
@pytest.mark.parametrize("problem_id, symbol", SHIPPED_PARTIALS)
@settings(deadline=None)  # every example runs TensorFlow four times; the first imports it
@given(data=st.data())
def test_tensorflow_agrees_with_sympy_on_every_shipped_partial(problem_id, symbol, data):
    point = data.draw(problem_points(load(problem_id)), label="point")
    for (dtype, style), p in probes(problem_id, symbol).items():
        check = p.check(point)
        assert check.verdict != "fail", explain(check, dtype, style)


#: Losses over every function a loss may call, with boxes that keep them defined:
#: (loss, {symbol: box}, wrt, extra TOML tables).
LOSSES = {
    "exp": ("exp(w*x) - y*w", {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]}, ["w", "x"], ""),
    "log-sqrt": ("log(w*w + x) + sqrt(x + w*w)", {"w": [-3, 3], "x": [0.5, 5]}, ["w", "x"], ""),
    "abs": ("abs(w*x - y)", {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]}, ["w"], ""),
    "sin-cos": ("sin(w*x) + cos(w - y)", {"w": [-5, 5], "x": [-5, 5], "y": [-5, 5]}, ["w"], ""),
    "tan": ("tan(w*x)", {"w": [-1, 1], "x": [-1, 1]}, ["w"], ""),
    "tanh": (
        "(tanh(w*x + b) - y)**2",
        {"w": [-3, 3], "b": [-3, 3], "x": [-3, 3], "y": [-1, 1]},
        ["w", "b"],
        "",
    ),
    "cross-entropy": (
        "-(y*log(sigmoid(w*x)) + (1 - y)*log(1 - sigmoid(w*x)))",
        {"w": [-3, 3], "x": [-3, 3], "y": [0, 1]},
        ["w"],
        "",
    ),
    "relu": ("relu(w*x - y)**2", {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]}, ["w"], ""),
    "softplus": ("softplus(w*x) - y*w*x", {"w": [-5, 5], "x": [-5, 5], "y": [0, 1]}, ["w"], ""),
    "max-min": (
        "max(w, x) + min(w*y, x)",
        {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]},
        ["w", "x"],
        "",
    ),
    "huber": (
        "huber(w*x - y, d)",
        {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]},
        ["w", "y"],
        "[constants]\nd = 1.5\n",
    ),
    "powers": (
        "w**3/(1 + x**2) + abs(w)**1.5 - 1/(2 + w**2)**2",
        {"w": [-3, 3], "x": [-3, 3]},
        ["w", "x"],
        "",
    ),
    "constants": (
        "(w*x - y)**2 + lam*w**2 + pi*E*w",
        {"w": [-3, 3], "x": [-3, 3], "y": [-3, 3]},
        ["w"],
        "[constants]\nlam = 0.1\n",
    ),
    "rows": (
        "(w*x + b - y)**2",
        {"w": [-3, 3], "b": [-3, 3]},
        ["w", "b"],
        "[data]\nx = [1.0, 2.0, 3.0, 0.1]\ny = [2.0, 4.1, 5.9, 0.3]\n",
    ),
    "logistic-rows": (
        "softplus(w*x + b) - y*(w*x + b)",
        {"w": [-3, 3], "b": [-3, 3]},
        ["w", "b"],
        "[data]\nx = [-2.0, 0.5, 1.0, 3.0]\ny = [0.0, 1.0, 0.0, 1.0]\n",
    ),
}


@functools.cache
def loss_problem(name: str):
    """The problem of LOSSES[name]: every symbol starts at 0.5, the box as listed."""
    loss, boxes, wrt, extra = LOSSES[name]
    values = "\n".join(f"{s} = 0.5" for s in boxes)
    verify = "\n".join(f"{s} = [{float(lo)!r}, {float(hi)!r}]" for s, (lo, hi) in boxes.items())
    text = (
        f'title = "{name}"\nloss = "{loss}"\n[values]\n{values}\n'
        f"[descent]\nwrt = {wrt}\nlearning_rate = 0.1\nsteps = 1\n{extra}[verify]\n{verify}\n"
    )
    return loads(text.replace("'", '"'), problem_id=name)


@functools.cache
def loss_probe(name: str, symbol: str, dtype: str, style: str):
    return probe(loss_problem(name), symbol, dtype=dtype, variables=style)


LOSS_PARTIALS = [(name, sym) for name, (_, _, wrt, _) in LOSSES.items() for sym in wrt]


@pytest.mark.parametrize("name, symbol", LOSS_PARTIALS)
@settings(deadline=None)
@given(data=st.data())
def test_tensorflow_agrees_with_sympy_for_every_function(name, symbol, data):
    """Every function of tutor.functions, data rows and constants: no point disagrees.

    Kinks, singular points and overflow are verdicts of their own, not failures.
    """
    point = data.draw(problem_points(loss_problem(name)), label="point")
    dtype, style = data.draw(gradient_configs(), label="config")
    check = loss_probe(name, symbol, dtype, style).check(point)
    assert check.verdict != "fail", explain(check, dtype, style)


# The suite can fail: a wrong gradient is caught and shrunk.


def wrong_derivation(problem, change):
    derivation = derive(problem)
    partials = tuple(dataclasses.replace(p, result=change(p.result)) for p in derivation.partials)
    return dataclasses.replace(derivation, partials=partials)


@pytest.mark.parametrize(
    "change", [lambda g: g / 2, lambda g: -g], ids=["dropped factor 2", "sign flip"]
)
def test_a_wrong_symbolic_gradient_is_caught_and_shrunk(change):
    """A wrong closed form disagrees wherever the gradient is not 0; Hypothesis shrinks the
    first disagreement to small whole numbers (here w = x = 1, y = 0, where 2x(wx − y) = 2)."""
    problem = load("seed-w")
    (report,) = search(problem, derivation=wrong_derivation(problem, change), examples=100, seed=0)
    c = report.counterexample
    assert not report.passed
    assert c is not None and c.verdict == "fail"
    assert all(v == int(v) and abs(v) <= 1 for v in c.values.values()), c.values
    assert c.error > c.bound
    assert "FAIL at" in render([report])


def test_a_wrong_tensorflow_gradient_is_caught_and_shrunk():
    def doubled(problem, values):
        return {k: 2 * g for k, g in tensorflow_gradient(problem, values).items()}

    (report,) = search(load("seed-x"), examples=100, seed=1, gradient=doubled)
    assert not report.passed
    assert all(v == int(v) and abs(v) <= 1 for v in report.counterexample.values.values())


def test_a_correct_search_reports_its_examples_and_a_worst_point_within_the_bound():
    """The worst error beyond the floor is at most γ_k·S (plus the mpmath reference's
    own error, below 2⁻¹⁹⁰·S): fewer than (k + 1)·u·S, as γ_k/u = k/(1 − k·u) < k + 1."""
    (report,) = search(load("seed-w"), examples=50, seed=3)
    assert report.passed and report.examples == 50
    assert report.k == 3 and report.u == FLOAT32.u
    assert report.worst.error <= report.worst.bound
    assert report.worst.ratio < report.k + 1
    (again,) = search(load("seed-w"), examples=50, seed=3)
    assert again.worst == report.worst


# Kinks, undefined points and overflow are reported, not counted.


def one_symbol_problem(loss: str, symbols: str = "wx"):
    return loss_problem_text(loss, symbols)


def loss_problem_text(loss: str, symbols: str):
    values = "\n".join(f"{s} = 0.5" for s in symbols)
    return loads(
        f'title = "t"\nloss = "{loss}"\n[values]\n{values}\n'
        f'[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )


def test_a_kink_reports_what_each_side_returns():
    """At w = x, TF's Maximum gives the whole gradient to its first argument; SymPy's
    derivative of Max is Heaviside(w − x), ½ at the tie."""
    check = probe(one_symbol_problem("max(w, x)"), "w").check({"w": 1.0, "x": 1.0})
    assert check.verdict == "kink"
    assert "max(w, x) at w = x" in check.note
    assert "SymPy gives 0.5" in check.note and "TF gives 1.0" in check.note


def test_a_kink_where_both_sides_agree_is_still_reported():
    """huber's derivative is continuous at |r| = d: at w·x − y = d = 1.5 SymPy and TF both
    give r·x = 2.25, and the point is named as a kink all the same."""
    check = loss_probe("huber", "w", "float32", "tensor").check({"w": 1.0, "x": 1.5, "y": 0.0})
    assert check.verdict == "kink"
    assert "|w*x - y| = d" in check.note and "agree within the bound" in check.note
    assert check.symbolic == check.autodiff == 2.25


def test_undefined_and_overflow_points_are_reported():
    undefined = probe(one_symbol_problem("log(w*x)"), "w").check({"w": 0.0, "x": 2.0})
    assert undefined.verdict == "undefined"
    assert "undefined" in undefined.note
    overflow = probe(one_symbol_problem("exp(w*x)"), "w").check({"w": 10.0, "x": 9.5})
    assert overflow.verdict == "overflow" and overflow.autodiff == float("inf")
    assert "exp(w*x)" in overflow.note


def test_points_outside_the_losss_domain_are_undefined_even_where_sympy_simplified():
    """w**0.25 − w**0.25 is undefined for w < 0 (TF: NaN), though SymPy's partial is 0."""
    check = probe(one_symbol_problem("w**0.25 - w**0.25", "w"), "w").check({"w": -2.0})
    assert check.verdict == "undefined"
    assert "has no real value" in check.note and "TF gives nan" in check.note


def test_kinks_are_counted_apart_in_a_search():
    (report,) = search(one_symbol_problem("max(w, x)"), examples=100, seed=0)
    assert report.passed
    assert report.counts.get("kink", 0) >= 1 and "kink" in report.specials


# Batch mode: N points, NumPy float64 against one batched tape.


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_mode_agrees_on_many_points(dtype):
    """Batch mode's tolerance adds the float64 reference's own bound γ_k(2⁻⁵³)·S_ref to
    γ_k·S: in float32 that is below 2⁻²⁵·u·S here (S_ref = S = 2|x|(|w||x| + |y|)), so the
    worst error stays under (k + 1)·u·S; in float64 both terms are of the same size."""
    reports = batch(load("seed-w"), size=20_000, dtype=dtype, seed=0)
    (report,) = reports
    assert report.passed and report.examples == 20_000 and report.mode == "batch"
    assert sum(report.counts.values()) == 20_000
    assert report.worst.error <= report.worst.bound
    if dtype == "float32":
        assert report.worst.ratio < report.k + 1


@pytest.mark.parametrize("problem_id", ["least-squares", "logistic", "huber", "tanh-neuron"])
def test_batch_mode_handles_rows_and_every_style(problem_id):
    for style in ("tensor", "variable"):
        assert all(r.passed for r in batch(load(problem_id), size=5_000, seed=1, variables=style))


def test_batched_gradients_equal_single_points(backend):
    """The (N,) tape computes each point with the same kernels as a single-point tape:
    the same bits (reductions over rows aside; seed-w has none)."""
    problem = load("seed-w")
    points = {"x": np.array([3.0, -1.5]), "y": np.array([6.0, 0.25]), "w": np.array([0.5, 7.0])}
    batched = tensorflow_batch_gradient(problem, points)["w"]
    single = [
        backend.gradient(problem, {k: float(v[i]) for k, v in points.items()})[1]["w"]
        for i in range(2)
    ]
    assert batched.tolist() == single


def test_batch_mode_catches_a_wrong_gradient():
    def flipped(problem, points):
        return {k: -g for k, g in tensorflow_batch_gradient(problem, points).items()}

    (report,) = batch(load("seed-w"), size=1000, seed=0, gradient=flipped)
    assert not report.passed and report.counterexample.verdict == "fail"


def test_batch_mode_reports_overflow_apart():
    """exp(w·x) overflows float32 (> 3.4e38) for w·x ≳ 88.7, about 1% of the box [-10, 10]²."""
    (report,) = batch(one_symbol_problem("exp(w*x)"), size=10_000, seed=0)
    assert report.passed
    assert report.counts.get("overflow", 0) > 0
    assert set(report.counts) <= set(VERDICTS)


# The command line.


def test_cli_verify_prints_the_bound_and_passes(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli("verify", "seed-w", "--examples", "30", "--seed", "1")
    assert status == 0, err
    assert "∂L/∂w = 2x(wx − y)" in out
    assert "γ_3·S" in out and "k = 3" in out and "u = 2⁻²⁴" in out
    assert "[float32, tensor]" in out and "[float32, variable]" in out
    assert out.count("result     PASS") == 2
    assert "examples   30 (Hypothesis, seed 1) in x ∈ [−10, 10]" in out
    assert "worst" in out
    assert not (tmp_path / ".hypothesis").exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_verify_batch_and_options(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_cli(
        "verify", "seed-x", "--batch", "2000", "--dtype", "float64", "--variables", "variable"
    )
    assert status == 0
    assert "[float64, variable]" in out and "u = 2⁻⁵³" in out
    assert "examples   2000 (uniform, seed" in out
    assert list(tmp_path.iterdir()) == []


def test_cli_verify_without_problems_checks_every_shipped_one(run_cli):
    status, out, _ = run_cli("verify", "--examples", "3", "--variables", "tensor", "--seed", "0")
    assert status == 0
    for problem_id in shipped_ids():
        assert f"{problem_id}: " in out


def test_cli_verify_exits_1_with_the_counterexample(run_cli, monkeypatch):
    import tutor.verify.driver

    def doubled(problem, values):
        return {k: 2 * g for k, g in tensorflow_gradient(problem, values).items()}

    monkeypatch.setattr(tutor.verify.driver, "tensorflow_gradient", doubled)
    status, out, err = run_cli("verify", "seed-w", "--examples", "50", "--seed", "0")
    assert status == 1
    assert "FAIL at" in out and "shrunk" in out
    assert "disagree" in err


BAD_INPUTS = {
    "zero examples": (["verify", "seed-w", "--examples", "0"], "--examples"),
    "zero batch": (["verify", "seed-w", "--batch", "0"], "--batch"),
    "huge batch": (["verify", "seed-w", "--batch", "100000000"], "--batch"),
    "negative seed": (["verify", "seed-w", "--seed", "-1"], "--seed"),
    "bad dtype": (["verify", "seed-w", "--dtype", "float16"], "--dtype"),
    "bad variables": (["verify", "seed-w", "--variables", "both2"], "--variables"),
    "unknown problem": (["verify", "seed-ww"], "Did you mean 'seed-w'?"),
}


@pytest.mark.parametrize("args, expected", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_cli_verify_bad_input_exits_2(refuses, args, expected):
    refuses(args, expected)


@pytest.mark.parametrize(
    ("loss", "low", "high", "expected"),
    [
        ("exp(w)", 80.0, 100.0, {"pass", "overflow"}),  # float32 overflows past w ≈ 88.7
        ("sqrt(w)", -1.0, 1.0, {"pass", "undefined"}),  # no real value below 0
        ("max(w, 0.25)", 0.0, 0.5, {"pass"}),
    ],
)
def test_one_point_at_a_time_and_a_batch_reach_the_same_verdicts(loss, low, high, expected):
    """The search (mpmath reference, one point at a time) and batch mode (float64 reference,
    one tape) decide with one rule: at the same 200 points they reach the same verdicts.
    The references differ by far less than the bound's margin at these points."""
    text = (
        f'title = "t"\nloss = "{loss}"\n[values]\nw = 0.5\n'
        f'[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\ndtype = "float32"\n'
        f"[verify]\nw = [{low}, {high}]\n"
    )
    problem = loads(text)
    (report,) = batch(problem, size=200, seed=7, variables="tensor")
    p = probe(problem, "w", variables="tensor")
    points = uniform_points(p.problem, 200, 7)
    one_by_one = [p.check({"w": float(w)}).verdict for w in points["w"]]
    assert {v: n for v, n in report.counts.items() if n} == {
        v: one_by_one.count(v) for v in set(one_by_one)
    }
    assert set(one_by_one) == expected


# What verify prints: the explanation once, each bound as a number, each partial as it ends.


def test_cli_verify_explains_the_tolerance_once_and_gives_each_bound_as_a_number(run_cli):
    status, out, _ = run_cli("verify", "seed-w", "--examples", "20", "--seed", "2")
    assert status == 0
    assert out.count("re-evaluated on the terms' magnitudes") == 1
    assert out.startswith("Each partial passes when |TF − SymPy| ≤ γ_k·S + floor")
    # γ_3 = 3u/(1 − 3u) for float32's u = 2⁻²⁴, computed here in exact rationals.
    from fractions import Fraction

    u = Fraction(1, 2**24)
    gamma_3 = float(3 * u / (1 - 3 * u))
    out = out.replace("−", "-")  # numbers carry a true minus; compared as Python prints them
    assert out.count(f"γ_3 = 3u/(1 - 3u) = {gamma_3:.4g} (k = 3, u = 2⁻²⁴)") == 2
    # At the worst point the bound is γ_k·S + floor with the S printed beside it; the floor
    # (flushed subnormals, about 2⁻¹²⁶ here) is far below the fourth digit.
    import re

    for line in out.splitlines():
        if line.lstrip().startswith("worst") and "γ_3" in line:
            s = float(re.search(r"S = ([-\d.e+]+)\)", line)[1])
            shown = re.search(r"≤ γ_3·S \+ floor = ([-\d.e+]+)$", line)[1]
            assert f"{gamma_3 * s:.4g}" == shown, line


def test_verify_hands_over_each_report_as_it_is_made():
    problems = [load("seed-w"), load("linear-bias")]
    seen = []
    from tutor.verify import verify

    reports = verify(problems, examples=5, variables=("tensor",), seed=0, on_report=seen.append)
    assert seen == reports
    assert [(r.problem, r.symbol) for r in seen] == [
        ("seed-w", "w"),
        ("linear-bias", "w"),
        ("linear-bias", "b"),
    ]


@pytest.mark.slow
def test_verify_in_an_empty_folder_leaves_it_empty_and_shows_progress(tmp_path):
    """Hypothesis caches the constants of local source files in .hypothesis/constants/
    even without an example database; verify must write nothing at all."""
    import io
    import os
    import sys

    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "tutor", "verify", "seed-w", "seed-x", "--examples", "20"],
        cwd=str(tmp_path),
        env={
            "PATH": "/usr/bin:/bin",
            "TERM": "xterm-256color",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
        encoding="utf-8",
        timeout=300,
        dimensions=(40, 120),
    )
    child.logfile_read = io.StringIO()
    child.expect(r"partials .*━.*0/4")  # rich's bar, before the first report
    child.expect("Each partial passes")
    child.expect("seed-w: ")
    child.expect("seed-x: ")
    child.expect("4 checks: all passed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert list(tmp_path.iterdir()) == []
