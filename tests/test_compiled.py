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

from tutor import derive, descend, load, loads, shipped_ids
from tutor.autodiff import TensorFlowBackend
from tutor.model import Columns
from tutor.render import jsonl


def bits(array):
    """The array's float64 bit patterns: equal bits, equal numbers (NaN and −0 included)."""
    return np.ascontiguousarray(array, dtype=np.float64).view(np.int64)


def record(backend, problem, values, steps) -> Columns:
    """All ``steps`` updates of a run as one table, read through the backend's stream."""
    return Columns.concat(list(backend.stream(problem, values, steps)), tuple(values), problem.wrt)


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


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("problem_id", shipped_ids())
def test_every_shipped_problem_compiles_to_the_eager_iterates(backend, eager, problem_id, dtype):
    """Graph mode is stricter than eager (constants must carry the dtype); every loss traces."""
    problem = long(problem_id, dtype=dtype)
    compiled = record(backend, problem, problem.values, problem.steps)
    assert backend._loop(problem, tuple(backend._held(problem, problem.values))).exact
    assert len(compiled) == problem.steps
    assert same_columns(compiled, record(eager, problem, problem.values, problem.steps))


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
        got = record(backend, changed, values, steps)
        assert same_columns(got, record(eager, changed, values, steps))
    assert backend.traces == 1


def test_a_held_value_is_rounded_to_the_dtype_as_the_eager_run_holds_it(backend, eager):
    problem = long("seed-w", values={"w": 0.5, "x": 0.1, "y": 6.0})
    compiled = record(backend, problem, problem.values, problem.steps)
    assert compiled.values[0].tolist() == [0.5, float(np.float32(0.1)), 6.0]
    assert same_columns(compiled, record(eager, problem, problem.values, problem.steps))


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


@pytest.mark.parametrize("mode", ["tensor", "variable"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "loss",
    [
        "(w/3 - 1)**2",  # constant folding would make it w·(1/3)
        "((w + 0.1) + 0.2)**2",  # ... and w + (0.1 + 0.2)
        "(w/sqrt(0.5) - 1)**2",
        "(w/(2/E) - 1)**2",
        "softplus(2)*w**2 - w",
        "w**-1 + w",
    ],
)
def test_constant_subexpressions_are_not_rewritten_in_the_compiled_loop(
    backend, eager, loss, dtype, mode
):
    text = (
        f'title = "t"\nloss = "{loss}"\n[values]\nw = 0.5\n'
        f'[descent]\nwrt = ["w"]\nlearning_rate = 0.01\nsteps = {long("seed-w").steps}\n'
        f'dtype = "{dtype}"\nvariables = "{mode}"\n'
    )
    problem = loads(text, source="t.toml")
    compiled = record(backend, problem, problem.values, problem.steps)
    assert same_columns(compiled, record(eager, problem, problem.values, problem.steps))


def test_two_runs_at_once_on_one_backend_keep_their_own_values():
    """In the "variable" style a traced loop updates its own Variables; two runs of one
    problem, read in turns, must not see each other's. Each is compared with the same run
    alone on another backend (alone, compiled equals eager: tested above)."""
    backend = TensorFlowBackend()
    first = long("seed-variable", steps=20 * backend.chunk)
    second = dataclasses.replace(first, values={**first.values, "w": -7.0})
    a = backend.stream(first, first.values, first.steps)
    b = backend.stream(second, second.values, second.steps)
    pieces = {id(a): [], id(b): []}
    for pa, pb in zip(a, b, strict=True):
        pieces[id(a)].append(pa)
        pieces[id(b)].append(pb)
    for run, problem in ((a, first), (b, second)):
        got = Columns.concat(pieces[id(run)], tuple(problem.values), problem.wrt)
        alone = record(TensorFlowBackend(), problem, problem.values, problem.steps)
        assert same_columns(got, alone)


def test_data_that_differ_only_in_the_sign_of_zero_get_their_own_loop(eager):
    backend = TensorFlowBackend()
    text = (
        'title = "t"\nloss = "(w - sigmoid(1/x))**4"\n[values]\nw = 0.5\n'
        '[data]\nx = [{zero}, 1.0]\n[descent]\nwrt = ["w"]\nlearning_rate = 0.01\n'
        f"steps = {long('seed-w').steps}\n"
    )
    for zero in ("-0.0", "0.0"):
        problem = loads(text.format(zero=zero), source="t.toml")
        compiled = record(backend, problem, problem.values, problem.steps)
        assert same_columns(compiled, record(eager, problem, problem.values, problem.steps))
    assert backend.traces == 2


@pytest.mark.parametrize("steps", [5, long("seed-w").steps])
def test_signed_zeros_are_kept_eager_and_compiled(backend, steps):
    """TensorFlow caches scalar tensors made from Python floats, 0.0 and −0.0 as one."""
    problem = dataclasses.replace(
        long("seed-w"), steps=steps, values={"w": -0.0, "x": -0.0, "y": 0.0}
    )
    _ = backend.gradient(problem, {"w": 1.0, "x": -0.0, "y": -0.0})  # fill the cache with −0
    first = record(backend, problem, problem.values, steps).values[0]
    assert np.signbit(first).tolist() == [True, True, False]


def test_the_worker_runs_at_most_one_piece_ahead(monkeypatch):
    """While the caller holds the first piece, the worker hands over one more and computes a
    third, which waits: three pieces begun, not all 200."""
    import queue
    import time

    from tutor import autodiff

    begun = []

    class Counted(queue.Queue):
        def put(self, item, block=True, timeout=None):
            begun.append(item)
            super().put(item, block, timeout)

    monkeypatch.setattr(autodiff.queue, "Queue", Counted)
    backend = TensorFlowBackend()
    backend.chunk = 10
    problem = long("seed-x", steps=2000)
    run = backend.stream(problem, problem.values, problem.steps)
    next(run)
    time.sleep(0.5)  # ample time to compute all 200 pieces if nothing held the worker back
    assert len(begun) <= 3
    assert sum(1 for _ in run) == 199
    assert len(begun) == 200
    assert backend._traced and all(not t.lock.locked() for t in backend._traced.values())


def test_a_value_too_large_for_float32_becomes_inf_without_a_warning(backend, recwarn):
    problem = long("seed-w", values={"w": 0.5, "x": 1e39, "y": 6.0})
    compiled = record(backend, problem, problem.values, problem.steps)
    assert compiled.values[0].tolist()[1] == float("inf")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_trajectories_of_one_run_are_equal(backend):
    derivation = derive(long("seed-x"))
    assert descend(derivation, backend) == descend(derivation, backend)


def test_a_gradient_summing_three_terms_runs_eagerly_to_stay_identical(eager):
    """v is used three times: its gradient is AddN(1, 1, t). Eager AddN adds in order;
    in a graph it may start from t's buffer, (t + 1) + 1, one rounding off (found by a
    fuzzer at update 9 of this run). Such a loss is run eagerly."""
    text = (
        'title = "t"\nloss = "(w + ((v + v) - w)) + sin(relu(x / v))"\n'
        "[values]\nw = 1.5316\nv = -0.4003\nx = -0.16\n"
        f'[descent]\nwrt = ["v"]\nlearning_rate = 0.1\nsteps = {long("seed-w").steps + 100}\n'
    )
    problem = loads(text, source="t.toml")
    backend = TensorFlowBackend()
    assert not backend._loop(problem, tuple(backend._held(problem, problem.values))).exact
    got = record(backend, problem, problem.values, problem.steps)
    assert same_columns(got, record(eager, problem, problem.values, problem.steps))
