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

import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .expression import Binary, Call, Name, Node, Num, Unary
from .model import Problem, RawUpdate

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
        # Graph rewrites such as pow(r, 2) → square(r) change the last bit of
        # the loss; without them a compiled run is bit-identical to the eager one.
        tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
        _tf = tf
    return _tf


def _huber(tf: Any, r: Any, d: Any) -> Any:
    a = tf.abs(r)
    half = tf.constant(0.5, dtype=r.dtype)
    return tf.where(a <= d, half * r * r, d * (a - half * d))


#: TensorFlow's form of each function a loss may call.
_TF_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "exp": lambda tf, a: tf.exp(a),
    "log": lambda tf, a: tf.math.log(a),
    "sqrt": lambda tf, a: tf.sqrt(a),
    "abs": lambda tf, a: tf.abs(a),
    "sin": lambda tf, a: tf.sin(a),
    "cos": lambda tf, a: tf.cos(a),
    "tan": lambda tf, a: tf.tan(a),
    "tanh": lambda tf, a: tf.tanh(a),
    "sigmoid": lambda tf, a: tf.sigmoid(a),
    "relu": lambda tf, a: tf.nn.relu(a),
    "softplus": lambda tf, a: tf.nn.softplus(a),
    "max": lambda tf, a, b: tf.maximum(a, b),
    "min": lambda tf, a, b: tf.minimum(a, b),
    "huber": _huber,
}


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
        return _TF_FUNCTIONS[tree.func](tf, *args)
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

    def _setup(self, problem: Problem) -> tuple[Any, Any, dict[str, Any]]:
        tf = tensorflow()
        dtype = tf.float64 if problem.dtype == "float64" else tf.float32
        data = {k: tf.constant(v, dtype=dtype) for k, v in problem.data.items()}
        return tf, dtype, data

    def _loss(self, problem: Problem, env: Mapping[str, Any], dtype: Any) -> Any:
        value = build_loss(problem.tree, env, dtype)
        if problem.data:
            value = tensorflow().reduce_mean(value)
        return value

    def _bind(self, problem: Problem, values: Mapping[str, float]) -> dict[str, Any]:
        tf, dtype, env = self._setup(problem)
        for name, value in {**problem.constants, **values}.items():
            if name in problem.wrt and problem.variables == "variable":
                env[name] = tf.Variable(value, dtype=dtype, name=name)
            else:
                env[name] = tf.convert_to_tensor(value, dtype=dtype)
        return env

    def _tape(self, problem: Problem, env: dict[str, Any]) -> tuple[Any, list[Any]]:
        tf, dtype, _ = self._setup(problem)
        with tf.GradientTape() as tape:
            if problem.variables == "tensor":
                for name in problem.wrt:
                    tape.watch(env[name])
            loss = self._loss(problem, env, dtype)
        grads = tape.gradient(
            loss,
            [env[name] for name in problem.wrt],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return loss, grads

    def gradient(
        self, problem: Problem, values: Mapping[str, float]
    ) -> tuple[float, dict[str, float]]:
        """Return the loss and TF's gradient for every wrt symbol at ``values``."""
        env = self._bind(problem, values)
        loss, grads = self._tape(problem, env)
        return float(loss.numpy()), {
            n: float(g.numpy()) for n, g in zip(problem.wrt, grads, strict=True)
        }

    def run(
        self, problem: Problem, values: Mapping[str, float], steps: int | None = None
    ) -> Iterator[RawUpdate]:
        """Yield the updates of gradient descent from ``values``.

        Each update is ``s ← s − η·g`` in the problem's dtype, in TensorFlow's
        order of operations: rebinding a tensor, or ``assign_sub`` on a
        Variable. A run of at least ``compile_from`` known ``steps`` is computed
        in one compiled loop (``tf.function``, no XLA), whose iterates are
        bit-identical to the eager loop's; shorter or open-ended runs stay eager.
        """
        if steps is not None and steps >= self.compile_from:
            yield from self._compiled(problem, values, steps)
        else:
            yield from self._eager(problem, values)

    #: The number of steps from which a run is compiled rather than eager.
    compile_from = 100

    def _eager(self, problem: Problem, values: Mapping[str, float]) -> Iterator[RawUpdate]:
        env = self._bind(problem, values)
        rate = problem.learning_rate
        while True:
            before = {n: float(env[n].numpy()) for n in values}
            loss, grads = self._tape(problem, env)
            for name, g in zip(problem.wrt, grads, strict=True):
                if problem.variables == "variable":
                    env[name].assign_sub(rate * g)
                else:
                    env[name] = env[name] - rate * g
            yield RawUpdate(
                values=before,
                loss=float(loss.numpy()),
                gradient={n: float(g.numpy()) for n, g in zip(problem.wrt, grads, strict=True)},
                updated={n: float(env[n].numpy()) for n in problem.wrt},
            )

    def _compiled(
        self, problem: Problem, values: Mapping[str, float], steps: int
    ) -> Iterator[RawUpdate]:
        tf, dtype, _ = self._setup(problem)
        env = self._bind(problem, values)
        wrt = problem.wrt
        rate = tf.constant(problem.learning_rate, dtype=dtype)
        loop = tf.function(
            self._loop_body(problem, env, rate, dtype), jit_compile=False, autograph=False
        )
        records, last = loop(tf.constant(steps))
        # One row per update: the values before it, the loss, the gradient.
        rows = records.numpy().tolist()
        m = len(wrt)
        after = [row[:m] for row in rows[1:]] + [last.numpy().tolist()]
        fixed = {n: float(v) for n, v in values.items() if n not in wrt}
        for row, new in zip(rows, after, strict=True):
            yield RawUpdate(
                values={**fixed, **dict(zip(wrt, row[:m], strict=True))},
                loss=row[m],
                gradient=dict(zip(wrt, row[m + 1 :], strict=True)),
                updated=dict(zip(wrt, new, strict=True)),
            )

    def _loop_body(self, problem: Problem, env: dict[str, Any], rate: Any, dtype: Any) -> Any:
        """Return the whole descent as one function of the step count, for ``tf.function``.

        Each iteration writes one row (values before, loss, gradient) to a
        TensorArray: fewer graph operations per update than a row per quantity.
        """
        tf = tensorflow()
        wrt = problem.wrt
        variable = problem.variables == "variable"

        def step(k: Any, theta: Any, records: Any) -> Any:
            current = {n: env[n] for n in wrt} if variable else dict(zip(wrt, theta, strict=True))
            with tf.GradientTape() as tape:
                if not variable:
                    for n in wrt:
                        tape.watch(current[n])
                loss = self._loss(problem, {**env, **current}, dtype)
            grads = tape.gradient(
                loss,
                [current[n] for n in wrt],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            before = [tf.convert_to_tensor(current[n]) for n in wrt]
            row = tf.stack([*before, loss, *grads])
            if variable:
                for n, g in zip(wrt, grads, strict=True):
                    current[n].assign_sub(rate * g)
                new = tuple(current[n].read_value() for n in wrt)
            else:
                new = tuple(current[n] - rate * g for n, g in zip(wrt, grads, strict=True))
            return k + 1, new, records.write(k, row)

        def loop(steps: Any) -> Any:
            start = tuple(tf.convert_to_tensor(env[n]) for n in wrt)
            state = (tf.constant(0), start, tf.TensorArray(dtype, size=steps))
            _, last, records = tf.while_loop(
                lambda k, *_: k < steps, step, state, parallel_iterations=1
            )
            return records.stack(), tf.stack(last)

        return loop
