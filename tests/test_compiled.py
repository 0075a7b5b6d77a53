"""Long runs: one compiled TensorFlow loop, bit for bit the eager loop, traced once.

Every comparison here is exact (``bits``): the compiled loop runs the same
TensorFlow operations in the same order as the eager one, so no tolerance is
justified.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tutor import derive, descend, load, shipped_ids
from tutor.autodiff import TensorFlowBackend
from tutor.render import jsonl


def bits(array):
    """The array's float64 bit patterns: equal bits, equal numbers (NaN and −0 included)."""
    return np.ascontiguousarray(array, dtype=np.float64).view(np.int64)


def same_columns(a, b) -> bool:
    return (a.names, a.wrt) == (b.names, b.wrt) and all(
        np.array_equal(bits(getattr(a, f)), bits(getattr(b, f)))
        for f in ("values", "loss", "autodiff", "updated")
    )


@pytest.fixture
def eager():
    """A backend that never compiles: the notebook's loop, one eager update at a time."""
    backend = TensorFlowBackend()
    backend.compile_from = 10**9
    return backend


def long(problem_id: str, **changes):
    """The shipped problem with a step count just past ``compile_from``, not a multiple of
    the unrolling, so the last block of the compiled loop is cut."""
    steps = TensorFlowBackend.compile_from + TensorFlowBackend.unroll // 2 + 1
    return dataclasses.replace(load(problem_id), **{"steps": steps, **changes})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_problem_compiles_to_the_eager_iterates(backend, eager, problem_id, dtype):
    """Graph mode is stricter than eager (constants must carry the dtype); every loss traces."""
    problem = long(problem_id, dtype=dtype)
    compiled = backend.record(problem, problem.values, problem.steps)
    assert len(compiled) == problem.steps
    assert same_columns(compiled, eager.record(problem, problem.values, problem.steps))


@pytest.mark.parametrize("mode", ["tensor", "variable"])
def test_a_descent_is_traced_once_and_reused_for_any_start_rate_and_length(mode):
    backend = TensorFlowBackend()
    problem = long("seed-w", variables=mode)
    runs = [
        (problem.values, problem.steps, problem.learning_rate),
        ({**problem.values, "w": -1.25}, problem.steps + 37, 0.02),
        ({**problem.values, "x": 2.0}, problem.steps * 3, 0.005),
    ]
    eager = TensorFlowBackend()
    eager.compile_from = 10**9
    for values, steps, rate in runs:
        changed = dataclasses.replace(problem, values=values, steps=steps, learning_rate=rate)
        got = backend.record(changed, values, steps)
        assert same_columns(got, eager.record(changed, values, steps))
    assert backend.traces == 1


def test_a_held_value_is_rounded_to_the_dtype_as_the_eager_run_holds_it(backend, eager):
    problem = long("seed-w", values={"w": 0.5, "x": 0.1, "y": 6.0})
    compiled = backend.record(problem, problem.values, problem.steps)
    assert compiled.values[0].tolist() == [0.5, float(np.float32(0.1)), 6.0]
    assert same_columns(compiled, eager.record(problem, problem.values, problem.steps))


@pytest.mark.parametrize(
    ("problem_id", "changes"),
    [
        ("seed-w", {"learning_rate": 1e6}),  # the loss overflows at update 4
        ("seed-w", {"learning_rate": 0.2}),  # grows, overflows at update 46
        ("seed-x", {}),  # runs to the end
        ("least-squares", {}),  # a mean over data rows
        ("huber", {}),  # converges after 39 updates
    ],
)
def test_a_compiled_run_ends_as_the_eager_run_does(backend, eager, problem_id, changes):
    """The compiled loop runs every step; the first non-finite or converged update is
    found afterwards, and the trajectory is the eager one's, reason and all."""
    derivation = derive(long(problem_id, **changes))
    fast, slow = descend(derivation, backend), descend(derivation, eager)
    for field in ("status", "reason", "final_loss"):
        assert getattr(fast, field) == getattr(slow, field)
    assert same_columns(fast.columns, slow.columns)
    assert np.array_equal(bits(fast.columns.symbolic), bits(slow.columns.symbolic))
    assert fast.updates == slow.updates


def test_an_overflow_is_reported_at_its_update(backend):
    traj = descend(derive(long("seed-w", learning_rate=1e6)), backend)
    assert traj.status == "diverged"
    assert traj.reason.startswith("at update 4 the loss overflowed to inf")
    assert traj.steps == 4


@pytest.mark.parametrize(
    ("problem_id", "changes"),
    [
        ("seed-x", {}),
        ("seed-w", {"learning_rate": 1e6}),  # a line with "inf"
        ("seed-w", {"learning_rate": 0.2, "dtype": "float64"}),
        ("logistic", {}),
        ("least-squares", {}),
        ("seed-linear", {"steps": 0}),
        ("seed-w", {"values": {"w": -0.0, "x": 0.0, "y": 0.0}}),  # signed zeros
    ],
)
def test_json_lines_from_columns_are_those_of_json_dumps(backend, problem_id, changes):
    """The fast writer gives, byte for byte, ``json.dumps`` of every update's object."""
    traj = descend(derive(long(problem_id, **changes)), backend)
    expected = [
        json.dumps(jsonl.update(u), ensure_ascii=False, allow_nan=False) for u in traj.updates
    ]
    assert jsonl.updates(traj.columns) == expected


@pytest.mark.parametrize("chunk", [1, 7, 37])
@pytest.mark.parametrize(
    ("problem_id", "changes"),
    [
        ("seed-w", {"learning_rate": 0.2}),  # overflows at update 46
        ("huber", {}),  # converges after 39 updates
        ("seed-variable", {}),
        ("least-squares", {"dtype": "float64"}),
    ],
)
def test_a_run_in_pieces_is_the_run_in_one(eager, chunk, problem_id, changes):
    """Each call of the compiled loop starts where the last ended: pieces of any size give
    the eager run, and a stop inside a later piece is found there."""
    backend = TensorFlowBackend()
    backend.chunk = chunk
    derivation = derive(long(problem_id, **changes))
    seen = []
    traj = descend(derivation, backend, on_updates=lambda c, first: seen.append((first, c)))
    slow = descend(derivation, eager)
    assert (traj.status, traj.reason) == (slow.status, slow.reason)
    assert same_columns(traj.columns, slow.columns)
    assert [first for first, _ in seen] == list(range(1, traj.steps + 1, chunk))
    assert sum(len(c) for _, c in seen) == traj.steps
    assert backend.traces == 1


def test_stopping_early_stops_the_worker(backend):
    """A reader that goes away (a closed pipe) ends the run: no thread keeps computing."""
    import threading

    def gone(columns, first):
        raise BrokenPipeError

    problem = dataclasses.replace(load("seed-x"), steps=50 * TensorFlowBackend.chunk)
    with pytest.raises(BrokenPipeError):
        descend(derive(problem), backend, on_updates=gone)
    assert not any(t.name == "tutor-descent" for t in threading.enumerate())


def test_json_written_piece_by_piece_equals_the_whole_trajectory(run_cli, backend):
    status, out, _ = run_cli("step", "seed-x", "--steps", "3000", "--format", "json")
    problem = dataclasses.replace(load("seed-x"), steps=3000)
    assert status == 0
    assert out == jsonl.trajectory(descend(derive(problem), backend))
