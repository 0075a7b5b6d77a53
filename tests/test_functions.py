"""The registry of loss functions: every consumer reads it, so a function is one record."""

from __future__ import annotations

import re
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import find, settings
from strategies import expressions, loss_sources

from tutor import derive, load
from tutor.expression import Call, Node, to_sympy
from tutor.functions import REGISTRY, LossFunction, formula_function, registered
from tutor.numeric import evaluate
from tutor.render.code import update_code
from tutor.steps import rules_used
from tutor.verify import gradient_bound

#: A point away from every kink and singularity of the calls below: the residual
#: w·x − y = 0.5 is inside huber's threshold d = x = 1.5, log and sqrt see 0.5 > 0,
#: max and min compare 0.5 with 1.5.
_VALUES = {"w": 0.5, "x": 1.5, "y": 0.25}


def _softsign(ops, z):
    return z / (1 + ops.abs(z))


def _softsign_derivative(args, k):
    (z,) = args
    return 1 / (1 + sympy.Abs(z)) ** 2


def _softsign_rule(call, v):
    return (
        f"softsign({v}) = {v}/(1 + |{v}|) has the derivative 1/(1 + |{v}|)², "
        "by the quotient rule on each side of 0."
    )


#: A function that exists only in this test: TensorFlow computes it as its formula.
SOFTSIGN = formula_function(
    "softsign",
    _softsign,
    arity=1,
    derivative=_softsign_derivative,
    rule=_softsign_rule,
    summary="z/(1 + |z|)",
    params=("z",),
)


def _problem_file(tmp_path: Path, record: LossFunction) -> Path:
    call = f"{record.name}(w*x - y)" if record.arity == 1 else f"{record.name}(w*x - y, x)"
    path = tmp_path / f"{record.name}.toml"
    path.write_text(
        f'title = "{record.name}"\nloss = "{call}"\n\n[values]\n'
        + "".join(f"{k} = {v}\n" for k, v in _VALUES.items())
        + '\n[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 3\ndtype = "float64"\n'
    )
    return path


def _calls(node: Node) -> set[str]:
    if isinstance(node, Call):
        return {node.func}.union(*(_calls(a) for a in node.args))
    children = [getattr(node, k) for k in ("operand", "left", "right") if hasattr(node, k)]
    return set().union(*(_calls(c) for c in children))


def _reaches_every_consumer(record: LossFunction, path: Path, run_cli, backend) -> None:
    """Check the parser, the rules, TensorFlow, the bound and every renderer on ``record``."""
    problem = load(str(path))
    assert record.name in _calls(problem.tree)  # parsed
    partial = derive(problem).partial("w")
    assert record.name in rules_used(partial.steps)  # derived by its own named rule
    loss, grads = backend.gradient(problem, _VALUES)  # computed by TensorFlow
    # Bounded: TF's gradient lies within the error bound of the exact one (mpmath, 50 digits).
    with mpmath.workdps(50):
        exact = float(evaluate(partial.result, _VALUES, precise=True))
    assessment = gradient_bound(problem, "w").assess({k: np.array([v]) for k, v in _VALUES.items()})
    assert not assessment.hazards_at(0)
    assert abs(grads["w"] - exact) <= assessment.bound[0]
    assert loss == pytest.approx(float(evaluate(to_sympy(problem.tree), _VALUES)), rel=1e-15)
    # Rendered in every format, naming the function.
    for fmt in ("plain", "rich", "latex"):
        status, out, err = run_cli("show", str(path), "--format", fmt)
        assert status == 0, err
        assert record.latex in out if fmt == "latex" else record.plain in out
    status, out, _ = run_cli("show", str(path), "--format", "json")
    assert status == 0 and f'"rule": "{record.name}"' in out
    assert f"{record.code}(" in update_code(problem)
    status, out, err = run_cli("verify", str(path), "--examples", "5", "--seed", "1")
    assert status == 0, out + err


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_function_reaches_every_consumer(name, tmp_path, run_cli, backend):
    _reaches_every_consumer(
        REGISTRY[name], _problem_file(tmp_path, REGISTRY[name]), run_cli, backend
    )


def test_a_function_registered_in_a_test_reaches_every_consumer(tmp_path, run_cli, backend):
    with registered(SOFTSIGN):
        path = _problem_file(tmp_path, SOFTSIGN)
        _reaches_every_consumer(SOFTSIGN, path, run_cli, backend)
        # The helper --show-code prints is the formula, written as TensorFlow source.
        assert "return z / (1 + tf.abs(z))" in update_code(load(str(path)))
        # Drawn by the strategies, for SymPy and for the parser.
        quick = settings(database=None, max_examples=2000)
        drawn = find(expressions(), lambda e: e.has(SOFTSIGN.sympy), settings=quick)
        assert drawn.has(SOFTSIGN.sympy)
        text = find(loss_sources(), lambda t: "softsign(" in t, settings=quick)
        assert "softsign(" in text
    assert "softsign" not in REGISTRY


def test_the_forms_of_each_function_agree_at_a_point():
    """Float, NumPy and mpmath forms of each function agree to a few float64 roundings."""
    for record in REGISTRY.values():
        args = (0.75, 1.5)[: record.arity]
        value = record.evaluate(*args)
        assert float(record.numpy(*args)) == pytest.approx(value, rel=1e-15), record.name
        with mpmath.workdps(30):
            assert float(record.mpmath(*map(mpmath.mpf, args))) == pytest.approx(value, rel=1e-15)


def test_huber_is_written_once_in_the_package():
    """huber's formula (its linear branch d·(|r| − d/2)) has one definition site in tutor/."""
    package = Path(__file__).parent.parent / "tutor"
    pattern = re.compile(r"half \* d|d / 2|0\.5 \* d|d\s*\*\s*\(\s*(a|abs|tf\.abs|np\.abs)")
    sites = [
        (p.name, line)
        for p in sorted(package.rglob("*.py"))
        for line in p.read_text().splitlines()
        if pattern.search(line)
    ]
    assert sites == [
        (
            "functions.py",
            "    return ops.where(ops.le(a, d), half * ops.square(r), d * (a - half * d))",
        )
    ]
