"""The shipped problem library: every problem checks, shows and steps, and teaches what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tutor import load, shipped_ids
from tutor.problem import problems_dir

#: The notebook's own problems; the library adds the rest.
SEED = {"seed-linear", "seed-variable", "seed-w", "seed-x"}
#: The problems the library promises, one per idea.
PROMISED = {
    "linear-bias",
    "least-squares",
    "logistic",
    "tanh-neuron",
    "abs-error",
    "huber",
    "softplus",
    "hinge",
    "ridge",
    "bowl",
    "valley",
    "nonconvex",
    "lr-too-large",
    "lr-too-small",
}


def test_the_library_holds_every_promised_problem():
    ids = set(shipped_ids())
    assert ids >= PROMISED
    assert len(ids - SEED) >= 14


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_problem_loads_with_a_summary(problem_id):
    problem = load(problem_id)
    assert problem.id == problem_id
    assert problem.title.strip()
    assert len(problem.summary.split()) >= 20, "a summary a student can read"


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_a_loss_with_a_domain_has_a_verify_box_for_every_value(problem_id):
    problem = load(problem_id)
    if any(f"{func}(" in problem.loss_text for func in ("log", "sqrt")):
        assert set(problem.verify) == set(problem.values)


def test_check_passes_on_every_shipped_file(run_cli):
    paths = sorted(str(p) for p in problems_dir().glob("*.toml"))
    status, out, err = run_cli("check", *paths)
    assert status == 0, out + err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(paths)
    for line, path in zip(lines, paths, strict=True):
        assert line.startswith(f"OK {path}: symbols ")


def test_check_accepts_shipped_ids(run_cli):
    status, out, _ = run_cli("check", *shipped_ids())
    assert status == 0
    assert len(out.splitlines()) == len(shipped_ids())


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "seed-w"],
        ["show", "logistic", "--format", "json"],
        ["check", *shipped_ids()],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_list_show_and_check_never_import_tensorflow(args):
    """``python -X importtime`` lists every module a command imported, on stderr."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tutor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "sympy" in imported  # the listing is there to be read
    assert not {name for name in imported if name.split(".")[0] == "tensorflow"}


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_problem_shows_as_json(run_cli, problem_id):
    status, out, err = run_cli("show", problem_id, "--format", "json")
    assert status == 0, err
    partials = json.loads(out)["partials"]
    assert list(partials) == list(load(problem_id).wrt)
    assert all(p["result"] and p["steps"] for p in partials.values())


def _step(run_cli, *args: str) -> tuple[list[dict], dict]:
    """Return the updates and the summary of ``tutor step ARGS --format json``."""
    status, out, err = run_cli("step", *args, "--format", "json")
    assert status == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    return records[:-1], records[-1]["summary"]


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_problem_steps_as_json_and_stays_finite(run_cli, problem_id):
    updates, summary = _step(run_cli, problem_id)
    assert summary["status"] != "diverged"
    for update in updates:
        assert all(isinstance(v, float) for v in update["updated"].values()), update


# What the summaries promise, checked on the runs.


def _final(run_cli, *args: str) -> dict[str, float]:
    updates, _ = _step(run_cli, *args)
    return updates[-1]["updated"]


def test_lr_too_large_grows_but_stays_finite_and_is_flagged(run_cli):
    updates, summary = _step(run_cli, "lr-too-large")
    assert summary["status"] == "diverging"
    assert updates[-1]["loss"] > 1000 * updates[0]["loss"]


def test_lr_too_small_barely_moves(run_cli):
    assert 0.5 < _final(run_cli, "lr-too-small")["w"] < 0.6


def test_nonconvex_settles_in_the_minimum_nearest_its_start(run_cli):
    assert _final(run_cli, "nonconvex")["w"] == pytest.approx(0.96, abs=0.01)
    assert _final(run_cli, "nonconvex", "--set", "w=-0.5")["w"] == pytest.approx(-1.04, abs=0.01)


def test_valley_leaves_the_flat_coordinate_behind(run_cli):
    final = _final(run_cli, "valley")
    assert abs(final["b"]) < 1e-6
    assert 0.5 < final["a"] < 1.0


def test_hinge_stops_once_the_margin_is_met(run_cli):
    _, summary = _step(run_cli, "hinge")
    assert summary["status"] == "converged"


def test_huber_converges_to_the_exact_fit(run_cli):
    assert _final(run_cli, "huber")["w"] == pytest.approx(3.5, abs=1e-4)


def test_ridge_shrinks_the_weight(run_cli):
    assert _final(run_cli, "ridge")["w"] == pytest.approx(8 / 4.5, abs=1e-4)


def test_least_squares_finds_the_fitted_line(run_cli):
    final = _final(run_cli, "least-squares")
    assert final["w"] == pytest.approx(1.96, abs=0.01)
    assert final["b"] == pytest.approx(1.1, abs=0.01)


def test_both_logistic_forms_follow_the_same_path(run_cli):
    naive, _ = _step(run_cli, "logistic")
    stable, _ = _step(run_cli, "logistic-stable")
    for a, b in zip(naive, stable, strict=True):
        assert a["updated"] == pytest.approx(b["updated"], rel=1e-5)
