"""Problem files: the shipped ones load, and broken ones are refused with a clear message."""

from __future__ import annotations

import pytest

from tutor import ProblemError, load, loads, shipped_ids
from tutor.problem import read_text

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


# Every error a problem file can have, through the command line.

BASE = """\
title = "Learn w"
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


def _edit(*pairs: str, add: str = "") -> str:
    """Return BASE with each (old, new) pair replaced, then ``add`` appended."""
    text = BASE
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        assert old in text, old
        text = text.replace(old, new)
    return text + add


_DATA = "[data]\nx = [1.0, 2.0, 3.0]\ny = [2.0, 4.0, 6.0]\n"
_NO_XY = ("x = 3.0\ny = 6.0\n", "")

#: Each broken file, the start of the error it must report ("{file}:line: key:"), and
#: words that must follow on that line: what is wrong and how to fix it.
BAD_FILES = {
    "missing title": (_edit('title = "Learn w"\n', ""), "{file}: title:", ["missing", "add title"]),
    "title not text": (_edit('"Learn w"', "3"), "{file}:1: title:", ["not the number 3", "quotes"]),
    "empty title": (_edit('"Learn w"', '" "'), "{file}:1: title:", ["empty"]),
    "missing loss": (_edit('loss = "(w*x - y)**2"\n', ""), "{file}: loss:", ['add loss = "..."']),
    "caret": (_edit("**2", "^2"), "{file}:2: loss:", ["'^'", "'**'"]),
    "implicit product": (_edit("w*x", "2w"), "{file}:2: loss:", ["'2w'", "'2*w'"]),
    "unknown symbol": (_edit("- y)", "- Y)"), "{file}:2: loss:", ["'Y'", "Did you mean 'y'?"]),
    "function typo": (
        _edit("**2", "**2 + sigmod(w)"),
        "{file}:2: loss:",
        ["'sigmod'", "Did you mean 'sigmoid'?"],
    ),
    "hostile loss": (
        _edit('"(w*x - y)**2"', "\"__import__('os').system('touch MARKER')\""),
        "{file}:2: loss:",
        ["attribute access", "by its name alone"],
    ),
    "tower": (_edit("**2", "**9**9**9"), "{file}:2: loss:", ["stacks", "one number"]),
    "missing value": (_edit("y = 6.0\n", ""), "{file}:2: loss:", ["'y', which has no value"]),
    "value in quotes": (
        _edit("w = 0.5", 'w = "0.5"'),
        "{file}:7: values.w:",
        ["remove the quotes"],
    ),
    "value nan": (_edit("w = 0.5", "w = nan"), "{file}:7: values.w:", ["finite", "w = 0.5"]),
    "value inf": (_edit("x = 3.0", "x = -inf"), "{file}:5: values.x:", ["finite"]),
    "unused value": (
        _edit("w = 0.5\n", "w = 0.5\nq = 1.0\n"),
        "{file}:8: values.q:",
        ["never uses 'q'", "remove it"],
    ),
    "symbol named like a function": (
        _edit("w = 0.5\n", "w = 0.5\nexp = 1.0\n"),
        "{file}:8: values.exp:",
        ["name of a function", "rename"],
    ),
    "symbol named like a keyword": (
        _edit("**2", "**2 + lam", add="[constants]\nlambda = 0.1\nlam = 0.1\n"),
        "{file}:14: constants.lambda:",
        ["Python keyword", "'lam'"],
    ),
    "wrt not in the loss": (
        _edit('"(w*x - y)**2"', '"(w - y)**2"', '["w"]', '["w", "x"]'),
        "{file}:10: descent.wrt:",
        ["'x' does not appear in the loss", "Remove it from wrt"],
    ),
    "wrt without a value": (
        _edit('["w"]', '["k"]'),
        "{file}:10: descent.wrt:",
        ["'k' has no starting value", "Add k = 0.0"],
    ),
    "wrt names a data column": (
        _edit(*_NO_XY, '["w"]', '["w", "x"]', add=_DATA),
        "{file}:8: descent.wrt:",
        ["'x' is a data column", "never descended"],
    ),
    "wrt names a constant": (
        _edit("y = 6.0\n", "", '["w"]', '["y"]', add="[constants]\ny = 6.0\n"),
        "{file}:9: descent.wrt:",
        ["[constants]", "move it to [values]"],
    ),
    "wrt empty": (_edit('["w"]', "[]"), "{file}:10: descent.wrt:", ["non-empty list"]),
    "unknown key": (_edit("title", "titel"), "{file}:1: titel:", ["Did you mean 'title'?"]),
    "key in the wrong table": (
        _edit("", "", add="lr = 0.1\n"),
        "{file}:13: descent.lr:",
        ["Did you mean 'learning_rate'?"],
    ),
    "unknown table": (
        _edit("[values]", "[value]"),
        "{file}:4: value:",
        ["Did you mean 'values'?"],
    ),
    "zero learning rate": (
        _edit("0.01", "0"),
        "{file}:11: descent.learning_rate:",
        ["positive", "learning_rate = 0.01"],
    ),
    "negative learning rate": (
        _edit("0.01", "-0.5"),
        "{file}:11: descent.learning_rate:",
        ["positive"],
    ),
    "learning rate in quotes": (
        _edit("0.01", '"0.01"'),
        "{file}:11: descent.learning_rate:",
        ["must be a number", "remove the quotes"],
    ),
    "negative steps": (_edit("= 20", "= -1"), "{file}:12: descent.steps:", ["between 0"]),
    "fractional steps": (_edit("= 20", "= 2.5"), "{file}:12: descent.steps:", ["whole number"]),
    "steps written as a float": (
        _edit("= 20", "= 20.0"),
        "{file}:12: descent.steps:",
        ["write steps = 20"],
    ),
    "too many steps": (
        _edit("= 20", "= 1000001"),
        "{file}:12: descent.steps:",
        ["between 0 and 1000000"],
    ),
    "missing steps": (_edit("steps = 20\n", ""), "{file}:9: descent.steps:", ["add steps = 20"]),
    "missing descent": (
        BASE.split("[descent]")[0],
        "{file}: descent:",
        ["missing", "add a [descent] table"],
    ),
    "zero tolerance": (
        _edit("", "", add="tolerance = 0\n"),
        "{file}:13: descent.tolerance:",
        ["positive"],
    ),
    "variables typo": (
        _edit("", "", add='variables = "tensors"\n'),
        "{file}:13: descent.variables:",
        ["Did you mean 'tensor'?"],
    ),
    "unknown dtype": (
        _edit("", "", add='dtype = "float16"\n'),
        "{file}:13: descent.dtype:",
        ["'float32', 'float64'"],
    ),
    "unequal columns": (
        _edit(*_NO_XY, add=_DATA.replace("6.0]", "6.0, 8.0]")),
        "{file}:11: data:",
        ["unequal lengths", "x has 3, y has 4"],
    ),
    "too many rows": (
        _edit(*_NO_XY, add=f"[data]\nx = [{'1.0, ' * 100_000}1.0]\ny = [1.0]\n"),
        "{file}:12: data.x:",
        ["100001 rows", "limit is 100000"],
    ),
    "column not a list": (
        _edit(*_NO_XY, add="[data]\nx = 1.0\ny = [1.0]\n"),
        "{file}:12: data.x:",
        ["non-empty list"],
    ),
    "column with nan": (
        _edit(*_NO_XY, add="[data]\nx = [1.0, nan]\ny = [1.0, 2.0]\n"),
        "{file}:12: data.x[1]:",
        ["finite"],
    ),
    "column named like a value": (
        _edit("", "", add="[data]\nw = [1.0, 2.0]\n"),
        "{file}:14: data.w:",
        ["both [values] and [data]", "keep it in one"],
    ),
    "verify low above high": (
        _edit("", "", add="[verify]\nw = [10.0, -10.0]\n"),
        "{file}:14: verify.w:",
        ["above high", "write [-10, 10]"],
    ),
    "verify not finite": (
        _edit("", "", add="[verify]\nw = [-inf, 10.0]\n"),
        "{file}:14: verify.w:",
        ["finite"],
    ),
    "verify unknown symbol": (
        _edit("", "", add="[verify]\nww = [0.0, 1.0]\n"),
        "{file}:14: verify.ww:",
        ["not a symbol under [values]", "Did you mean 'w'?"],
    ),
    "verify a data column": (
        _edit(*_NO_XY, add=_DATA + "[verify]\nx = [0.0, 1.0]\n"),
        "{file}:15: verify.x:",
        ["data column", "never sampled"],
    ),
    "key after a table": (
        _edit('loss = "(w*x - y)**2"\n', "", "w = 0.5\n", 'w = 0.5\nloss = "(w*x - y)**2"\n'),
        "{file}:7: values.loss:",
        ["move it to the top"],
    ),
    "unquoted loss": (
        _edit('"(w*x - y)**2"', "(w*x - y)**2"),
        "{file}:2: not valid TOML",
        ["text values need quotes"],
    ),
    "nested hundreds deep": (
        _edit("", "", add="[verify]\nw = " + "[" * 5000 + "]" * 5000 + "\n"),
        "{file}: not valid TOML",
        ["nested hundreds deep"],
    ),
    "duplicate key": (
        _edit("w = 0.5\n", "w = 0.5\nw = 1.0\n"),
        "{file}:8: not valid TOML",
        ["twice"],
    ),
}


def test_the_bad_file_table_is_large():
    assert len(BAD_FILES) >= 25


@pytest.mark.parametrize("text, where, words", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_exit_2_naming_file_key_line_and_fix(
    run_cli, tmp_path, monkeypatch, text, where, words
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.toml"
    path.write_text(text)
    where = where.format(file=path)
    # check lists every error, one per line; the expected one is among them.
    status, out, err = run_cli("check", str(path))
    assert status == 2
    assert err.strip() == "tutor check: the file has errors"
    found = [line for line in out.splitlines() if line.startswith(where)]
    assert found, out
    assert all(word in found[0] for word in words), found[0]
    # step stops at the first error of the file, on one line, noting any more.
    status, out, err = run_cli("step", str(path))
    assert status == 2
    assert out == ""
    assert err.startswith("tutor: error: " + run_cli("check", str(path))[1].splitlines()[0])
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [path]


def test_check_lists_every_error_of_a_file(run_cli, tmp_path):
    path = tmp_path / "many.toml"
    path.write_text(
        _edit("**2", "^2", "w = 0.5", 'w = "0.5"', "0.01", "-1", "= 20", "= -3")
        + "[verify]\nw = [1.0, 0.0]\n"
    )
    status, out, _ = run_cli("check", str(path))
    keys = [line.split(": ")[1] for line in out.splitlines()]
    assert status == 2
    assert keys == ["loss", "values.w", "descent.learning_rate", "descent.steps", "verify.w"]


def test_check_reports_ok_files_and_exits_0(run_cli, tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(BASE)
    status, out, err = run_cli("check", str(path), "seed-w")
    assert status == 0
    assert err == ""
    assert out.splitlines() == [
        f"OK {path}: symbols w, x, y; wrt w; steps 20",
        f"OK {load('seed-w').source}: symbols w, x, y; wrt w; steps 20",
    ]


def test_check_exits_2_when_any_file_fails_but_reports_every_file(run_cli, tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(BASE)
    bad.write_text(_edit("0.01", "0"))
    status, out, err = run_cli("check", str(good), str(bad), "no-such-problem")
    assert status == 2
    assert out.splitlines()[0].startswith(f"OK {good}: ")
    assert out.splitlines()[1].startswith(f"{bad}:11: descent.learning_rate: ")
    assert "'no-such-problem' is neither a file nor a shipped problem" in out
    assert err.strip() == "tutor check: 2 of 3 files have errors"


def test_check_needs_a_file(run_cli):
    status, _, err = run_cli("check")
    assert status == 2
    assert "FILE" in err


def test_check_names_a_file_that_is_not_utf8(run_cli, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.replace("Learn w", "Lerne w\xfc").encode("latin-1"))
    status, out, _ = run_cli("check", str(path))
    assert status == 2
    assert out.strip() == f"{path}: the file is not UTF-8 text; save it as UTF-8"


def test_load_raises_the_first_error_and_counts_the_rest():
    with pytest.raises(ProblemError) as info:
        loads(_edit("0.01", "0", "= 20", "= -1"), source="p.toml")
    assert str(info.value).startswith("p.toml:11: descent.learning_rate: must be positive")
    assert str(info.value).endswith("(and 1 more error: 'tutor check' lists all)")
    assert (info.value.path, info.value.key, info.value.line) == (
        "p.toml",
        "descent.learning_rate",
        11,
    )


def test_read_returns_every_error_and_no_problem():
    report = read_text(_edit("0.01", "0", "= 20", "= -1"), source="p.toml")
    assert report.problem is None
    assert [e.key for e in report.errors] == ["descent.learning_rate", "descent.steps"]


def test_read_returns_the_problem_of_a_valid_file():
    report = read_text(BASE, source="p.toml", problem_id="p")
    assert report.errors == ()
    assert report.problem is not None and report.problem.id == "p"


def test_a_key_mentioned_in_a_multiline_summary_is_found_on_its_own_line():
    text = _edit("", "", "steps = 20", "steps = -1").replace(
        "loss =", 'summary = """\nTry steps = 5 or\nsteps = 50.\n"""\nloss =', 1
    )
    with pytest.raises(ProblemError) as info:
        loads(text, source="p.toml")
    assert info.value.line == 16


def test_an_unused_symbol_of_any_section_is_an_error():
    report = read_text(_edit("", "", add="[constants]\nlam = 0.1\n"), source="p.toml")
    assert [str(e) for e in report.errors] == [
        "p.toml:14: constants.lam: the loss never uses 'lam' (it uses w, x, y); "
        "remove it, or use it in the loss"
    ]
