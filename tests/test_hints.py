"""Hints a new user meets: the same 'did you mean' everywhere, help where help is asked for."""

from __future__ import annotations

import pytest

from tutor.render.terminal import prose

MISSPELT = """\
title = "t"
loss = "(w*x - y)**2"
[values]
x = 3.0
y = 6.0
w = 0.5
[descent]
wrt = ["w"]
learnig_rate = 0.01
steps = 3
"""


@pytest.mark.parametrize("command", [["step"], ["show"], ["handout"], ["check"]])
def test_a_misspelt_key_gets_the_same_did_you_mean_everywhere(run_cli, tmp_path, command):
    path = tmp_path / "p.toml"
    path.write_text(MISSPELT)
    status, out, err = run_cli(*command, str(path))
    assert status == 2
    assert "did you mean 'learning_rate'?" in (out + err).lower()


def test_an_empty_value_is_named_as_missing(run_cli, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(MISSPELT.replace("learnig_rate = 0.01", "learning_rate = "))
    status, out, err = run_cli("step", str(path))
    assert status == 2
    assert err.strip() == (
        f"tutor: error: {path}:9: learning_rate: the value is missing after '='; "
        'write a value, e.g. learning_rate = 0.5 or, for text, learning_rate = "..."'
    )


def test_bare_tutor_prints_the_help_and_exits_0(run_cli):
    status, out, err = run_cli()
    assert status == 0 and err == ""
    assert out.startswith("Usage: tutor [OPTIONS] COMMAND [ARGS]...")
    assert "step" in out and "Commands:" in out


@pytest.mark.parametrize(
    ("flag", "expected"),
    [(["--seed", "3"], "--seed goes with --variants N"), (["--answers"], "--answers goes with")],
)
def test_flags_that_need_variants_refuse_alike(refuses, flag, expected):
    refuses(["handout", "seed-w", *flag], expected)


def test_step_help_says_the_file_sets_the_defaults(run_cli):
    status, out, err = run_cli("step", "--help")
    flat = " ".join(out.split())
    assert "Default: the file's dtype (float32 when it names none)" in flat
    assert "Default: the file's variables (tensor when it names none)" in flat
    assert "Default: float32." not in flat


def test_a_hard_wrapped_summary_becomes_paragraphs_for_rich():
    summary = "The notebook's descent:\nx = 3 and y = 6.\n\nA second\nparagraph.\n"
    assert prose(summary) == ["The notebook's descent: x = 3 and y = 6.", "A second paragraph."]
