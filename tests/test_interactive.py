"""``tutor step --interactive`` driven through a real pseudo-terminal."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

#: Each test drives a real terminal session, TensorFlow's import included.
pytestmark = pytest.mark.slow

TIMEOUT = 60  # seconds; TensorFlow's import alone takes several on a small machine


@pytest.fixture
def session():
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tutor", "step", "seed-w", "--steps", "5", "--interactive", "--format", "plain"],
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
        env={
            "NO_COLOR": "1",
            "PATH": "/usr/bin:/bin",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            # The checkout under test, when it is not the installed one.
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )
    yield child
    child.close(force=True)


def test_enter_shows_exactly_one_more_update(session):
    session.expect(r"Update 1: ")
    session.expect(r"\[Enter\] next update")
    assert "Update 2:" not in session.before
    session.send("\r")
    session.expect(r"Update 2: ")
    session.expect(r"\[Enter\] next update")
    assert "Update 3:" not in session.before


def test_q_quits_with_status_zero(session):
    session.expect(r"\[Enter\] next update")
    session.send("q")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0
    assert "Update 2:" not in session.before


def test_a_runs_to_the_end(session):
    session.expect(r"\[Enter\] next update")
    session.send("a")
    session.expect(r"Update 5: ")
    session.expect(r"completed: 5 updates")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0


def test_three_enters_typed_at_once_advance_three_updates(session):
    """Keys typed ahead arrive in one read; each must count, in order."""
    session.expect(r"\[Enter\] next update")
    session.send("\r\r\r")
    session.expect(r"Update 4: ")
    session.expect(r"\[Enter\] next update")
    assert "Update 5:" not in session.before


def test_q_and_enter_typed_at_once_quit_with_status_zero(session):
    session.expect(r"\[Enter\] next update")
    session.send("q\r")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0
    assert "Update 2:" not in session.before


def test_ctrl_c_at_the_prompt_says_how_far_it_got_and_exits_130(session):
    session.expect(r"\[Enter\] next update")
    session.send("\r")
    session.expect(r"Update 2: ")
    session.expect(r"\[Enter\] next update")
    session.sendintr()
    session.expect(r"interrupted after update 2 of 5 \(stopped by Ctrl-C\)")
    session.expect(r"completed: 5 updates")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 130
