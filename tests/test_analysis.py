"""The convergence analysis of quadratic losses, checked against closed forms and runs."""

from __future__ import annotations

import dataclasses
import json
import math

import sympy

from tutor import derive, load


def test_notebook_bound_is_one_over_x_squared():
    analysis = derive(load("seed-w")).analysis
    x = sympy.Symbol("x", real=True)
    assert analysis.applies
    assert sympy.simplify(analysis.lr_bound_formula - 1 / x**2) == 0
    assert analysis.lr_bound == 1 / 9
    assert analysis.fixed_point == {"w": 2.0}
    # Contraction factor 1 − 2ηx² = 1 − 2·0.01·9.
    assert math.isclose(analysis.contraction, 1 - 2 * 0.01 * 9, rel_tol=1e-15)


def test_closed_form_iterate_matches_the_float32_trajectory(run_cli):
    """w_k − 2 = 0.82^k (0.5 − 2), against the float32 run.

    Each float32 update rounds 5 times on terms of size ≤ M = 2 + 0.01·6·(3·2 + 6) = 2.72;
    errors shrink by 0.82 afterwards, so |w_k − closed form| ≤ γ₅·M/(1 − 0.82).
    """
    analysis = derive(load("seed-w")).analysis
    _, out, _ = run_cli("step", "seed-w", "--format", "json")
    updates = [json.loads(line) for line in out.splitlines()[:-1]]
    u = 2.0**-24
    bound = 5 * u / (1 - 5 * u) * 2.72 / (1 - 0.82)
    for k, update in enumerate(updates, 1):
        closed = analysis.iterate({"w": 0.5}, k)["w"]
        assert math.isclose(closed, 2 + 0.82**k * (0.5 - 2), rel_tol=1e-12)
        assert abs(update["updated"]["w"] - closed) <= bound


def test_steps_to_tolerance_counts_the_contraction():
    problem = dataclasses.replace(load("seed-w"), tolerance=1e-3)
    analysis = derive(problem).analysis
    # |w_k − 2| = 1.5·0.82^k < 1e-3  ⇔  k > log(1e-3/1.5)/log(0.82) = 36.8…
    assert analysis.steps_to_tolerance == 37


def test_large_rate_is_flagged_diverging_and_stays_finite(run_cli):
    status, out, _ = run_cli("step", "seed-w", "--lr", "0.2", "--format", "json")
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert status == 0
    assert summary["status"] == "diverging"
    assert "0.1111" in summary["reason"]
    assert summary["analysis"]["lr_bound"] == 1 / 9


def test_huge_rate_stops_on_non_finite_values_with_exit_1(run_cli):
    status, out, err = run_cli("step", "seed-w", "--lr", "1e6", "--format", "json")
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert status == 1
    assert summary["status"] == "diverged"
    assert "Traceback" not in err
    assert "overflowed" in err and "0.1111" in err


def test_linear_loss_has_no_fixed_point():
    analysis = derive(load("seed-linear")).analysis
    assert not analysis.applies
    assert "no minimum" in analysis.reason


def test_two_parameter_bowl_uses_the_largest_eigenvalue():
    from tutor import loads

    problem = loads(
        """
title = "bowl"
loss = "a*u**2 + b*v**2"
[values]
u = 1.0
v = 1.0
[constants]
a = 1.0
b = 10.0
[descent]
wrt = ["u", "v"]
learning_rate = 0.05
steps = 5
"""
    )
    analysis = derive(problem).analysis
    # H = diag(2a, 2b) = diag(2, 20): η < 2/20, factor max(|1 − 0.1|, |1 − 1|) = 0.9.
    assert analysis.eigenvalues == (2.0, 20.0)
    assert math.isclose(analysis.lr_bound, 0.1)
    assert math.isclose(analysis.contraction, 0.9)
    assert analysis.fixed_point == {"u": 0.0, "v": 0.0}
