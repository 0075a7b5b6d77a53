"""The attack corpus: files built to exhaust the tutor, each finished or refused in bounds.

Each case runs the real command in a subprocess and measures its wall time and
peak memory (``os.wait4``'s ``ru_maxrss``), against ``import tensorflow``
measured the same way in the same session: the budget is 30 s beyond the
imports and 250 MB above what importing TensorFlow alone takes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SECONDS_BEYOND_IMPORTS = 30.0
MEGABYTES_ABOVE_TENSORFLOW = 250.0


def measure(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, str, float, float]:
    """Run ``args``; return (exit status, standard error, seconds, peak resident MB).

    The peak is the largest of the process and its children (``ru_maxrss`` of
    ``wait4`` covers the process; the children it waited for count in its own).
    """
    start = time.monotonic()
    process = subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    return process.returncode, err, time.monotonic() - start, usage.ru_maxrss / 1024


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[float, float]:
    """Seconds and peak MB of ``import tensorflow`` (and sympy) on this machine, now."""
    folder = tmp_path_factory.mktemp("baseline")
    code = "import sympy, tensorflow"
    status, err, seconds, megabytes = measure([sys.executable, "-c", code], folder)
    assert status == 0, err
    print(f"\nbaseline {code!r}: {seconds:.1f} s, {megabytes:.0f} MB")
    return seconds, megabytes


def ridge(k: int) -> str:
    """Ridge regression with ``k`` weights over two data points."""
    linear = " + ".join(f"w{i}*x{i}" for i in range(1, k + 1))
    penalty = " + ".join(f"w{i}**2" for i in range(1, k + 1))
    values = "\n".join(f"w{i} = {0.1 * i:.1f}" for i in range(1, k + 1))
    data = "\n".join(f"x{i} = [{i * 0.37:.2f}, {2.9 - i * 0.41:.2f}]" for i in range(1, k + 1))
    wrt = ", ".join(f'"w{i}"' for i in range(1, k + 1))
    return (
        f'title = "ridge {k}"\nloss = "({linear} - y)**2 + lam*({penalty})"\n'
        f"[values]\n{values}\n[constants]\nlam = 0.137\n[data]\n{data}\ny = [1.37, 2.91]\n"
        f"[descent]\nwrt = [{wrt}]\nlearning_rate = 0.001\nsteps = 20\n"
    )


def quadratic12() -> str:
    """A 12-parameter quadratic of about 340 characters: a ring of coupled squares."""
    terms = [f"({1 + i % 3}*p{i} - {i % 5}*p{i % 12 + 1} + {i})**2" for i in range(1, 13)]
    values = "\n".join(f"p{i} = 0.5" for i in range(1, 13))
    wrt = ", ".join(f'"p{i}"' for i in range(1, 13))
    return (
        f'title = "quadratic 12"\nloss = "{" + ".join(terms)}"\n[values]\n{values}\n'
        f"[descent]\nwrt = [{wrt}]\nlearning_rate = 0.001\nsteps = 20\n"
    )


def rows(count: int, steps: int) -> str:
    """A least-squares fit over ``count`` one-digit rows, as large as the size limit allows."""
    xs = ",".join(str(i % 10) for i in range(count))
    ys = ",".join(str((3 * i) % 10) for i in range(count))
    return (
        f'title = "rows"\nloss = "(w*x + b - y)**2"\n[values]\nw = 0.5\nb = 0.0\n'
        f"[data]\nx = [{xs}]\ny = [{ys}]\n"
        f'[descent]\nwrt = ["w", "b"]\nlearning_rate = 0.001\nsteps = {steps}\n'
    )


def symbolic_squares(count: int) -> str:
    """Squares of linear forms in three unknowns whose coefficients are all symbols.

    Six of them took minutes to analyse (simplifying the fixed point in symbols)
    while parsing and deriving took a second.
    """
    names = iter(f"c{i}" for i in range(4 * count))
    terms, values = [], []
    for _ in range(count):
        a, b, c, r = (next(names) for _ in range(4))
        terms.append(f"({a}*u + {b}*v + {c}*w - {r})**2")
        values += [a, b, c, r]
    listed = "\n".join(f"{n} = {1 + i % 7 * 0.5}" for i, n in enumerate(values))
    return (
        f'title = "squares"\nloss = "{" + ".join(terms)}"\n[values]\n{listed}\n'
        'u = 0.5\nv = 0.5\nw = 0.5\n[descent]\nwrt = ["u", "v", "w"]\n'
        "learning_rate = 0.001\nsteps = 3\n"
    )


def giant(where: str, digits: int) -> str:
    number = "9" * digits
    loss = f"(w*x - y)**2 + {number}" if where == "loss" else "(w*x - y)**2"
    x = number if where == "value" else "3.0"
    return (
        f'title = "giant"\nloss = "{loss}"\n[values]\nx = {x}\ny = 6.0\nw = 0.5\n'
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = 3\n'
    )


CASES = {
    "ridge4-show": (ridge(4), ["show", "{file}", "--format", "plain"], {0}),
    "ridge4-step": (ridge(4), ["step", "{file}", "--format", "json"], {0}),
    "ridge6-show": (ridge(6), ["show", "{file}", "--format", "plain"], {0}),
    "ridge6-step": (ridge(6), ["step", "{file}", "--format", "json"], {0}),
    "quadratic12-show": (quadratic12(), ["show", "{file}", "--format", "plain"], {0}),
    "quadratic12-step": (quadratic12(), ["step", "{file}", "--format", "json"], {0}),
    "rows-at-cap-step": (rows(100_000, 5_000), ["step", "{file}", "--format", "json"], {0}),
    "rows-verify-batch": (rows(100_000, 10), ["verify", "{file}", "--batch", "1000"], {0}),
    "rows-verify": (rows(100_000, 10), ["verify", "{file}"], {0}),
    "squares6-show": (symbolic_squares(6), ["show", "{file}", "--format", "plain"], {0}),
    "squares6-step": (symbolic_squares(6), ["step", "{file}", "--format", "latex"], {0}),
    "loss-400-digits": (giant("loss", 400), ["step", "{file}"], {2}),
    "loss-5000-digits": (giant("loss", 5000), ["step", "{file}"], {2}),
    "value-400-digits": (giant("value", 400), ["step", "{file}"], {2}),
    "value-5000-digits": (giant("value", 5000), ["step", "{file}"], {2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_attack_finishes_or_is_refused_within_time_and_memory(tmp_path, baseline, case):
    text, args, statuses = CASES[case]
    (tmp_path / "attack.toml").write_text(text)
    command = [sys.executable, "-m", "tutor", *(a.format(file="attack.toml") for a in args)]
    mark = f"tutor-attack-{uuid.uuid4()}"
    env = {**os.environ, "TUTOR_ATTACK_MARK": mark}
    status, err, seconds, megabytes = measure(command, tmp_path, env)
    base_seconds, base_megabytes = baseline
    print(f"{case}: exit {status}, {seconds:.1f} s, {megabytes:.0f} MB")
    assert status in statuses, err
    if status == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert seconds <= base_seconds + SECONDS_BEYOND_IMPORTS
    assert megabytes <= base_megabytes + MEGABYTES_ABOVE_TENSORFLOW
    assert list(tmp_path.iterdir()) == [tmp_path / "attack.toml"]  # nothing left behind
    assert processes_marked(mark) == []  # no child, fork server or TeX still running


def processes_marked(mark: str) -> list[int]:
    """Return the processes whose environment holds ``mark`` (children inherit it)."""
    time.sleep(0.5)  # a fork server ends when it reads the end of its pipe
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if mark.encode() in environ:
            found.append(int(entry.name))
    return found
