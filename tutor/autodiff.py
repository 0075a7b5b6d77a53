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
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        import tensorflow as tf

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

    def run(self, problem: Problem, values: Mapping[str, float]) -> Iterator[RawUpdate]:
        """Yield the updates of gradient descent from ``values``, as many as the caller takes.

        Each update is ``s ← s − η·g`` in the problem's dtype, in TensorFlow's
        order of operations: rebinding a tensor, or ``assign_sub`` on a Variable.
        """
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
