"""``tutor step --interactive`` driven through a real pseudo-terminal."""

from __future__ import annotations

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
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
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
