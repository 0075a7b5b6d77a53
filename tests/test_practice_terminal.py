"""``tutor practice`` driven through a real pseudo-terminal, as a student types."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

TIMEOUT = 60  # seconds; TensorFlow's import alone takes several on a small machine
QUESTION = "∂L/∂w = ?"


def _spawn(*args: str) -> pexpect.spawn:
    env = {"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]  # the checkout under test
    return pexpect.spawn(
        sys.executable,
        ["-m", "tutor", "practice", "seed-w", *args],
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
        env=env,
    )


@pytest.fixture
def session():
    child = _spawn("--updates", "0")
    child.expect_exact(QUESTION)
    child.expect_exact("> ")
    yield child
    child.close(force=True)


def _answer(child: pexpect.spawn, text: str, reply: str) -> str:
    """Type ``text`` and return what the tutor replied up to ``reply`` included."""
    child.sendline(text)
    child.expect_exact(reply)
    return child.before + reply


def _ends(child: pexpect.spawn, status: int) -> str:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == status
    return child.before


def test_right_first_time_ends_with_a_perfect_summary(session):
    _answer(session, "2*x*(w*x - y)", "Correct: ∂L/∂w = 2x(wx − y).")
    out = _ends(session, 0)
    assert "right first time: 1 of 1" in out
    assert "hints used: 0" in out
    assert "mistakes: none" in out


def test_wrong_answers_are_named_and_the_question_is_asked_again(session):
    text = _answer(session, "2*(w*x - y)", "Multiply by it.")
    assert "at x = 3, y = 6, w = 0.5 your answer gives −9, but ∂L/∂w = −27." in text
    assert "Missing chain-rule factor x" in text
    session.expect_exact("> ")
    _answer(session, "-2*x*(w*x - y)", "Sign error: your answer is −1 times the derivative.")
    session.expect_exact("> ")
    _answer(session, "2*x*(w*x + y)", "Try again, or type hint.")
    session.expect_exact("> ")
    _answer(session, "2*x*(w*x - y)", "Correct")
    out = _ends(session, 0)
    assert "right first time: 0 of 1" in out
    assert "mistakes: missing chain-rule factor 1, other mistake 1, sign error 1" in out


def test_unsimplified_is_accepted_and_said_so(session):
    text = _answer(session, "2*w*x**2 - 2*x*y", "it equals 2x(wx − y).")
    assert "Correct, but not simplified" in text
    assert "right first time: 1 of 1" in _ends(session, 0)


def test_hint_names_the_chain_rule_and_is_counted(session):
    text = _answer(session, "hint", "use the chain rule")
    assert "The outer function is a square" in text
    session.expect_exact("> ")
    _answer(session, "step", "[chain]")
    session.expect_exact("> ")
    _answer(session, "2*x*(w*x - y)", "Correct")
    out = _ends(session, 0)
    assert "hints used: 2" in out
    assert "right first time: 0 of 1" in out


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        ("__import__('os').system('echo owned')", "attribute access"),
        ("w^2", "write powers with '**'"),
        ("2w", "write '2*w'"),
        ("ln(w)", "Did you mean 'log'?"),
        ("what?", "not a valid expression"),
    ],
)
def test_garbage_is_refused_and_not_counted(session, garbage, reason):
    text = _answer(session, garbage, reason)
    assert "Cannot read that:" in text
    assert "owned" not in text.replace(garbage, "")
    session.expect_exact("> ")
    _answer(session, "2*x*(w*x - y)", "Correct")
    out = _ends(session, 0)
    assert "right first time: 1 of 1" in out
    assert "mistakes: none" in out


def test_ctrl_d_ends_with_the_summary_and_status_0(session):
    session.sendeof()
    out = _ends(session, 0)
    assert "Practice summary (ended early):" in out
    assert "right first time: 0 of 1" in out


def test_ctrl_c_prints_the_summary_and_exits_130(session):
    _answer(session, "-2*x*(w*x - y)", "Sign error")
    session.expect_exact("> ")
    session.sendintr()
    out = _ends(session, 130)
    assert "Practice summary (interrupted):" in out
    assert "mistakes: sign error 1" in out
    assert "Traceback" not in out


def test_the_first_update_accepts_077_and_refuses_078():
    child = _spawn("--updates", "1")
    try:
        child.expect_exact(QUESTION)
        _answer(child, "2*x*(w*x - y)", "Correct")
        child.expect_exact("Update 1: at x = 3, y = 6, w = 0.5")
        child.expect_exact("> ")
        _answer(child, "-27", "Correct: ∂L/∂w = −27.")
        child.expect_exact("> ")
        text = _answer(child, "0.78", "work it out to 2 decimals.")
        assert "Not quite: w − η·∂L/∂w = 0.5 − 0.01·(−27)" in text
        child.expect_exact("> ")
        _answer(child, "0.77", "Correct: w = 0.77.")
        out = _ends(child, 0)
        assert "right first time: 2 of 3" in out
    finally:
        child.close(force=True)
