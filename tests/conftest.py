"""Hypothesis profiles and shared fixtures.

Profiles: ``dev`` (fast, for editing) and ``ci`` (thorough; extends
Hypothesis' built-in ``ci`` profile, which ``CI=true`` loads). Choose one with
``HYPOTHESIS_PROFILE``; when it is unset, Hypothesis' own choice stands
(``ci`` under ``CI=true``, else ``default``), with our ``ci`` settings on top.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

# No profile has a deadline: the tests check behaviour, benchmarks/run.py measures time.
settings.register_profile("default", deadline=None)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=200, deadline=None)
# Loading a profile by name picks up the registration above, even when
# Hypothesis loaded its built-in "ci" profile before this file ran.
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or settings._current_profile or "default"
)


@pytest.fixture
def run_cli(capsys):
    """Run ``tutor`` in-process; return (exit status, stdout, stderr)."""
    from tutor.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@pytest.fixture
def refuses(run_cli, tmp_path, monkeypatch):
    """Return a check that ``tutor ARGS`` is refused as bad input: exit 2, one line on
    stderr naming ``expected``, no traceback, nothing on stdout, no file written."""
    monkeypatch.chdir(tmp_path)

    def check(args: list[str], expected: str) -> None:
        status, out, err = run_cli(*args)
        assert status == 2
        assert out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert expected in err
        assert "Traceback" not in err
        assert list(tmp_path.iterdir()) == []

    return check


@pytest.fixture(scope="session")
def backend():
    """The TensorFlow gradient backend (imports TensorFlow once per session)."""
    from tutor.autodiff import TensorFlowBackend

    return TensorFlowBackend()


def pytest_report_header(config):
    return f"hypothesis profile: {settings._current_profile}; python {sys.version.split()[0]}"
