"""The convergence analysis of quadratic losses, checked against closed forms and runs."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import strategies
import sympy
from hypothesis import assume, given, settings

from tutor import derive, load
from tutor._numbers import number


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
    """Without a tolerance the count is of the distance to the fixed point; with one, of the
    gradient, which is what the file's tolerance bounds (the run's stopping rule)."""
    analysis = derive(load("seed-w")).analysis
    # |w_k − 2| = 1.5·0.82^k < 1e-3  ⇔  k > log(1e-3/1.5)/log(0.82) = 36.8…
    assert (analysis.steps_to_tolerance, analysis.tolerance_kind) == (37, "distance")
    problem = dataclasses.replace(load("seed-w"), tolerance=1e-3)
    analysis = derive(problem).analysis
    # |∂L/∂w| = 18·|w_k − 2| = 27·0.82^k < 1e-3  ⇔  k > log(1e-3/27)/log(0.82) = 51.4…
    assert (analysis.steps_to_tolerance, analysis.tolerance_kind) == (52, "gradient")


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


# Every Hessian class, against NumPy's eigenvalues and against what the run does.

#: |λ| below this counts as 0 in the tests' own classification. The generated H are integer
#: matrices: the product of their nonzero eigenvalues is a sum of principal minors, a nonzero
#: integer, so the smallest nonzero |λ| is at least 1/λ_max^(n−1) ≥ 1/200² here — far above
#: the rounding of NumPy's eigensolver (≈ n·ε·‖H‖ ≈ 1e-13).
ZERO_EIGENVALUE = 1e-9


def _expected(q: dict) -> tuple[str, str, float | None]:
    """Return the class, the outcome and the bound, computed from NumPy's eigenvalues."""
    h = np.array(q["h"], dtype=np.float64)
    b = np.array(q["b"], dtype=np.float64)
    eig = np.linalg.eigvalsh(h)
    eig = np.where(np.abs(eig) < ZERO_EIGENVALUE, 0.0, eig)
    if not eig.any():
        kind = "zero"
    elif (eig > 0).all():
        kind = "positive definite"
    elif (eig >= 0).all():
        kind = "positive semidefinite and singular"
    elif (eig < 0).all():
        kind = "negative definite"
    elif (eig <= 0).all():
        kind = "negative semidefinite and singular"
    else:
        kind = "indefinite"
    # A minimum exists when Hθ = b has a solution: least squares leaves no residual.
    theta = np.linalg.lstsq(h, b, rcond=None)[0]
    solvable = np.linalg.norm(h @ theta - b) <= 1e-9 * max(1.0, np.linalg.norm(b))
    if kind in ("positive definite", "positive semidefinite and singular") and solvable:
        eta = float(np.float32(q["rate"])) if q["dtype"] == "float32" else q["rate"]
        top = float(eig.max())
        outcome = "converges" if eta * top < 2 else "grows"
        return kind, outcome, 2 / top
    if kind == "zero" and not b.any():
        return kind, "stays", None
    return kind, "runs away", None


@given(q=strategies.quadratics())
def test_every_hessian_class_is_named_as_numpy_finds_it(q):
    from tutor import loads
    from tutor.render import text

    kind, outcome, bound = _expected(q)
    problem = loads(q["source"])
    eta = float(np.float32(q["rate"])) if q["dtype"] == "float32" else q["rate"]
    if bound is not None:
        # So close to the bound that only the last bits decide: left to the on-bound test.
        assume(abs(eta * 2 / bound - 2) > 1e-9)
    deriv = derive(problem)
    analysis = deriv.analysis
    assert analysis.kind == kind
    assert analysis.outcome == outcome
    assert np.allclose(sorted(analysis.eigenvalues), np.linalg.eigvalsh(q["h"]), atol=1e-9)
    shown = text.derivation(deriv)
    if kind == "zero":
        assert "the loss is linear" in shown
    elif len(q["h"]) > 1:
        assert f"H is {kind}" in shown
    if bound is not None:
        assert analysis.lr_bound == pytest.approx(bound, rel=1e-12)
        # The bound's formula when it has one, never "η < 2 = 2" (one side repeated).
        shown_bound = number(bound).replace("-", "−")
        assert f"= {shown_bound};" in shown or f"η < {shown_bound};" in shown
    if outcome == "runs away":
        assert "no learning rate converges" in shown
    if outcome == "converges":
        assert "the iterates converge" in shown
    if outcome == "grows":
        assert "is above it" in shown


@given(q=strategies.quadratics())
@settings(max_examples=30)
def test_every_hessian_class_ends_the_run_as_the_analysis_says(q, backend):
    """A minimum and a rate below the bound: the distance to the minimiser the run must reach
    (θ* on the curved directions, the start on the flat ones) never grows and the run is not
    diverging; a rate above the bound, a saddle, a maximum or no minimum: diverging."""
    kind, outcome, bound = _expected(q)
    eta = float(np.float32(q["rate"])) if q["dtype"] == "float32" else q["rate"]
    if bound is not None:
        assume(abs(eta * 2 / bound - 2) > 1e-9)
    from tutor import descend, loads

    traj = descend(derive(loads(q["source"])), backend)
    if outcome in ("grows", "runs away"):
        assert traj.status in ("diverging", "diverged")
        return
    assert traj.status in ("completed", "converged")
    if outcome == "stays":
        return
    h = np.array(q["h"], dtype=np.float64)
    b = np.array(q["b"], dtype=np.float64)
    start = np.array(q["start"], dtype=np.float64)
    # The iterates never move along the null space of H: the limit keeps the start's part there.
    particular = np.linalg.lstsq(h, b, rcond=None)[0]
    null = scipy_null(h)
    target = particular + null @ (null.T @ (start - particular))
    names = list(traj.columns.wrt)
    final = np.array([traj.columns.updated[-1][names.index(n)] for n in names])
    first = np.linalg.norm(start - target)
    # Each update multiplies every component by |1 − ηλ| < 1; float32 rounding adds at most
    # a few units of u = 2⁻²⁴ of the largest value per update, over 40 updates.
    slack = 40 * 8 * 2.0**-24 * (1 + np.abs(start).max() + np.abs(target).max())
    assert np.linalg.norm(final - target) <= first + slack
    assert dict(zip(names, target, strict=True)) == pytest.approx(
        dict(traj.derivation.analysis.fixed_point), abs=1e-9
    )


def scipy_null(h: np.ndarray) -> np.ndarray:
    """Return an orthonormal basis of H's null space (columns), from NumPy's SVD."""
    _, s, vt = np.linalg.svd(h)
    rank = int((s > ZERO_EIGENVALUE).sum())
    return vt[rank:].T


@given(q=strategies.on_bound_quadratics())
@settings(max_examples=20)
def test_a_rate_exactly_on_the_bound_oscillates_with_constant_amplitude(q, backend):
    """η = 2/λ_max exactly (1, 0.5 or 0.25): the λ_max coordinate flips sign every update
    (w ← w − η·λ·w = −w, exact in floating point), the others shrink; not diverging."""
    from tutor import descend, loads
    from tutor.render import text

    deriv = derive(loads(q["source"]))
    assert deriv.analysis.outcome == "oscillates"
    assert "oscillate with constant amplitude" in text.derivation(deriv)
    traj = descend(deriv, backend)
    assert traj.status == "completed"
    first = traj.columns.wrt[0]
    column = traj.columns.updated[:, 0]
    start = q["start"][0]
    assert column.tolist() == [start * (-1) ** k for k in range(1, len(column) + 1)], first


def test_the_bound_is_classified_with_the_rate_the_dtype_holds(run_cli, tmp_path):
    """float32(0.2) = 0.2000000030 > 0.2 = 2/λ_max for λ_max = 10: above the bound in float32,
    on it in float64 (float64(0.2)·10 rounds to 2 within the eigensolver's rounding)."""
    path = tmp_path / "ten.toml"
    path.write_text(
        'title = "t"\nloss = "5*w**2"\n[values]\nw = 1.0\n[descent]\nwrt = ["w"]\n'
        "learning_rate = 0.2\nsteps = 6\n"
    )
    single = derive(load(str(path))).analysis
    double = derive(dataclasses.replace(load(str(path)), dtype="float64")).analysis
    assert float(np.float32(0.2)) * 10 > 2
    assert (single.outcome, double.outcome) == ("grows", "oscillates")
    status, out, _ = run_cli("step", str(path), "--format", "plain")
    assert "0.200000003 in float32" in out and out.rstrip().splitlines()[-1].startswith("diverging")
    status, out, _ = run_cli("step", str(path), "--dtype", "float64", "--format", "plain")
    assert "oscillate with constant amplitude" in out
    assert out.rstrip().splitlines()[-1].startswith("completed")


def test_linear_bias_has_a_line_of_minimisers_and_converges_to_the_nearest(run_cli):
    """H = [[8, 4], [4, 2]]: eigenvalues 0 and 10. From (0.5, 0) the line 2w + b = 5 is
    nearest at (0.5, 0) + t·(2, 1) with 2(0.5 + 2t) + t = 5, t = 0.8: (2.1, 0.8)."""
    status, out, _ = run_cli("step", "linear-bias", "--format", "plain")
    assert status == 0
    assert "positive semidefinite and singular, so the minimisers form a line" in out
    assert "unstable" not in out and "grow" not in out
    assert "w* = 2.1" in out and "b* = 0.8" in out
    assert out.rstrip().splitlines()[-1].startswith("completed")
    _, out, _ = run_cli("step", "linear-bias", "--format", "json")
    final = json.loads(out.splitlines()[-1])["summary"]["final_values"]
    assert final["w"] == pytest.approx(2.1, abs=1e-5)
    assert final["b"] == pytest.approx(0.8, abs=1e-5)


@pytest.mark.parametrize(
    ("loss", "values", "kind"),
    [
        ("a**2 - b**2", {"a": 1.0, "b": 0.5}, "indefinite"),
        ("-(a - 1)**2 - 2*b**2", {"a": 0.5, "b": 0.5}, "negative definite"),
        ("a**2 - b**2", {"a": 0.0, "b": 0.0}, "indefinite"),
    ],
    ids=["saddle", "maximum", "at-the-saddle"],
)
def test_saddles_and_maxima_end_diverging_whatever_the_values_do(
    run_cli, tmp_path, loss, values, kind
):
    path = tmp_path / "p.toml"
    start = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    path.write_text(
        f'title = "t"\nloss = "{loss}"\n[values]\n{start}[descent]\nwrt = ["a", "b"]\n'
        "learning_rate = 0.1\nsteps = 20\n"
    )
    status, out, _ = run_cli("step", str(path), "--format", "plain")
    assert status in (0, 1)
    assert f"H is {kind}" in out
    assert "no learning rate converges" in out
    assert "fixed point:" not in out and "minimiser" not in out
    assert out.rstrip().splitlines()[-1].split(":")[0] in ("diverging", "diverged")


def _ridge_source(weights: int) -> str:
    """A ridge regression over two points written out in the loss, every number a symbol."""
    ws = [f"w{i}" for i in range(1, weights + 1)]
    first = " + ".join(f"{w}*x{i}" for i, w in enumerate(ws, 1))
    second = " + ".join(f"{w}*z{i}" for i, w in enumerate(ws, 1))
    penalty = " + ".join(f"{w}**2" for w in ws)
    loss = f"({first} - y1)**2 + ({second} - y2)**2 + lam*({penalty})"
    values = "".join(
        f"{w} = 0.0\nx{i} = {i}.0\nz{i} = {(-1) ** i * 0.5 * i}\n" for i, w in enumerate(ws, 1)
    )
    wrt = ", ".join(f'"{w}"' for w in ws)
    return (
        f'title = "ridge"\nloss = "{loss}"\n[constants]\nlam = 0.1\n[values]\n{values}'
        f"y1 = 1.0\ny2 = 2.0\n[descent]\nwrt = [{wrt}]\nlearning_rate = 0.01\nsteps = 5\n"
    )


def _chain_source() -> str:
    """A 12-parameter quadratic of about 340 characters with a symbolic weight on each term."""
    terms = [f"a{i}*(p{i} - p{(i + 1) % 12} + {i % 3 + 1})**2" for i in range(12)]
    terms += ["c*(p0 + p3 + p6 - 1)**2", "c*(p5 - p9)**2", "c*(p2 + p8)**2", "c*p5**2"]
    loss = " + ".join(terms)
    assert 330 <= len(loss) <= 350
    values = "".join(f"p{i} = 0.5\na{i} = {1 + i % 4}.0\n" for i in range(12))
    wrt = ", ".join(f'"p{i}"' for i in range(12))
    return (
        f'title = "chain"\nloss = "{loss}"\n[values]\n{values}c = 1.0\n'
        f"[descent]\nwrt = [{wrt}]\nlearning_rate = 0.01\nsteps = 5\n"
    )


@pytest.mark.parametrize(
    "source",
    [_ridge_source(4), _ridge_source(6), _chain_source()],
    ids=["ridge-4-weights", "ridge-6-weights", "quadratic-12-parameters"],
)
def test_many_parameter_quadratics_are_analysed_by_linear_algebra_in_well_under_a_second(source):
    """Solving the gradient system symbolically took minutes on these; the fixed point comes
    from the coefficient matrix now. Checked against NumPy: H θ* = b at the fixed point."""
    import time

    from tutor import loads
    from tutor.analysis import analyse

    problem = loads(source)
    began = time.perf_counter()
    analysis = analyse(problem)
    assert time.perf_counter() - began < 1.0
    assert analysis.kind == "positive definite"
    names = problem.wrt
    h = np.array(analysis.matrix)
    star = np.array([analysis.fixed_point[n] for n in names])
    gradient_at_star = [
        float(
            sympy.diff(problem.loss, problem.symbol(n)).subs(
                {
                    **{problem.symbol(k): v for k, v in problem.values.items()},
                    **{problem.symbol(k): v for k, v in problem.constants.items()},
                    **{problem.symbol(n2): s for n2, s in zip(names, star, strict=True)},
                }
            )
        )
        for n in names
    ]
    assert np.abs(gradient_at_star).max() <= 1e-9 * max(1.0, np.abs(h).max() * np.abs(star).max())
    assert sorted(analysis.eigenvalues) == pytest.approx(np.linalg.eigvalsh(h).tolist(), rel=1e-12)
