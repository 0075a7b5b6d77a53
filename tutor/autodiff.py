"""Gradients with TensorFlow's ``tf.GradientTape``, in the notebook's two styles.

``tensor`` (cells 5–6): values made with ``tf.convert_to_tensor``, the descended
ones watched with ``tape.watch``, and rebound after each update.
``variable`` (cell 7): the descended values are ``tf.Variable`` objects, which
the tape watches by itself, updated in place with ``assign_sub``.

TensorFlow is imported here only, and only when a backend is first used; its
start-up log noise is silenced unless the user set the variables themselves.
The loss is built from the parsed tree in the order the problem file writes
it, so ``(w*x - y)**2`` runs the same operations as the notebook's
``(w * x - y) ** 2``.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, NamedTuple

from .expression import Binary, Call, Name, Node, Num, Unary
from .functions import REGISTRY
from .model import Columns, Problem, RawUpdate

_tf: Any = None


def tensorflow() -> Any:
    """Return the ``tensorflow`` module, importing it (quietly) on first use."""
    global _tf
    if _tf is None:
        # oneDNN's start-up notice is printed before TF's own log filter applies;
        # switching oneDNN off removes it and changes no scalar arithmetic.
        quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        import tensorflow as tf

        if quiet:
            tf.get_logger().setLevel("ERROR")
        # Graph rewrites change last bits: pow(r, 2) → square(r), w/3 → w·(1/3),
        # (w + 0.1) + 0.2 → w + (0.1 + 0.2). Without them a compiled run is
        # bit-identical to the eager one.
        tf.config.optimizer.set_experimental_options(
            {"arithmetic_optimization": False, "constant_folding": False}
        )
        _tf = tf
    return _tf


def import_in_background() -> threading.Thread:
    """Start importing TensorFlow in a daemon thread and return the thread.

    The import takes seconds; the caller can wait for it while watching for a
    reason to stop (a reader gone), and a process that ends meanwhile is not
    held up by it. Using the backend after :meth:`threading.Thread.join` finds it
    imported (or imports it then, raising what the import raises). While the
    thread runs, and once TensorFlow is loaded, :mod:`tutor._timeout` starts its
    children from the fork server rather than by forking this process.
    """

    def work() -> None:
        with contextlib.suppress(Exception):  # raised again where the backend is used
            tensorflow()

    thread = threading.Thread(target=work, name="tutor-import-tensorflow", daemon=True)
    thread.start()
    return thread


def build_loss(tree: Node, env: Mapping[str, Any], dtype: Any) -> Any:
    """Return the TensorFlow value of ``tree`` with symbols bound to the tensors in ``env``."""
    tf = tensorflow()
    if isinstance(tree, Num):
        return tf.constant(tree.value, dtype=dtype)
    if isinstance(tree, Name):
        if tree.id in env:
            return env[tree.id]
        return tf.constant(math.pi if tree.id == "pi" else math.e, dtype=dtype)
    if isinstance(tree, Unary):
        inner = build_loss(tree.operand, env, dtype)
        return -inner if tree.op == "-" else inner
    if isinstance(tree, Binary):
        a = build_loss(tree.left, env, dtype)
        b = build_loss(tree.right, env, dtype)
        return _binary(tree.op, a, b)
    if isinstance(tree, Call):
        args = [build_loss(a, env, dtype) for a in tree.args]
        return REGISTRY[tree.func].tensorflow(tf, *args)
    raise TypeError(f"not a loss tree node: {tree!r}")


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return a**b


class TensorFlowBackend:
    """Computes the loss and its gradient with ``tf.GradientTape`` and takes the updates.

    >>> from tutor.problem import load
    >>> backend = TensorFlowBackend()
    >>> loss, grads = backend.gradient(load("seed-w"), {"w": 0.5, "x": 3.0, "y": 6.0})
    >>> loss, grads
    (20.25, {'w': -27.0})
    """

    #: The number of steps from which a run is compiled rather than eager:
    #: about where tracing the loop (some 40 ms) costs what the eager
    #: updates it replaces (some 0.25 ms each) would.
    compile_from = 150

    #: Updates per iteration of the compiled loop. Unrolling amortises the
    #: loop's own control flow; each update is still the same operations.
    unroll = 8

    #: Updates per call of the compiled loop: 128 iterations of 8 whose last
    #: row starts the next call.
    chunk = 128 * unroll - 1

    def __init__(self) -> None:
        self._traced: dict[tuple[Any, ...], _Traced] = {}

    @property
    def traces(self) -> int:
        """How many times a compiled descent has been traced (once per loss, dtype and style)."""
        return sum(t.function.experimental_get_tracing_count() for t in self._traced.values())

    def _bind(self, problem: Problem, values: Mapping[str, float]) -> dict[str, Any]:
        """Return the tensors of one run: the data, built once, and every value of ``values``."""
        tf, dtype = tensorflow(), _dtype(problem)
        env = _data(problem)
        for name, value in {**problem.constants, **values}.items():
            # Through NumPy: TensorFlow caches scalar tensors made from Python
            # floats, and its cache takes 0.0 and −0.0 for one another.
            array = _rounded([value], problem.dtype)[0]
            if name in problem.wrt and problem.variables == "variable":
                env[name] = tf.Variable(array, dtype=dtype, name=name)
            else:
                env[name] = tf.convert_to_tensor(array, dtype=dtype)
        return env

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]:
        """Return the loss and TF's gradient for every wrt symbol at ``values``."""
        env = self._bind(problem, values)
        loss, grads = tape_gradient(problem, env, {n: env[n] for n in problem.wrt})
        return float(loss.numpy()), {
            n: float(g.numpy()) for n, g in zip(problem.wrt, grads, strict=True)
        }

    def stream(
        self, problem: Problem, values: Mapping[str, float], steps: int
    ) -> Generator[Columns, None, None]:
        """Yield ``steps`` updates from ``values`` as consecutive pieces of columns.

        From ``compile_from`` steps the whole descent is one ``tf.function``
        (without XLA, whose fused multiply-add would change the last bits),
        traced once per loss, dtype and style and reused for any start, rate
        and step count. It is called for ``chunk`` updates at a time in a
        worker thread, which computes the next piece while the caller uses
        this one. Its iterates are bit-identical to the eager loop's; a loss
        for which that cannot be had (see :func:`_sums_in_fixed_order`) runs
        eagerly however long it is. Shorter runs are eager. Stopping early
        stops the worker.
        """
        if steps >= self.compile_from:
            traced = self._loop(problem, tuple(self._held(problem, values)))
            if traced.exact:
                yield from self._compiled(problem, values, steps, traced)
                return
        runner = self._eager(problem, values)
        for done in range(0, steps, self.chunk):
            count = min(self.chunk, steps - done)
            yield _columns([next(runner) for _ in range(count)], tuple(values), problem.wrt)

    @staticmethod
    def _held(problem: Problem, values: Mapping[str, float]) -> dict[str, float]:
        """The values a descent holds fixed: constants, and values it does not descend."""
        return {**problem.constants, **{n: v for n, v in values.items() if n not in problem.wrt}}

    def _eager(self, problem: Problem, values: Mapping[str, float]) -> Iterator[RawUpdate]:
        env = self._bind(problem, values)
        rate = problem.learning_rate
        while True:
            before = {n: float(env[n].numpy()) for n in values}
            loss, grads, after = _update(problem, env, {n: env[n] for n in problem.wrt}, rate)
            env.update(after)
            yield RawUpdate(
                values=before,
                loss=float(loss.numpy()),
                gradient={n: float(g.numpy()) for n, g in zip(problem.wrt, grads, strict=True)},
                updated={n: float(env[n].numpy()) for n in problem.wrt},
            )

    def _compiled(
        self, problem: Problem, values: Mapping[str, float], steps: int, traced: _Traced
    ) -> Generator[Columns, None, None]:
        import numpy as np

        tf, dtype = tensorflow(), _dtype(problem)
        wrt, names, m = problem.wrt, tuple(values), len(problem.wrt)
        fixed = self._held(problem, values)
        loop, lock = traced.function, traced.lock
        held = tf.constant(_rounded(list(fixed.values()), problem.dtype), dtype=dtype)
        rate = tf.constant(problem.learning_rate, dtype=dtype)
        # The values not descended, rounded to the dtype as the eager run holds them.
        row = _rounded([values[n] for n in names], problem.dtype).astype(np.float64)
        columns = [names.index(n) for n in wrt]
        # One piece waits while the next is computed; no more run ahead.
        pieces: queue.Queue[Any] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def work() -> None:
            try:
                start = _rounded([values[n] for n in wrt], problem.dtype)
                done = 0
                while done < steps and not stop.is_set():
                    count = min(self.chunk, steps - done)
                    # Row k holds the values before update k, the loss and the
                    # gradient there; row ``count`` starts the next piece.
                    blocks = count // self.unroll + 1
                    with lock:  # a loop in "variable" style updates its own Variables
                        rows = loop(tf.constant(blocks), tf.constant(start), held, rate)
                        table = rows.numpy().reshape(-1, 2 * m + 1)[: count + 1]
                    pieces.put(table)
                    start = table[count, :m]
                    done += count
            except BaseException as exc:  # handed to the caller's thread
                pieces.put(exc)

        worker = threading.Thread(target=work, name="tutor-descent", daemon=True)
        worker.start()
        try:
            done = 0
            while done < steps:
                piece = pieces.get()
                if isinstance(piece, BaseException):
                    raise piece
                table = piece.astype(np.float64)
                count = len(table) - 1
                before = np.repeat(row[None, :], count, axis=0)
                before[:, columns] = table[:count, :m]
                yield Columns(
                    names=names,
                    wrt=wrt,
                    values=before,
                    loss=table[:count, m],
                    autodiff=table[:count, m + 1 :],
                    updated=table[1:, :m],
                )
                done += count
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                pieces.get_nowait()  # lets a worker waiting to hand over a piece see the stop
            worker.join()

    def _loop(self, problem: Problem, fixed: tuple[str, ...]) -> _Traced:
        """Return the traced descent for this loss, dtype and style, tracing it on first use.

        The data are part of it, told apart bit for bit (0.0 and −0.0 are
        different data).
        """
        data = tuple((k, tuple(map(float.hex, v))) for k, v in problem.data.items())
        key = (problem.tree, problem.wrt, problem.dtype, problem.variables, fixed, data)
        if key not in self._traced:
            tf, dtype = tensorflow(), _dtype(problem)
            function = tf.function(
                self._loop_body(problem, fixed), jit_compile=False, autograph=False
            )
            graph = function.get_concrete_function(
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([len(problem.wrt)], dtype),
                tf.TensorSpec([len(fixed)], dtype),
                tf.TensorSpec([], dtype),
            ).graph.as_graph_def()
            self._traced[key] = _Traced(function, threading.Lock(), _sums_in_fixed_order(graph))
        return self._traced[key]

    def _loop_body(self, problem: Problem, fixed: tuple[str, ...]) -> Any:
        """Return the whole descent as one function, for ``tf.function``.

        Its arguments are the number of loop iterations, the start of the
        descended values, the held values and the learning rate. Each
        iteration takes ``unroll`` updates and writes their rows (values
        before, loss, gradient) to a TensorArray as one block.
        """
        tf, dtype, data = tensorflow(), _dtype(problem), _data(problem)
        wrt = problem.wrt
        variables = (
            {n: tf.Variable(0.0, dtype=dtype, name=n) for n in wrt}
            if problem.variables == "variable"
            else None
        )

        def update(env: dict[str, Any], theta: tuple[Any, ...], rate: Any) -> Any:
            current = variables if variables is not None else dict(zip(wrt, theta, strict=True))
            before = [tf.convert_to_tensor(current[n]) for n in wrt]
            loss, grads, after = _update(problem, env, current, rate)
            row = tf.stack([*before, loss, *grads])
            if variables is not None:
                return tuple(variables[n].read_value() for n in wrt), row
            return tuple(after[n] for n in wrt), row

        def loop(blocks: Any, start: Any, held: Any, rate: Any) -> Any:
            env = {**data, **dict(zip(fixed, tf.unstack(held, num=len(fixed)), strict=True))}
            theta = tuple(tf.unstack(start, num=len(wrt)))
            if variables is not None:
                for n, value in zip(wrt, theta, strict=True):
                    variables[n].assign(value)

            one = tf.function(update, autograph=False)

            def body(k: Any, theta: Any, records: Any) -> Any:
                rows = []
                for _ in range(self.unroll):
                    theta, row = one(env, theta, rate)
                    rows.append(row)
                return k + 1, theta, records.write(k, tf.stack(rows))

            state = (tf.constant(0), theta, tf.TensorArray(dtype, size=blocks))
            _, _, records = tf.while_loop(
                lambda k, *_: k < blocks, body, state, parallel_iterations=1
            )
            return records.stack()

        return loop


def _dtype(problem: Problem) -> Any:
    """Return the TensorFlow dtype of ``problem``."""
    tf = tensorflow()
    return tf.float64 if problem.dtype == "float64" else tf.float32


def _data(problem: Problem) -> dict[str, Any]:
    """Return the problem's data columns as constants, built once per run (or per trace)."""
    tf, dtype = tensorflow(), _dtype(problem)
    return {k: tf.constant(v, dtype=dtype) for k, v in problem.data.items()}


def _loss(problem: Problem, env: Mapping[str, Any]) -> Any:
    """Return the loss at ``env``: the mean over the data rows when there are data."""
    value = build_loss(problem.tree, env, _dtype(problem))
    return tensorflow().reduce_mean(value) if problem.data else value


def tape_gradient(
    problem: Problem,
    env: Mapping[str, Any],
    current: Mapping[str, Any],
    loss_of: Callable[[Problem, Mapping[str, Any]], Any] | None = None,
) -> tuple[Any, list[Any]]:
    """Return the loss and its gradient with respect to the descended values ``current``.

    ``env`` holds the data and the values held fixed; ``current`` the descended
    ones, tensors the tape watches or Variables it watches by itself.
    ``loss_of(problem, env)`` builds the loss (default: the loss, its mean over
    the data rows when there are data); verification's batches sum one loss per
    point.
    """
    tf = tensorflow()
    with tf.GradientTape() as tape:
        if problem.variables == "tensor":
            for name in problem.wrt:
                tape.watch(current[name])
        loss = (loss_of or _loss)(problem, {**env, **current})
    grads = tape.gradient(
        loss,
        [current[name] for name in problem.wrt],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    return loss, grads


def _update(
    problem: Problem, env: Mapping[str, Any], current: Mapping[str, Any], rate: Any
) -> tuple[Any, list[Any], Mapping[str, Any]]:
    """Take one update s ← s − η·g: return the loss, the gradient and the descended values after.

    The one update of both loops: the eager loop calls it per update, the
    compiled loop once while it is traced. Variables are updated in place
    (``assign_sub``) and returned; tensors are rebound.
    """
    loss, grads = tape_gradient(problem, env, current)
    if problem.variables == "variable":
        for name, g in zip(problem.wrt, grads, strict=True):
            current[name].assign_sub(rate * g)
        return loss, grads, current
    return loss, grads, {n: current[n] - rate * g for n, g in zip(problem.wrt, grads, strict=True)}


class _Traced(NamedTuple):
    """A traced descent, the lock it runs under, and whether it matches the eager loop."""

    function: Any
    lock: threading.Lock
    exact: bool


def _sums_in_fixed_order(graph: Any) -> bool:
    """Return whether no gradient in ``graph`` is a sum of three or more terms (AddN).

    The tape sums the gradient of a value used several times with AddN. Eagerly
    AddN adds its inputs in order; in a graph it may first take over the
    buffer of a later input that nothing else uses, and add in another order.
    Two terms commute exactly; three or more can differ in the last bit.
    """
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return not any(
        n.op == "AddN" and sum(not i.startswith("^") for i in n.input) > 2 for n in nodes
    )


def _rounded(values: list[float], dtype: str) -> Any:
    """Return ``values`` as a NumPy array of ``dtype``, too large ones as ±inf without a warning.

    TensorFlow turns an out-of-range float into inf silently; so does this.
    """
    import numpy as np

    with np.errstate(over="ignore"):
        return np.array(values, dtype=dtype)


def _columns(raws: list[RawUpdate], names: tuple[str, ...], wrt: tuple[str, ...]) -> Columns:
    import numpy as np

    def table(rows: list[list[float]], width: int) -> Any:
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)

    return Columns(
        names=names,
        wrt=wrt,
        values=table([[r.values[n] for n in names] for r in raws], len(names)),
        loss=np.array([r.loss for r in raws], dtype=np.float64),
        autodiff=table([[r.gradient[n] for n in wrt] for r in raws], len(wrt)),
        updated=table([[r.updated[n] for n in wrt] for r in raws], len(wrt)),
    )
