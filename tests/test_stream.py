"""A run's updates rendered piece by piece: the same text as the printers, at a fraction
of their cost, and the digest a terminal shows of a long run."""

from __future__ import annotations

import time

import numpy as np
import pytest

import tutor
from tutor._mathtext import checking_digits, minus, plain_name, unicode
from tutor._numbers import number, side_by_side
from tutor.descent import symbolic_columns
from tutor.model import Columns, Derivation, Update
from tutor.problem import shipped_ids
from tutor.render import latex, text
from tutor.render.stream import Digest, RunText, gap, last_rows


def columns_near_start(derivation: Derivation, count: int, seed: int) -> Columns:
    """Return ``count`` updates at random values near the problem's own, as a run would
    hold them: float32 values, SymPy's gradient in float64, TF's rounded to float32."""
    problem = derivation.problem
    names = tuple(problem.values)
    rng = np.random.default_rng(seed)
    start = np.array([problem.values[n] for n in names])
    scale = np.maximum(np.abs(start), 1.0)
    values = (start + scale * rng.normal(size=(count, len(names)))).astype(np.float32)
    values = values.astype(np.float64)
    # A few exact small numbers and negative zeros, which print specially.
    values[0] = np.round(values[0])
    symbolic = symbolic_columns(derivation, names, values)
    autodiff = symbolic.astype(np.float32).astype(np.float64)
    wrt = [names.index(s) for s in problem.wrt]
    updated = (values[:, wrt] - problem.learning_rate * autodiff).astype(np.float32)
    loss = np.abs(rng.normal(size=count)) * 10
    return Columns(names, problem.wrt, values, loss, autodiff, updated.astype(np.float64), symbolic)


def printed_block(derivation: Derivation, u: Update) -> list[str]:
    """Return one update's lines as the printers write them, each formula printed anew."""
    problem = derivation.problem
    lines = [f"Update {u.step}: L = {text.num(u.loss)}"]
    values = {**problem.constants, **u.values}
    for partial in derivation.partials:
        s = partial.symbol
        result, tex_result = text.num(u.symbolic[s]), latex.tex_number(u.symbolic[s])
        plain, tex = [], []
        if partial.result.free_symbols and not problem.rows:
            digits = checking_digits(partial.result, values, number(u.symbolic[s]))
            plain = [unicode(partial.result, values, digits)]
            tex = [latex.substituted(partial.result, values, digits)]
        elif not problem.rows:
            plain, tex = [unicode(partial.result)], [latex.math(partial.result)]
        plain = [c for c in plain if c != result]
        tex = [c for c in tex if c != tex_result]
        a, b = side_by_side(u.symbolic[s], u.autodiff[s], problem.dtype)
        old, g, new = latex.update_numbers(s, u, problem.learning_rate, problem.dtype)
        g = f"({minus(g)})" if g.startswith("-") else g
        difference = text.num(u.autodiff[s] - u.symbolic[s], 3)
        lines += [
            f"  {text.partial_label(s)} = {' = '.join([*plain, result])}",
            *text.row_lines(partial, problem, values, u.symbolic[s]),
            f"    SymPy {minus(a)}   TF {minus(b)}   TF − SymPy {difference}",
            f"    LaTeX: {' = '.join([latex.partial_symbol(s), *tex, tex_result])}",
            f"  {plain_name(s)} ← {minus(old)} − {text.num(problem.learning_rate)}·{g} = "
            f"{minus(new)}",
            f"    LaTeX: {latex.update_line(s, u, problem.learning_rate, problem.dtype)}",
        ]
    return lines


@pytest.mark.parametrize("problem_id", shipped_ids())
def test_filled_template_reads_as_the_printers_write_each_update(problem_id):
    derivation = tutor.derive(tutor.load(problem_id))
    columns = columns_near_start(derivation, 40, seed=len(problem_id))
    blocks = RunText(derivation).blocks(columns, 1)
    for block, update in zip(blocks, columns.updates(), strict=True):
        assert block.rstrip("\n").split("\n") == printed_block(derivation, update)


def test_negative_values_are_parenthesised_as_the_printers_do():
    derivation = tutor.derive(tutor.load("seed-w"))
    start = dict(derivation.problem.values)
    names = tuple(start)
    values = np.array([[-3.0 if n == "x" else start[n] for n in names]])
    symbolic = symbolic_columns(derivation, names, values)
    columns = Columns(names, ("w",), values, np.array([1.0]), symbolic, values[:, [2]], symbolic)
    (block,) = RunText(derivation).blocks(columns, 7)
    assert "  ∂L/∂w = 2·(−3)·(0.5·(−3) − 6) = 45\n" in block
    assert r"2 \cdot \left(-3\right) \cdot \left(0.5 \cdot \left(-3\right) - 6\right) = 45" in block
    assert block.startswith("Update 7: ")


def test_closed_form_is_shown_once_above_the_updates():
    derivation = tutor.derive(tutor.load("seed-w"))
    assert RunText(derivation).header() == [
        "Each update substitutes its numbers into:",
        "  ∂L/∂w = 2x(wx − y)",
        r"    LaTeX: \frac{\partial L}{\partial w} = 2 x \left(w x - y\right)",
        "  w ← w − η·∂L/∂w, η = 0.01",
    ]


def test_rendering_costs_at_most_a_fifth_of_a_millisecond_an_update():
    """The budget: ≥ 5 000 updates a second once the run is computed (printing each
    formula with SymPy cost about 7 ms an update)."""
    derivation = tutor.derive(tutor.load("seed-x"))
    columns = columns_near_start(derivation, 2000, seed=1)
    run = RunText(derivation)
    costs = []
    for _ in range(3):
        start = time.perf_counter()
        run.blocks(columns, 1)
        costs.append((time.perf_counter() - start) / len(columns))
    assert sorted(costs)[1] <= 2e-4


def test_digest_shows_the_first_every_kth_and_the_last_updates():
    digest = Digest.of(1_000_000)
    shown = [
        first + row
        for first in range(1, 1_000_001, 1023)
        for row in digest.rows(first, min(1023, 1_000_001 - first))
    ]
    expected = sorted(
        {1, 2, 3, 4, 5, *range(100_000, 1_000_001, 100_000), *range(999_996, 1_000_001)}
    )
    assert shown == expected


@pytest.mark.parametrize(
    ("steps", "every"), [(10, 1), (11, 2), (25, 5), (99, 10), (150, 20), (1000, 100)]
)
def test_digest_steps_are_round_numbers_with_about_ten_between(steps, every):
    assert Digest.of(steps).every == every


def test_gap_names_the_updates_left_out():
    assert gap(5, 7) == "\n… update 6 not shown (--all shows every update)\n"
    assert gap(5, 100) == "\n… updates 6–99 not shown (--all shows every update)\n"


def test_last_rows_keeps_the_tail_across_pieces():
    derivation = tutor.derive(tutor.load("seed-w"))
    columns = columns_near_start(derivation, 12, seed=3)
    kept = None
    for first in (1, 11):  # a piece of 10, then one of 2
        piece = Columns(
            columns.names,
            columns.wrt,
            *(getattr(columns, f)[first - 1 : first + 9] for f in ("values", "loss")),
            *(getattr(columns, f)[first - 1 : first + 9] for f in ("autodiff", "updated")),
            columns.symbolic[first - 1 : first + 9],
        )
        kept = last_rows(kept, piece, first, 5)
    tail, first = kept
    assert first == 8
    assert tail.loss.tolist() == columns.loss[7:].tolist()


def test_plain_api_and_the_streamed_command_print_the_same_run(run_cli, backend):
    status, out, _ = run_cli("step", "seed-w", "--steps", "30", "--format", "plain")
    assert status == 0
    import dataclasses

    problem = dataclasses.replace(tutor.load("seed-w"), steps=30)
    assert out == text.trajectory(tutor.descend(tutor.derive(problem), backend))
