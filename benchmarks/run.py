"""Measure tutor's performance budgets, each next to its baseline in the same run.

Run from the repository root: ``python benchmarks/run.py [--repeat N]``. Prints a
table of medians and ratios, and exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTOR = [sys.executable, "-m", "tutor"]
ENV = {**os.environ, "NO_COLOR": "1"}


def wall(command: list[str], repeat: int) -> float:
    """Return the median wall time of running ``command`` cold, ``repeat`` times."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=ENV, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def imports_tensorflow(args: list[str]) -> bool:
    """Return whether running tutor with ``args`` imports TensorFlow (``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tutor", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    return any(line.rstrip().endswith("| tensorflow") for line in done.stderr.splitlines())


def per_step_notebook(steps: int) -> float:
    """Return seconds per update of the notebook's own eager loop (cell 6), its print included.

    The lines go to an in-memory file, so the terminal's speed is not measured.
    """
    from tutor.autodiff import tensorflow

    tf = tensorflow()
    sink = io.StringIO()
    x = tf.convert_to_tensor(3.0)
    y = tf.convert_to_tensor(6.0)
    w = tf.convert_to_tensor(0.5)
    start = time.perf_counter()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = (w * x - y) ** 2
        grad_loss = tape.gradient(loss, x)
        x -= 0.1 * grad_loss
        print(f"Loss = {loss.numpy():05.2f},  x = {x.numpy():05.2f} ", file=sink)
    return (time.perf_counter() - start) / steps


def per_step_tutor(steps: int) -> float:
    """Return seconds per update of ``tutor step seed-x --steps N --format json``.

    The command runs in this process, its output captured, so TensorFlow's
    import is not counted; everything after it is: parsing the command line,
    loading and deriving, tracing the compiled loop (each run traces anew, as
    a new process would), running it, SymPy's gradients and the JSON Lines.
    """
    from tutor.cli import main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = main(["step", "seed-x", "--steps", str(steps), "--format", "json"])
    elapsed = time.perf_counter() - start
    if status != 0 or out.getvalue().count("\n") != steps + 1:
        raise RuntimeError(f"tutor step seed-x --steps {steps} failed (exit {status})")
    return elapsed / steps


def derivation_shown(repeat: int) -> float:
    """Return the median time until ``tutor step seed-w`` shows its derivation in a terminal.

    The command runs in a pseudo-terminal, in rich (its default there), and the
    clock stops when the derivation's closed form appears.
    """
    import pexpect

    env = {k: v for k, v in ENV.items() if k != "NO_COLOR"}
    times = []
    for _ in range(repeat):
        child = pexpect.spawn(
            TUTOR[0], [*TUTOR[1:], "step", "seed-w"], env=env, cwd=str(ROOT), timeout=120
        )
        start = time.perf_counter()
        child.expect("2x\\(wx − y\\)".encode())
        times.append(time.perf_counter() - start)
        child.expect(pexpect.EOF)
        child.close()
    return statistics.median(times)


def rendering_rates(repeat: int) -> tuple[float, float]:
    """Return plain's and rich's updates per second, rendering a computed 10 000-update run.

    The run is computed first; only the text is timed: each update's lines for
    plain, and those lines printed by rich to an in-memory terminal for rich.
    """
    import dataclasses

    from rich.console import Console

    from tutor import derive, descend, load
    from tutor.autodiff import TensorFlowBackend
    from tutor.render import terminal
    from tutor.render.stream import RunText

    problem = dataclasses.replace(load("seed-x"), steps=10_000)
    traj = descend(derive(problem), TensorFlowBackend())
    run = RunText(traj.derivation)

    def plain() -> object:
        return run.blocks(traj.columns, 1)

    def rich() -> None:
        console = Console(file=io.StringIO(), width=120, force_terminal=True)
        console.print(terminal.updates(run.blocks(traj.columns, 1)), crop=False)

    return traj.steps / in_process(plain, repeat), traj.steps / in_process(rich, repeat)


def peak_memory(command: list[str]) -> int:
    """Return the peak resident memory (bytes) of ``command``, its output discarded."""
    import tempfile

    with tempfile.NamedTemporaryFile() as record:
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", record.name, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            env=ENV,
            cwd=ROOT,
        )
        return int(Path(record.name).read_text().split()[-1]) * 1024


def in_process(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()
    r = args.repeat
    rows: list[tuple[str, str, str, bool]] = []

    def add(name: str, measured: str, budget: str, ok: bool) -> None:
        rows.append((name, measured, budget, ok))
        print(f"{'ok ' if ok else 'MISS'} {name}: {measured} (budget {budget})", flush=True)

    base_sympy = wall(python("import sympy"), r)
    base_tf = wall(python("import tensorflow"), r)
    add(
        "import sympy / import tensorflow (baselines)",
        f"{base_sympy:.2f} s / {base_tf:.2f} s",
        "-",
        True,
    )
    for cmd in (
        ["list"],
        ["show", "seed-w"],
        ["check", *sorted(str(p) for p in (ROOT / "problems").glob("*.toml"))],
    ):
        uses_tf = imports_tensorflow(cmd)
        add(f"tutor {cmd[0]} imports TensorFlow", str(uses_tf), "False", not uses_tf)
    show = wall([*TUTOR, "show", "seed-w", "--format", "plain"], r)
    add(
        "tutor show seed-w − import sympy",
        f"{show - base_sympy:+.2f} s (ratio {show / base_sympy:.2f})",
        "≤ +1 s",
        show - base_sympy <= 1,
    )
    shown = derivation_shown(r)
    add(
        "tutor step seed-w, derivation shown (rich, pty) − import sympy",
        f"{shown - base_sympy:+.2f} s",
        "≤ +0.5 s",
        shown - base_sympy <= 0.5,
    )
    step = wall([*TUTOR, "step", "seed-w", "--format", "seed"], r)
    add(
        "tutor step seed-w − import tensorflow",
        f"{step - base_tf:+.2f} s (ratio {step / base_tf:.2f})",
        "≤ +1 s",
        step - base_tf <= 1,
    )
    verify = wall([*TUTOR, "verify", "seed-w", "--batch", "1000000"], r)
    add(
        "tutor verify seed-w --batch 1000000 − import tensorflow",
        f"{verify - base_tf:+.2f} s (ratio {verify / base_tf:.2f})",
        "≤ +3 s",
        verify - base_tf <= 3,
    )
    per_step_notebook(50)  # TensorFlow's first eager operations are slow once per process
    per_step_tutor(200)  # so is its first traced function
    eager = statistics.median(per_step_notebook(1000) for _ in range(r))
    compiled = statistics.median(per_step_tutor(10_000) for _ in range(r))
    add(
        "per update: notebook eager loop / tutor --steps 10000 --format json",
        f"{eager * 1e6:.0f} µs / {compiled * 1e6:.1f} µs (×{eager / compiled:.1f})",
        "≥ ×20",
        eager / compiled >= 20,
    )
    plain_rate, rich_rate = rendering_rates(r)
    add(
        "rendering a computed run: plain / rich (updates/s)",
        f"{plain_rate:,.0f} / {rich_rate:,.0f}",
        "≥ 5,000",
        min(plain_rate, rich_rate) >= 5000,
    )
    base_memory = peak_memory(python("import tensorflow"))
    piped = peak_memory([*TUTOR, "step", "seed-x", "--steps", "200000", "--format", "plain"])
    add(
        "peak memory: step seed-x --steps 200000 --format plain − import tensorflow",
        f"{(piped - base_memory) / 2**20:+.0f} MB",
        "≤ +250 MB",
        piped - base_memory <= 250 * 2**20,
    )
    derive_worst, handout_worst = _derivation_and_handout(r)
    add(
        "derivation, slowest shipped problem (after imports)",
        f"{derive_worst:.3f} s",
        "≤ 0.5 s",
        derive_worst <= 0.5,
    )
    add(
        "handout .tex, slowest shipped problem (after imports)",
        f"{handout_worst:.3f} s",
        "≤ 0.5 s",
        handout_worst <= 0.5,
    )
    print()
    table = [("measure", "median", "budget", "ok")]
    table += [(name, measured, budget, "✓" if ok else "✗") for name, measured, budget, ok in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    for n, line in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0 if all(ok for *_, ok in rows) else 1


def _derivation_and_handout(repeat: int) -> tuple[float, float]:
    """Return the slowest derivation and the slowest handout rendering over shipped problems."""
    import sympy

    from tutor import derive, load, shipped_ids
    from tutor.autodiff import TensorFlowBackend
    from tutor.handout import build
    from tutor.render.handout import render

    backend = TensorFlowBackend()
    derive_worst = handout_worst = 0.0
    for problem_id in shipped_ids():
        problem = load(problem_id)

        def cold_derive(p=problem) -> None:
            sympy.core.cache.clear_cache()  # SymPy's cache makes a second derivation cheap
            derive(p)

        derive_worst = max(derive_worst, in_process(cold_derive, repeat))
        handout_worst = max(
            handout_worst, in_process(lambda p=problem: render(build([p], backend)), repeat)
        )
    return derive_worst, handout_worst


if __name__ == "__main__":
    sys.exit(main())
