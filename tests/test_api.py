"""The public API re-exported from ``tutor``."""

from __future__ import annotations

import subprocess
import sys

import tutor


def test_all_names_exist_and_are_sorted():
    assert sorted(tutor.__all__) == tutor.__all__
    for name in tutor.__all__:
        assert getattr(tutor, name) is not None


def test_importing_tutor_does_not_import_tensorflow():
    code = (
        "import sys, tutor; tutor.derive(tutor.load('seed-w')); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_notebook_api_runs_a_descent():
    derivation = tutor.derive(tutor.load("seed-w"))
    traj = tutor.descend(derivation, tutor.TensorFlowBackend())
    assert [f"{u.updated['w']:05.2f}" for u in traj.updates][:3] == ["00.77", "00.99", "01.17"]
    assert tutor.render_json(traj).count("\n") == 21


def test_a_data_partial_gives_its_mean_as_well_as_the_per_row_form():
    """least-squares: ∂L/∂b = (1/5) Σᵢ 2(b + w·xᵢ − yᵢ), the mean of the per-row result."""
    import sympy

    partial = tutor.derive(tutor.load("least-squares")).partial("b")
    (total,) = partial.mean.atoms(sympy.Sum)
    assert total.limits[0][1:] == (1, 5)
    assert partial.mean == total / 5
    rows = {sympy.Symbol(f"{n}_i", real=True): sympy.Symbol(n, real=True) for n in "xy"}
    assert sympy.expand(total.function.xreplace(rows) - partial.result) == 0
    seed = tutor.derive(tutor.load("seed-w")).partial("w")
    assert seed.mean == seed.result
