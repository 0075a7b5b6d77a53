"""Problem files: the shipped ones load, and broken ones are refused with a clear message."""

from __future__ import annotations

import pytest

from tutor import ProblemError, load, loads, shipped_ids

GOOD = """
title = "t"
loss = "(w*x - y)**2"
[values]
x = 3.0
y = 6.0
w = 0.5
[descent]
wrt = ["w"]
learning_rate = 0.01
steps = 20
"""


def test_every_shipped_problem_loads():
    for problem_id in shipped_ids():
        problem = load(problem_id)
        assert problem.id == problem_id
        assert set(problem.wrt) <= set(problem.values)


def test_defaults_follow_the_design():
    problem = loads(GOOD)
    assert (problem.variables, problem.dtype, problem.tolerance) == ("tensor", "float32", None)


BROKEN = {
    "missing loss": (GOOD.replace('loss = "(w*x - y)**2"', ""), "loss: missing"),
    "caret": (GOOD.replace("**2", "^2"), "'**'"),
    "unknown symbol": (GOOD.replace("w*x", "w*z"), "'z'"),
    "zero rate": (GOOD.replace("0.01", "0"), "must be positive"),
    "negative steps": (GOOD.replace("steps = 20", "steps = -1"), "between 0"),
    "typo key": (GOOD.replace("steps = 20", "steps = 20\nlearning_rat = 1"), "Did you mean"),
    "wrt missing value": (GOOD.replace('["w"]', '["q"]'), "'q' has no starting value"),
    "not toml": ("title = ", "not valid TOML"),
}


@pytest.mark.parametrize("text, expected", BROKEN.values(), ids=BROKEN.keys())
def test_broken_files_are_refused_by_name(text, expected):
    with pytest.raises(ProblemError) as info:
        loads(text, source="p.toml")
    assert expected in str(info.value)
    assert str(info.value).startswith("p.toml")


def test_error_names_the_line_of_the_key():
    with pytest.raises(ProblemError) as info:
        loads(GOOD.replace("steps = 20", "steps = -1"), source="p.toml")
    assert info.value.line == 11
