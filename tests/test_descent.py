"""How a descent ends: the loss at its final values, its status, the curvature where it ends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tutor import load, shipped_ids
from tutor._numbers import number
from tutor.numeric import evaluate


def _json(run_cli, *args: str) -> tuple[list[dict], dict]:
    status, out, err = run_cli("step", *args, "--format", "json")
    assert status in (0, 1), err
    records = [json.loads(line) for line in out.splitlines()]
    return records[:-1], records[-1]["summary"]


def _float64_loss(problem_id: str, values: dict[str, float]) -> float:
    """The loss at ``values`` re-evaluated in float64 by NumPy (the mean over any data rows)."""
    problem = load(problem_id)
    env = {**problem.constants, **values}
    env.update({k: np.asarray(v, dtype=np.float64) for k, v in problem.data.items()})
    return float(np.mean(evaluate(problem.loss, env)))


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_final_loss_is_the_loss_at_the_final_values(run_cli, problem_id):
    """In float64 the run's loss and NumPy's differ only by rounding: a few dozen roundings
    of ε = 2⁻⁵² on terms no larger than 10⁴ in the shipped problems, far below 1e-10."""
    _, summary = _json(run_cli, problem_id, "--dtype", "float64")
    expected = _float64_loss(problem_id, summary["final_values"])
    assert summary["final_loss"] == pytest.approx(expected, rel=1e-12, abs=1e-10)


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_final_loss_is_the_next_updates_loss_and_is_printed(run_cli, problem_id):
    """The loss the run would print before one more update is the loss at its final values,
    bit for bit (same dtype, same computation); the plain summary shows that number."""
    updates, summary = _json(run_cli, problem_id)
    if summary["status"] not in ("converged", "diverged"):
        steps = len(updates)
        longer, _ = _json(run_cli, problem_id, "--steps", str(steps + 1))
        assert summary["final_loss"] == longer[steps]["loss"]
    _, out, _ = run_cli("step", problem_id, "--format", "plain")
    last = out.rstrip("\n").splitlines()[-1]
    assert f"final loss {number(summary['final_loss'])}" in last


def test_hinge_ends_at_zero_loss_where_its_margin_is_met(run_cli):
    """max(0, 1 − y·w·x) with x = 2, y = 1: the run stops once 2w ≥ 1, where the loss is 0."""
    _, summary = _json(run_cli, "hinge")
    assert summary["status"] == "converged"
    w = summary["final_values"]["w"]
    assert 2 * w >= 1
    assert summary["final_loss"] == 0.0


@pytest.mark.parametrize("problem_id", ["hinge", "least-squares", "seed-w"])
def test_latex_and_rich_runs_end_with_the_same_final_loss(run_cli, problem_id):
    _, summary = _json(run_cli, problem_id)
    _, out, _ = run_cli("step", problem_id, "--format", "latex")
    assert (
        out.rstrip("\n")
        .splitlines()[-1]
        .startswith(f"% {summary['status']}: final loss {number(summary['final_loss'])} at ")
    )
