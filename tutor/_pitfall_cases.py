"""The eleven pitfalls: for one setting, each one's broken and fixed code, live runs, and why."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from ._pitfall_kit import (
    _agreement,
    _closed_form_bound,
    _definitions,
    _dtype_arg,
    _dtype_of,
    _env,
    _exact_point,
    _gradient_check,
    _gradient_expr,
    _header,
    _literal,
    _live_loss,
    _loss_text,
    _NotApplicable,
    _pretty,
    _prints,
    _rename,
    _script,
    _Setting,
    _Spec,
    _symbolic,
    _tape_lines,
    _tf_dtype,
)
from .expression import Binary, Name, Node, Num, Unary
from .pitfalls import Agreement, Expected, Outcome, _Recorder


def _unwatched_tensor(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    loss = _loss_text(s)

    def code(watch: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        lines += _tape_lines(s, [w] if watch else [], [f"loss = {loss}"])
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(watch: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as tape:
                if watch:
                    tape.watch(env[w])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"A tape records operations on the tensors it watches. A tf.Variable is watched "
            f"by itself; a tensor made with tf.convert_to_tensor is not, so nothing on the "
            f"path from {w} to the loss was recorded and the tape has no gradient to give: "
            f"None, not an error."
        ),
        fix=f"Call tape.watch({w}) inside the with block (or make {w} a tf.Variable).",
        expected=_gradient_check(s, f"grad_{w}", w, point),
    )


def _integers(s: _Setting) -> dict[str, int]:
    """The point rounded to integers (halves away from zero: 0.5 → 1)."""
    out = {}
    for name, value in s.point.items():
        out[name] = int(math.copysign(math.floor(abs(value) + 0.5), value))
    return out


def _only_integer_arithmetic(tree: Node) -> bool:
    if isinstance(tree, Num):
        return float(tree.text).is_integer() and "." not in tree.text and "e" not in tree.text
    if isinstance(tree, Name):
        return tree.id not in ("pi", "E")
    if isinstance(tree, Unary):
        return _only_integer_arithmetic(tree.operand)
    if isinstance(tree, Binary):
        return (
            tree.op != "/"
            and _only_integer_arithmetic(tree.left)
            and _only_integer_arithmetic(tree.right)
        )
    return False


def _integer_literals(tree: Node, taken: set[str]) -> tuple[Node, dict[str, int]]:
    """Return ``tree`` with each number literal a name, and the integer each name stands for."""
    literals: dict[str, int] = {}

    def walk(node: Node) -> Node:
        if isinstance(node, Num):
            name = f"_literal{len(literals)}"
            while name in taken:
                name += "_"
            literals[name] = int(float(node.text))
            return Name(name)
        if isinstance(node, Unary):
            return Unary(node.op, walk(node.operand))
        if isinstance(node, Binary):
            return Binary(node.op, walk(node.left), walk(node.right))
        return node

    return walk(tree), literals


def _integer_dtype(s: _Setting) -> _Spec:
    if s.problem.data or not _only_integer_arithmetic(s.problem.tree):
        raise _NotApplicable(
            "uses division, functions, data or non-integer numbers, which TensorFlow refuses "
            "on integer tensors before the tape is asked"
        )
    w = s.w
    ints = _integers(s)
    floats = {n: float(v) for n, v in ints.items()}
    loss = _loss_text(s)

    def code(values: Mapping[str, float | int]) -> str:
        lines = _header(s) + _definitions(s, values)
        lines += _tape_lines(s, [w], [f"loss = {loss}"])
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(values: Mapping[str, float | int]) -> Callable[[Any, _Recorder], None]:
        integer = isinstance(values[w], int)
        # build_loss makes a literal in the loss's dtype; Python's int literals in
        # the printed code meet int32 tensors as int32, so the live loss binds them so.
        tree, literals = _integer_literals(s.problem.tree, set(values)) if integer else (None, {})

        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, values)
            env.update({n: tf.constant(v) for n, v in literals.items()})
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                value = _live_loss(tf, s, env, tree)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    shown = ", ".join(f"{n} = {v}" for n, v in ints.items())
    return _Spec(
        floats,
        code(ints),
        live(ints),
        code(floats),
        live(floats),
        why=(
            f"tf.convert_to_tensor({ints[w]}) makes an int32 tensor ({shown}). Gradients are "
            f"only defined for floating-point tensors: the tape warns when it is asked to "
            f"watch an integer one, computes the loss in integers, and returns None for it."
        ),
        fix=f"Write the numbers as floats ({ints[w]}.0, or dtype=tf.float32), so {w} is float32.",
        expected=_gradient_check(s, f"grad_{w}", w, floats),
    )


def _reassigned_variable(s: _Setting) -> _Spec:
    import numpy as np

    w, point = s.w, s.point
    loss = _loss_text(s)
    rate = s.problem.learning_rate
    held = {n: v for n, v in point.items() if n != w}

    def code(assign: bool) -> str:
        lines = _header(s) + _definitions(s, held)
        lines.append(f"{w} = tf.Variable({_literal(point[w])}{_dtype_arg(s.dtype)})")
        lines.append("for step in range(2):")
        lines += ["    " + line for line in _tape_lines(s, [], [f"loss = {loss}"])]
        lines.append(f"    grad_{w} = tape.gradient(loss, {w})")
        lines.append(f'    print(f"step {{step + 1}}: grad_{w} =", grad_{w})')
        if assign:
            lines.append(f"    {w}.assign_sub({rate!r} * grad_{w})")
        else:
            lines.append(f"    {w} = {w} - {rate!r} * grad_{w}")
        return _script(lines)

    def live(assign: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, held)
            value = np.array(point[w], dtype=s.dtype)
            env[w] = tf.Variable(value, dtype=_tf_dtype(tf, s.dtype))
            for step in range(2):
                with tf.GradientTape() as tape:
                    result = _live_loss(tf, s, env)
                grad = tape.gradient(result, env[w])
                out.show(f"step {step + 1}: grad_{w}", grad)
                if assign:
                    env[w].assign_sub(rate * grad)
                else:
                    env[w] = env[w] - rate * grad

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        first = _gradient_check(s, f"step 1: grad_{w}", w, point)(fixed)
        step1 = fixed.result(f"step 1: grad_{w}")
        if step1 is None or not isinstance(step1.value, float):
            return first
        # The value the Variable holds after assign_sub, in the dtype's arithmetic.
        kind = np.dtype(s.dtype).type
        after = float(kind(point[w]) - kind(rate) * kind(step1.value))
        moved = {**point, w: after}
        second = _gradient_check(s, f"step 2: grad_{w}", w, moved)(fixed)
        return first[0] + second[0], first[1] + second[1]

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"{w} - {rate!r} * grad_{w} is a new tf.Tensor, and the name {w} now points to "
            f"it: the Variable is gone. The next tape watches no Variable and the tensor is "
            f"not watched, so the second gradient is None, and the update after it fails on "
            f"None. ({w} -= ... on a tf.Variable raises RuntimeError in TensorFlow 2.21.)"
        ),
        fix=f"Update the Variable in place: {w}.assign_sub({rate!r} * grad_{w}).",
        expected=expected,
    )


def _numpy_inside_tape(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    taken = s.fresh(f"{w}_value")
    broken_tree = _rename(s.problem.tree, w, taken)

    def code(broken: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        if broken:
            body = [f"{taken} = {w}.numpy()", f"loss = {_loss_text(s, broken_tree)}"]
        else:
            body = [f"loss = {_loss_text(s)}"]
        lines += _tape_lines(s, [w], body)
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(broken: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                if broken:
                    value = _live_loss(tf, s, {**env, taken: env[w].numpy()}, broken_tree)
                else:
                    value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(True),
        live(True),
        code(False),
        live(False),
        why=(
            f"{w}.numpy() copies the value out of TensorFlow into a NumPy number. The loss is "
            f"still computed (TensorFlow turns the NumPy number back into a constant), but "
            f"the tape never saw {w} reach it: the path from {w} to the loss is cut, and "
            f"the gradient is None."
        ),
        fix=(
            f"Compute the loss from {w} itself with TensorFlow operations inside the tape; "
            f"call .numpy() only afterwards, to print."
        ),
        expected=_gradient_check(s, f"grad_{w}", w, point),
    )


def _non_persistent_tape(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    second = next((n for n in s.problem.values if n != w), w)
    loss = _loss_text(s)
    watched = list(dict.fromkeys([w, second]))
    second_label = f"grad_{second}" if second != w else f"grad_{w}_again"

    def code(persistent: bool) -> str:
        opener = "with tf.GradientTape(persistent=True) as tape:" if persistent else ""
        lines = _header(s) + _definitions(s, point)
        lines += _tape_lines(s, watched, [f"loss = {loss}"], opener)
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        lines += _prints((f"grad_{w}", f"grad_{w}"))
        lines.append(f"{second_label} = tape.gradient(loss, {second})")
        lines += _prints((second_label, second_label))
        if persistent:
            lines.append("del tape")
        return _script(lines)

    def live(persistent: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape(persistent=persistent) as tape:
                for n in watched:
                    tape.watch(env[n])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))
            out.show(second_label, tape.gradient(value, env[second]))

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        a = _gradient_check(s, f"grad_{w}", w, point)(fixed)
        b = _gradient_check(s, second_label, second, point)(fixed)
        return a[0] + b[0], a[1] + b[1]

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            "A tape frees what it recorded as soon as gradient() has been called once, "
            "unless it is persistent: the second call finds nothing left and raises."
        ),
        fix=(
            f"Open the tape with tf.GradientTape(persistent=True) (and del tape when done), "
            f"or ask for both in one call: tape.gradient(loss, [{w}, {second}])."
        ),
        expected=expected,
    )


def _gradient_outside_outer(s: _Setting) -> _Spec:
    import sympy

    from .expression import make_symbol

    w, point = s.w, s.point
    loss = _loss_text(s)
    second = f"d2loss_d{w}2"
    # Where ∂L/∂w does not depend on w at all, the outer tape finds no path from
    # it to w: the fixed code asks for 0 there rather than None.
    # (DiracDelta, the derivative of a step such as a hinge's, counts as 0: off its
    # kink the tape sees a constant there too.)
    curvature = sympy.diff(_gradient_expr(s.problem, w), make_symbol(w))
    flat = curvature.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero) == 0
    option = ", unconnected_gradients=tf.UnconnectedGradients.ZERO"

    def code(inside: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        lines += ["with tf.GradientTape() as outer:", f"    outer.watch({w})"]
        lines += ["    with tf.GradientTape() as inner:", f"        inner.watch({w})"]
        lines.append(f"        loss = {loss}")
        lines.append(f"{'    ' if inside else ''}grad_{w} = inner.gradient(loss, {w})")
        zero = option if inside and flat else ""
        lines.append(f"{second} = outer.gradient(grad_{w}, {w}{zero})")
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}"), (second, second)))

    def live(inside: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as outer:
                outer.watch(env[w])
                with tf.GradientTape() as inner:
                    inner.watch(env[w])
                    value = _live_loss(tf, s, env)
                if inside:
                    grad = inner.gradient(value, env[w])
            if not inside:
                grad = inner.gradient(value, env[w])
            zero = tf.UnconnectedGradients.ZERO if inside and flat else tf.UnconnectedGradients.NONE
            out.show(f"grad_{w}", grad)
            out.show(second, outer.gradient(grad, env[w], unconnected_gradients=zero))

        return run

    expected = functools.partial(_check_second_derivative, s, w, second, point)

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"For a first derivative it does not matter where inner.gradient is called. For a "
            f"second one it does: the outer tape records only while its with block is open, "
            f"so grad_{w}, computed after the block closed, is a value the outer tape never "
            f"saw, and its gradient is None."
        ),
        fix=(
            f"Call inner.gradient inside the outer tape's with block, so that the outer "
            f"tape records how grad_{w} depends on {w}."
            + (
                f" Here ∂L/∂{w} does not depend on {w}: the outer tape still finds no path, "
                f"so ask for 0 with unconnected_gradients=tf.UnconnectedGradients.ZERO."
                if flat
                else ""
            )
        ),
        expected=expected,
    )


def _batch(s: _Setting) -> tuple[str, list[float]]:
    """A symbol to make a column of three values (its value, +1, +2), and the column."""
    others = [n for n in s.others if n not in s.problem.constants]
    if not others:
        raise _NotApplicable(f"has no symbol besides {s.w} to take several values")
    name = others[0]
    return name, [s.point[name] + k for k in range(3)]


def _non_scalar_target(s: _Setting) -> _Spec:
    w = s.w
    if s.problem.data:
        batch_problem, point = s.problem, s.point
    else:
        name, column = _batch(s)
        values = {k: v for k, v in s.problem.values.items() if k != name}
        batch_problem = dataclasses.replace(
            s.problem, values=values, data={name: tuple(column)}, wrt=(w,)
        )
        point = {k: v for k, v in s.point.items() if k != name}
    b = _Setting(batch_problem, w, point, s.dtype)
    per_row = _loss_text(b, mean=False)

    def code(mean: bool) -> str:
        lines = _header(b) + _definitions(b, point)
        body = [f"losses = {per_row}"] + (["loss = tf.reduce_mean(losses)"] if mean else [])
        lines += _tape_lines(b, [w], body)
        lines.append(f"grad_{w} = tape.gradient({'loss' if mean else 'losses'}, {w})")
        return _script(lines + _prints(("losses", "losses"), (f"grad_{w}", f"grad_{w}")))

    def live(mean: bool) -> Callable[[Any, _Recorder], None]:
        from .autodiff import build_loss

        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, b, point)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                losses = build_loss(batch_problem.tree, env, _dtype_of(tf, env, b))
                if mean:
                    value = tf.reduce_mean(losses)
            out.show("losses", losses)
            out.show(f"grad_{w}", tape.gradient(value if mean else losses, env[w]))

        return run

    rows = batch_problem.rows
    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"losses holds one loss per row ({rows} of them). Asked for the gradient of a "
            f"vector, the tape returns the gradient of its sum: {rows} times the gradient of "
            f"the mean that training minimises, so the step is {rows} times too large. "
            f"(tape.jacobian gives one gradient per row.)"
        ),
        fix="Reduce to the scalar you minimise first: loss = tf.reduce_mean(losses).",
        expected=_gradient_check(b, f"grad_{w}", w, point),
    )


def _unconnected_source(s: _Setting) -> _Spec:
    import sympy

    w, point = s.w, s.point
    bias = s.fresh("b") if "b" not in s.point else s.fresh("bias")
    loss = _loss_text(s)

    def code(zero: bool) -> str:
        lines = _header(s) + _definitions(s, {**point, bias: 0.0})
        lines += _tape_lines(s, [w, bias], [f"loss = {loss}"])
        option = ", unconnected_gradients=tf.UnconnectedGradients.ZERO" if zero else ""
        lines.append(f"grad_{w}, grad_{bias} = tape.gradient(loss, [{w}, {bias}]{option})")
        return _script(
            lines + _prints((f"grad_{w}", f"grad_{w}"), (f"grad_{bias}", f"grad_{bias}"))
        )

    def live(zero: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, {**point, bias: 0.0})
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                tape.watch(env[bias])
                value = _live_loss(tf, s, env)
            option = tf.UnconnectedGradients.ZERO if zero else tf.UnconnectedGradients.NONE
            grads = tape.gradient(value, [env[w], env[bias]], unconnected_gradients=option)
            out.show(f"grad_{w}", grads[0])
            out.show(f"grad_{bias}", grads[1])

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        first = _gradient_check(s, f"grad_{w}", w, point)(fixed)
        zero = sympy.diff(s.problem.loss, sympy.Symbol(bias, real=True))
        value = float(zero)
        text = f"∂L/∂{bias} = {_pretty(value)}: the loss does not use {bias}"
        agreement = _agreement(f"grad_{bias}", fixed, value, 0.0)
        return first[0] + (Expected(f"grad_{bias}", value, text),), first[1] + (agreement,)

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"The loss does not use {bias}: no recorded operation connects them. TensorFlow "
            f"says so with None rather than 0, so that a source forgotten by mistake is "
            f"noticed; the derivative itself is 0."
        ),
        fix=(
            "Ask for zeros where nothing connects: "
            "tape.gradient(..., unconnected_gradients=tf.UnconnectedGradients.ZERO) "
            "(or use the source in the loss, if leaving it out was the mistake)."
        ),
        expected=expected,
    )


def _non_differentiable_op(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    rounded, cast = s.fresh(f"{w}_round"), s.fresh(f"{w}_cast")
    round_tree = _rename(s.problem.tree, w, rounded)
    cast_tree = _rename(s.problem.tree, w, cast)
    kind = "tf.float64" if s.dtype == "float64" else "tf.float32"

    def code(broken: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        if broken:
            opener = "with tf.GradientTape(persistent=True) as tape:"
            body = [
                f"{rounded} = tf.round({w})",
                f"loss_round = {_loss_text(s, round_tree)}",
                f"{cast} = tf.cast(tf.cast({w}, tf.int32), {kind})",
                f"loss_cast = {_loss_text(s, cast_tree)}",
            ]
            lines += _tape_lines(s, [w], body, opener)
            lines.append(f"grad_round = tape.gradient(loss_round, {w})")
            lines.append(f"grad_cast = tape.gradient(loss_cast, {w})")
            return _script(
                lines + _prints(("grad_round", "grad_round"), ("grad_cast", "grad_cast"))
            )
        lines += _tape_lines(s, [w], [f"loss = {_loss_text(s)}"])
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        lines += _prints((f"grad_{w}", f"grad_{w}"), (f"rounded_{w}", f"tf.round({w})"))
        return _script(lines)

    def broken(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, point)
        dtype = _tf_dtype(tf, s.dtype)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(env[w])
            env[rounded] = tf.round(env[w])
            loss_round = _live_loss(tf, s, env, round_tree)
            env[cast] = tf.cast(tf.cast(env[w], tf.int32), dtype)
            loss_cast = _live_loss(tf, s, env, cast_tree)
        out.show("grad_round", tape.gradient(loss_round, env[w]))
        out.show("grad_cast", tape.gradient(loss_cast, env[w]))

    def fixed(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, point)
        with tf.GradientTape() as tape:
            tape.watch(env[w])
            value = _live_loss(tf, s, env)
        out.show(f"grad_{w}", tape.gradient(value, env[w]))
        out.show(f"rounded_{w}", tf.round(env[w]))

    def expected(outcome: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        exp, agree = _gradient_check(s, f"grad_{w}", w, point)(outcome)
        flat = "0 wherever it exists: round and int() are flat between their jumps"
        none = (Expected("grad_round", None, flat), Expected("grad_cast", None, flat))
        return none + exp, agree

    return _Spec(
        point,
        code(True),
        broken,
        code(False),
        fixed,
        why=(
            "round, a cast to an integer type and argmax have no registered gradient: "
            "they are flat between their jumps (derivative 0) and jump where they are not "
            "flat, so the tape returns None. Even a 0 would not teach the descent anything."
        ),
        fix=(
            f"Keep non-differentiable steps out of what the gradient flows through: compute "
            f"the loss from {w} itself, and round only the value you report."
        ),
        expected=expected,
    )


def _mixed_dtypes(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    others = [*s.problem.data, *s.others]
    if not others:
        raise _NotApplicable(f"has no symbol besides {s.w} to hold another dtype")
    mixed = {n: "float64" for n in others} | {w: "float32"}
    wide = {n: "float64" for n in [*others, w]}
    loss = _loss_text(s)

    def code(dtypes: Mapping[str, str]) -> str:
        lines = _header(s) + _definitions(s, point, dtypes)
        lines += _tape_lines(s, [w], [f"loss = {loss}"])
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(dtypes: Mapping[str, str]) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point, dtypes)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(mixed),
        live(mixed),
        code(wide),
        live(wide),
        why=(
            f"{w} is float32 and {', '.join(others)} float64. NumPy would quietly widen the "
            f"float32 number; TensorFlow never converts dtypes by itself, so the first "
            f"operation that meets both refuses to run."
        ),
        fix=(
            "Give every tensor the same dtype: dtype=tf.float64 everywhere (as here), or "
            "tf.cast one of them."
        ),
        expected=_gradient_check(s, f"grad_{w}", w, point, "float64"),
    )


def _check_second_derivative(
    s: _Setting, w: str, second: str, point: Mapping[str, float], fixed: Outcome
) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
    """Expect SymPy's ∂L/∂w and ∂²L/∂w² at ``point`` (module level: the time limit's
    child takes it)."""
    import sympy

    from .expression import make_symbol

    first = _gradient_check(s, f"grad_{w}", w, point)(fixed)
    expr = sympy.diff(_gradient_expr(s.problem, w), make_symbol(w))
    value = _symbolic(expr, point)
    bound = _closed_form_bound(expr, point, s.dtype)
    text = f"∂²L/∂{w}² = {_pretty(value)}"
    agreement = _agreement(second, fixed, value, bound)
    return first[0] + (Expected(second, value, text),), first[1] + (agreement,)


def _real_roots(polynomial: Any, symbol: Any) -> list[Any]:
    import sympy

    return sympy.Poly(polynomial, symbol).real_roots()


def _zero_of_loss(s: _Setting) -> float:
    """A value of ``w`` where the loss is exactly 0 in the dtype, the nearest to its start."""

    from ._timeout import within_time_limit
    from .expression import make_symbol

    if s.problem.data:
        raise _NotApplicable("is a mean over data rows, which is zero only by accident")
    symbol = make_symbol(s.w)
    held = {k: v for k, v in _exact_point(s.point).items() if k != symbol}
    polynomial = s.problem.loss.subs(held)
    if not polynomial.is_polynomial(symbol):
        raise _NotApplicable(f"is not a polynomial in {s.w}, so its zero is not exact")

    found = within_time_limit(
        functools.partial(_real_roots, polynomial, symbol), what="finding where the loss is 0"
    )
    exact = [r for r in found if r.is_Rational and float(r) == float(_in_dtype(float(r), s.dtype))]
    if not exact:
        raise _NotApplicable(f"is never exactly 0 at a {s.dtype} value of {s.w}")
    start = s.point[s.w]
    return float(min(exact, key=lambda r: abs(float(r) - start)))


def _in_dtype(value: float, dtype: str) -> float:
    import numpy as np

    return float(np.array(value, dtype=dtype))


def _is_square(tree: Node) -> Node | None:
    """The base of ``tree`` when it is ``base ** 2``."""
    squared = isinstance(tree, Binary) and tree.op == "**" and isinstance(tree.right, Num)
    if squared and tree.right.text in ("2", "2.0"):  # type: ignore[union-attr]
        return tree.left  # type: ignore[union-attr]
    return None


def _sqrt_at_zero(s: _Setting) -> _Spec:
    import sympy

    from .expression import make_symbol

    w = s.w
    kink = _zero_of_loss(s)
    at_kink = {**s.point, w: kink}
    start = s.point[w]
    loss = _loss_text(s)
    base = _is_square(s.problem.tree)
    kink_label = f"grad_root ({w} = {_literal(kink)})"
    start_label = f"grad_root ({w} = {_literal(start)})"

    def broken_code() -> str:
        lines = _header(s) + _definitions(s, at_kink)
        body = [f"loss = {loss}", "root = tf.sqrt(loss)"]
        if base is not None:
            from .render.code import expression

            body.append(f"distance = tf.abs({expression(base)})")
        lines += _tape_lines(s, [w], body, "with tf.GradientTape(persistent=True) as tape:")
        lines.append(f"grad_root = tape.gradient(root, {w})")
        prints = [("loss", "loss"), ("grad_root", "grad_root")]
        if base is not None:
            lines.append(f"grad_abs = tape.gradient(distance, {w})")
            prints.append(("grad_abs", "grad_abs"))
        return _script(lines + _prints(*prints))

    def broken(tf: Any, out: _Recorder) -> None:
        from .autodiff import build_loss

        env = _env(tf, s, at_kink)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(env[w])
            value = _live_loss(tf, s, env)
            root = tf.sqrt(value)
            if base is not None:
                distance = tf.abs(build_loss(base, env, _dtype_of(tf, env, s)))
        out.show("loss", value)
        out.show("grad_root", tape.gradient(root, env[w]))
        if base is not None:
            out.show("grad_abs", tape.gradient(distance, env[w]))

    held = {n: v for n, v in s.point.items() if n != w}

    def fixed_code() -> str:
        lines = _header(s) + _definitions(s, held)
        lines += ["", "", f"def root_gradient({w}):"]
        body = [
            f"loss = {loss}",
            "positive = loss > 0",
            "safe = tf.where(positive, loss, tf.ones_like(loss))",
            "root = tf.where(positive, tf.sqrt(safe), tf.zeros_like(loss))",
        ]
        lines += ["    " + line for line in _tape_lines(s, [w], body)]
        lines += [f"    return tape.gradient(root, {w})", "", ""]
        for label, value in ((kink_label, kink), (start_label, start)):
            made = f"tf.convert_to_tensor({_literal(value)}{_dtype_arg(s.dtype)})"
            lines.append(f'print("{label} =", root_gradient({made}))')
        return _script(lines)

    def fixed(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, held)

        def root_gradient(value: float) -> Any:
            local = {**env, **_env(tf, s, {w: value})}
            with tf.GradientTape() as tape:
                tape.watch(local[w])
                loss_value = _live_loss(tf, s, local)
                positive = loss_value > 0
                safe = tf.where(positive, loss_value, tf.ones_like(loss_value))
                root = tf.where(positive, tf.sqrt(safe), tf.zeros_like(loss_value))
            return tape.gradient(root, local[w])

        out.show(kink_label, root_gradient(kink))
        out.show(start_label, root_gradient(start))

    def expected(outcome: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        symbol = make_symbol(w)
        derivative = sympy.diff(sympy.sqrt(s.problem.loss), symbol)
        held_exact = {k: v for k, v in _exact_point(s.point).items() if k != symbol}
        near = derivative.subs(held_exact)
        x0 = sympy.Rational(Fraction(kink))
        sides = [sympy.limit(near, symbol, x0, dir=d) for d in ("-", "+")]
        sides_text = " and ".join(_pretty(float(v)) if v.is_finite else str(v) for v in sides)
        if sides[0] == sides[1] and sides[0].is_finite:
            kink_value: float | None = float(sides[0])
            kink_text = f"∂√L/∂{w} = {_pretty(kink_value)} (both sides agree)"
        else:
            kink_value = None
            kink_text = (
                f"undefined: √L has a kink at {w} = {_literal(kink)}, its one-sided "
                f"derivatives are {sides_text}; any value between them is a subgradient"
            )
        start_value = _symbolic(derivative, s.point)
        bound = _closed_form_bound(derivative, s.point, s.dtype)
        items = [
            Expected("grad_root", kink_value, kink_text),
            Expected(kink_label, kink_value, kink_text),
            Expected(start_label, start_value, f"∂√L/∂{w} = {_pretty(start_value)}"),
        ]
        agreements = [_agreement(start_label, outcome, start_value, bound)]
        if kink_value is not None:
            bound_kink = _closed_form_bound(derivative, at_kink, s.dtype)
            agreements.insert(0, _agreement(kink_label, outcome, kink_value, bound_kink))
        if base is not None:
            abs_text = f"the same as √L's, since |r| = √(r²): {kink_text}"
            items.insert(1, Expected("grad_abs", kink_value, abs_text))
        return tuple(items), tuple(agreements)

    return _Spec(
        at_kink,
        broken_code(),
        broken,
        fixed_code(),
        fixed,
        why=(
            f"At {w} = {_literal(kink)} the loss is 0. The tape applies the chain rule with "
            f"numbers: the derivative of sqrt at 0 is 1/(2·0) = inf, times the loss's "
            f"derivative there, 0, gives inf·0 = NaN, and NaN then spreads to every update. "
            f"tf.abs at 0 instead returns sign(0) = 0: one subgradient, chosen by TensorFlow."
        ),
        fix=(
            "Keep 0 away from sqrt on both the forward and the backward pass: take the sqrt "
            "of a safe value where the loss is 0 and select 0 there (tf.where twice), which "
            "gives the subgradient 0 at the kink and the true gradient everywhere else."
        ),
        expected=expected,
    )


BUILDERS: dict[str, Callable[[_Setting], _Spec]] = {
    "unwatched-tensor": _unwatched_tensor,
    "integer-dtype": _integer_dtype,
    "reassigned-variable": _reassigned_variable,
    "numpy-inside-tape": _numpy_inside_tape,
    "non-persistent-tape": _non_persistent_tape,
    "gradient-outside-outer-tape": _gradient_outside_outer,
    "non-scalar-target": _non_scalar_target,
    "unconnected-source": _unconnected_source,
    "non-differentiable-op": _non_differentiable_op,
    "mixed-dtypes": _mixed_dtypes,
    "sqrt-at-zero": _sqrt_at_zero,
}
