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
    # Printed with the true minus sign, in the exponent too (1.591e−07).
    assert f"final loss {number(summary['final_loss']).replace('-', '−')}" in last


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


# The curvature: at the start (show and step), at the end of a run that settled, at kinks.


def _second_derivative(problem_id: str, w: float) -> float:
    """∂²L/∂w² at w, from SymPy's second derivative evaluated at 50 digits."""
    import sympy

    problem = load(problem_id)
    symbol = problem.symbol("w")
    second = sympy.diff(problem.loss, symbol, 2)
    subs = {problem.symbol(k): v for k, v in {**problem.constants, **problem.values}.items()}
    subs[symbol] = sympy.Float(w, 50)
    return float(second.xreplace(subs).evalf(50))


def test_nonconvex_prints_the_hump_at_the_start_and_the_valley_at_the_end(run_cli):
    """L = (w² − 1)² + 0.3w: ∂²L/∂w² = 12w² − 4, −1 at w = 0.5 (a hump); at the end, positive,
    with the local bound 2/L''."""
    _, summary = _json(run_cli, "nonconvex")
    end_w = summary["final_values"]["w"]
    start = _second_derivative("nonconvex", 0.5)
    end = _second_derivative("nonconvex", end_w)
    assert start == -1.0
    _, out, _ = run_cli("step", "nonconvex", "--format", "plain")
    shown = lambda v: number(v).replace("-", "−")  # noqa: E731 - the true minus sign
    assert f"curvature at the start: ∂²L/∂w² = {shown(start)} (negative: on a hump" in out
    assert (
        f"Curvature at the end (w = {shown(end_w)}): ∂²L/∂w² = {shown(end)} (positive: "
        f"locally convex); local bound 2/λ_max = {shown(2 / end)}"
    ) in out
    assert summary["curvature_at_end"]["eigenvalues"] == [pytest.approx(end, rel=1e-12)]
    _, shown, _ = run_cli("show", "nonconvex", "--format", "plain")
    assert "curvature at the start: ∂²L/∂w² = −1" in shown
    assert "Curvature at the end" not in shown  # show runs no descent


def test_logistic_prints_the_eigenvalues_numpy_finds_at_the_start(run_cli):
    import sympy

    problem = load("logistic")
    params = [problem.symbol(n) for n in problem.wrt]
    hessian = sympy.hessian(problem.loss, params)
    subs = {problem.symbol(k): v for k, v in {**problem.constants, **problem.values}.items()}
    rows = [
        dict(zip(problem.data, r, strict=True)) for r in zip(*problem.data.values(), strict=True)
    ]
    total = np.zeros((len(params), len(params)))
    for row in rows or [{}]:
        at = {**subs, **{problem.symbol(k): v for k, v in row.items()}}
        total += np.array(hessian.xreplace(at).evalf(30).tolist(), dtype=np.float64)
    eig = np.linalg.eigvalsh(total / max(1, len(rows)))
    _, out, _ = run_cli("show", "logistic", "--format", "plain")
    shown = ", ".join(number(v) for v in eig)
    assert f"curvature at the start: eigenvalues of the Hessian {shown} (positive" in out


@pytest.mark.parametrize(
    ("problem_id", "args", "kink"),
    [
        ("abs-error", ["--set", "w=1.5"], "wx − y = 0"),
        ("hinge", ["--set", "w=0.5"], "1 − wxy = 0"),
        ("huber", ["--set", "w=3"], "|wx − y| = d"),
    ],
)
def test_at_a_kink_the_curvature_is_said_to_be_undefined(run_cli, problem_id, args, kink):
    problem = load(problem_id)
    status, out, _ = run_cli("step", problem_id, *args, "--steps", "0", "--format", "plain")
    assert status == 0
    assert (
        f"curvature at the start: not defined: the point is on a kink of the loss, where {kink}"
        in out
    )
    assert problem.values  # the shipped start is away from the kink:
    _, shipped, _ = run_cli("show", problem_id, "--format", "plain")
    assert f"not defined at the kink {kink}" in shipped
    assert "given instead" not in shipped


def test_huber_ends_in_its_quadratic_part_with_curvature_x_squared(run_cli):
    """Near the fit |wx − y| < d, huber is r²/2, so ∂²L/∂w² = x² = 4 and the local bound 0.5."""
    _, out, _ = run_cli("step", "huber", "--format", "plain")
    assert "∂²L/∂w² = 4 (positive: locally convex); local bound 2/λ_max = 0.5" in out


def test_tolerance_is_a_gradient_bound_and_the_prediction_is_the_runs_stop(run_cli):
    """least-squares has tolerance 1e-4 on every |∂L/∂s|: the closed form predicts the update
    where the run stops; the run in float64 stops there."""
    _, out, _ = run_cli("show", "least-squares", "--format", "plain")
    line = next(li for li in out.splitlines() if "(the run's tolerance)" in li)
    predicted = int(line.split(" after ")[1].split()[0])
    assert "of the fixed point" not in line
    updates, summary = _json(run_cli, "least-squares", "--dtype", "float64")
    assert summary["status"] == "converged"
    assert len(updates) == predicted
    assert "distance to the fixed point" in run_cli("step", "least-squares", "--format", "plain")[1]


def test_a_fixed_point_that_is_not_finite_is_said_so_without_a_traceback(run_cli, tmp_path):
    """(w − exp(1/x))² with x = [0, 1]: exp(1/0) is infinite, so the mean's coefficients are."""
    path = tmp_path / "p.toml"
    path.write_text(
        'title = "t"\nloss = "(w - exp(1/x))**2"\n[values]\nw = 1.0\n[data]\nx = [0.0, 1.0]\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 3\n'
    )
    status, out, err = run_cli("show", str(path), "--format", "plain")
    assert status == 0, err
    assert "coefficients are not finite" in out
    status, out, err = run_cli("step", str(path), "--format", "json")
    assert status == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert json.loads(out.splitlines()[-1])["summary"]["status"] == "diverged"


# Data problems in JSON, and values overridden on the command line.


def test_show_json_labels_the_mean_and_the_per_row_forms_and_carries_the_analysis(run_cli):
    problem = load("least-squares")
    status, out, _ = run_cli("show", "least-squares", "--format", "json")
    assert status == 0
    doc = json.loads(out)
    b = doc["partials"]["b"]
    assert b["per_row"]["result"] == "2*(b + w*x_i - y_i)"
    assert b["per_row"]["latex"] == r"2 \left(b + w x_{i} - y_{i}\right)"
    assert b["mean"]["result"] == "Sum(2*(b + w*x_i - y_i), (i, 1, 5))/5"
    assert b["mean"]["latex"] == b["latex"]
    assert b["latex"].startswith(r"\frac{1}{5}\sum_{i=1}^{5}")
    x = np.array(problem.data["x"])
    mean = [[np.mean(2 * x * x), np.mean(2 * x)], [np.mean(2 * x), 2.0]]
    analysis = doc["analysis"]
    assert np.allclose(analysis["hessian"], mean, rtol=1e-15, atol=0)
    assert analysis["hessian_is_mean_over_rows"] == 5
    assert analysis["hessian_class"] == "positive definite"
    assert sorted(analysis["eigenvalues"]) == pytest.approx(np.linalg.eigvalsh(mean), rel=1e-12)


def test_overridden_values_are_named_wherever_the_run_is_shown(run_cli):
    """seed-x's prose says x starts at 3; with --set x=4 every format says what changed."""
    _, out, _ = run_cli("step", "seed-x", "--set", "x=4", "--steps", "2", "--format", "plain")
    assert "overridden: x = 4 (file: 3)" in out
    _, out, _ = run_cli("step", "seed-x", "--set", "x=4", "--steps", "2", "--format", "latex")
    assert "% overridden: x = 4 (file: 3)" in out
    _, summary = _json(run_cli, "ridge", "--set", "lam=0", "--set", "w=1")
    assert summary["overridden"] == {
        "lam": {"value": 0.0, "file": 0.5},
        "w": {"value": 1.0, "file": 0.0},
    }
    _, summary = _json(run_cli, "ridge")
    assert summary["overridden"] == {}
    _, out, _ = run_cli("step", "ridge", "--format", "plain")
    assert "overridden" not in out


def test_a_nan_is_not_called_an_overflow(run_cli, tmp_path):
    # (w − 8)^(1/3) at w = 1 is the principal root of −7: TensorFlow gives nan, not inf.
    path = tmp_path / "root.toml"
    path.write_text(
        'title = "root"\nloss = "(w - 8)**(1/3) + w**2"\n[values]\nw = 1.0\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 3\n'
    )
    status, out, err = run_cli("step", str(path), "--format", "plain")
    assert status == 1
    assert "overflowed" not in out + err
    assert "at update 1 the loss is nan, not a number" in err
