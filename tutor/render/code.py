"""The TensorFlow code of one update, written in the notebook's style."""

from __future__ import annotations

from ..expression import Binary, Call, Name, Node, Num, Unary
from ..functions import REGISTRY
from ..model import Problem

#: Python's binding strength for each operator (higher binds tighter).
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "**": 4}


def expression(node: Node, outer: int = 0) -> str:
    """Return Python source for a loss tree, with only the parentheses Python needs.

    >>> from tutor.expression import parse
    >>> expression(parse("(w*x - y)**2", {"w", "x", "y"}))
    '(w * x - y) ** 2'
    """
    if isinstance(node, Num):
        return node.text
    if isinstance(node, Name):
        return {"pi": "math.pi", "E": "math.e"}.get(node.id, node.id)
    if isinstance(node, Call):
        return f"{REGISTRY[node.func].code}({', '.join(expression(a) for a in node.args)})"
    if isinstance(node, Unary):
        text = f"{node.op}{expression(node.operand, _PRECEDENCE['unary'])}"
        return f"({text})" if outer > _PRECEDENCE["unary"] else text
    prec = _PRECEDENCE[node.op]
    # Left-associative operators need parentheses on a right operand of equal
    # strength (a - (b - c)); ** is right-associative, so the reverse holds.
    left_need = prec + 1 if node.op == "**" else prec
    right_need = prec if node.op == "**" else prec + 1
    text = f"{expression(node.left, left_need)} {node.op} {expression(node.right, right_need)}"
    return f"({text})" if prec < outer else text


def _uses(node: Node, name: str) -> bool:
    if isinstance(node, Call):
        return node.func == name or any(_uses(a, name) for a in node.args)
    if isinstance(node, Binary):
        return _uses(node.left, name) or _uses(node.right, name)
    if isinstance(node, Unary):
        return _uses(node.operand, name)
    return isinstance(node, Name) and node.id == name


def update_code(problem: Problem) -> str:
    """Return a runnable Python script that takes one update of ``problem`` with TensorFlow."""
    dtype = "" if problem.dtype == "float32" else ", dtype=tf.float64"
    variable = problem.variables == "variable"
    imports = "import math\n\n" if _uses(problem.tree, "pi") or _uses(problem.tree, "E") else ""
    lines = [f"{imports}import tensorflow as tf"]
    for record in REGISTRY.values():
        if record.helper and _uses(problem.tree, record.name):
            lines.append(record.helper.rstrip("\n"))
    lines.append("")
    for name, column in problem.data.items():
        lines.append(f"{name} = tf.constant({list(column)!r}{dtype})")
    for name, value in {**problem.constants, **problem.values}.items():
        if name in problem.wrt and variable:
            lines.append(f"{name} = tf.Variable({value!r}{dtype})")
        elif variable:
            lines.append(f"{name} = tf.constant({value!r}{dtype})")
        else:
            lines.append(f"{name} = tf.convert_to_tensor({value!r}{dtype})")
    lines.append("with tf.GradientTape() as tape:")
    if not variable:
        lines += [f"    tape.watch({name})" for name in problem.wrt]
    loss = expression(problem.tree)
    lines.append(f"    loss = tf.reduce_mean({loss})" if problem.data else f"    loss = {loss}")
    targets = ", ".join(problem.wrt)
    grads = ", ".join(f"grad_{n}" for n in problem.wrt)
    if len(problem.wrt) == 1:
        lines.append(f"{grads} = tape.gradient(loss, {targets})")
    else:
        lines.append(f"{grads} = tape.gradient(loss, [{targets}])")
    for name in problem.wrt:
        rate = repr(problem.learning_rate)
        if variable:
            lines.append(f"{name}.assign_sub({rate} * grad_{name})")
        else:
            lines.append(f"{name} -= {rate} * grad_{name}")
    shown = ", ".join(f"{n} = {{:05.2f}}" for n in problem.wrt)
    args = ", ".join(f"{n}.numpy()" for n in problem.wrt)
    lines.append(f'print("Loss = {{:05.2f}},  {shown} ".format(loss.numpy(), {args}))')
    return "\n".join(lines) + "\n"
