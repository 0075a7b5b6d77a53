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
