"""The TensorFlow code of one update, written in the notebook's style."""

from __future__ import annotations

from collections.abc import Mapping

from ..expression import Binary, Call, Name, Node, Num, Unary
from ..functions import REGISTRY
from ..model import Problem
from ._python import code_names

#: Python's binding strength for each operator (higher binds tighter).
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "**": 4}


#: Values of a data column per line of code, so that no line outgrows a listing.
_PER_LINE = 8


def expression(node: Node, outer: int = 0, names: Mapping[str, str] | None = None) -> str:
    """Return Python source for a loss tree, with only the parentheses Python needs.

    ``names`` maps a symbol to its name in the code (see :func:`._python.code_names`).

    >>> from tutor.expression import parse
    >>> expression(parse("(w*x - y)**2", {"w", "x", "y"}))
    '(w * x - y) ** 2'
    >>> expression(parse("(w*tf - y)**2", {"w", "tf", "y"}), names={"tf": "tf_"})
    '(w * tf_ - y) ** 2'
    """
    names = names or {}
    if isinstance(node, Num):
        return node.text
    if isinstance(node, Name):
        return {"pi": "math.pi", "E": "math.e"}.get(node.id) or names.get(node.id, node.id)
    if isinstance(node, Call):
        return (
            f"{REGISTRY[node.func].code}({', '.join(expression(a, 0, names) for a in node.args)})"
        )
    if isinstance(node, Unary):
        text = f"{node.op}{expression(node.operand, _PRECEDENCE['unary'], names)}"
        return f"({text})" if outer > _PRECEDENCE["unary"] else text
    prec = _PRECEDENCE[node.op]
    # Left-associative operators need parentheses on a right operand of equal
    # strength (a - (b - c)); ** is right-associative, so the reverse holds.
    left_need = prec + 1 if node.op == "**" else prec
    right_need = prec if node.op == "**" else prec + 1
    left = expression(node.left, left_need, names)
    text = f"{left} {node.op} {expression(node.right, right_need, names)}"
    return f"({text})" if prec < outer else text


def _column(values: tuple[float, ...]) -> str:
    """Return a data column as a list literal, wrapped every few values."""
    if len(values) <= _PER_LINE:
        return repr(list(values))
    rows = [
        ", ".join(map(repr, values[i : i + _PER_LINE])) for i in range(0, len(values), _PER_LINE)
    ]
    return "[\n    " + ",\n    ".join(rows) + ",\n]"


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
    code = code_names([*problem.data, *problem.constants, *problem.values])
    for name, column in problem.data.items():
        lines.append(f"{code[name]} = tf.constant({_column(column)}{dtype})")
    for name, value in {**problem.constants, **problem.values}.items():
        if name in problem.wrt and variable:
            lines.append(f"{code[name]} = tf.Variable({value!r}{dtype})")
        elif variable:
            lines.append(f"{code[name]} = tf.constant({value!r}{dtype})")
        else:
            lines.append(f"{code[name]} = tf.convert_to_tensor({value!r}{dtype})")
    lines.append("with tf.GradientTape() as tape:")
    if not variable:
        lines += [f"    tape.watch({code[name]})" for name in problem.wrt]
    loss = expression(problem.tree, names=code)
    lines.append(f"    loss = tf.reduce_mean({loss})" if problem.data else f"    loss = {loss}")
    targets = ", ".join(code[n] for n in problem.wrt)
    grads = ", ".join(f"grad_{code[n]}" for n in problem.wrt)
    if len(problem.wrt) == 1:
        lines.append(f"{grads} = tape.gradient(loss, {targets})")
    else:
        lines.append(f"{grads} = tape.gradient(loss, [{targets}])")
    for name in problem.wrt:
        rate = repr(problem.learning_rate)
        if variable:
            lines.append(f"{code[name]}.assign_sub({rate} * grad_{code[name]})")
        else:
            lines.append(f"{code[name]} -= {rate} * grad_{code[name]}")
    # The printed label keeps the problem's own name; only the code's variable changes.
    shown = ", ".join(f"{n} = {{:05.2f}}" for n in problem.wrt)
    args = ", ".join(f"{code[n]}.numpy()" for n in problem.wrt)
    lines.append(f'print("Loss = {{:05.2f}},  {shown} ".format(loss.numpy(), {args}))')
    return "\n".join(lines) + "\n"


def labelled_code(problem: Problem) -> str:
    """Return :func:`update_code` under a comment that says what it is (still runnable)."""
    mode = f"{problem.variables} mode, {problem.dtype}"
    return f"# One update of {problem.id} in TensorFlow ({mode}):\n{update_code(problem)}"


def wrapped(code: str, width: int = 78) -> str:
    """Return ``code`` with each line longer than ``width`` broken inside its brackets.

    A line breaks after a comma or before a ``+``/``-``/``*``/``/`` that stands
    inside brackets and outside strings, so the result is the same Python; the
    rest of the line is indented four spaces past the line's own indentation.
    A line with no such place is left as it is.

    >>> print(wrapped("x = f(aaaa, bbbb + cccc)", 14))
    x = f(aaaa,
        bbbb + cccc)
    """
    out: list[str] = []
    for line in code.splitlines():
        out.extend(_wrap_line(line, width))
    return "\n".join(out) + ("\n" if code.endswith("\n") else "")


def _wrap_line(line: str, width: int) -> list[str]:
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    lines = []
    while len(line) > width:
        cut = _break_at(line, width)
        if cut is None:
            break
        lines.append(line[:cut].rstrip())
        line = indent + line[cut:].lstrip()
    return [*lines, line]


def _break_at(line: str, width: int) -> int | None:
    """Return the column ≤ ``width`` where ``line`` best breaks inside brackets, or None.

    The outermost place reads best: a comma or a ``+``/``-``, else a ``*``/``/``;
    among equals, the last one that fits.
    """
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.lstrip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    depth = 0
    places: list[tuple[int, int, int]] = []  # (outermost first, sum before product, column)
    shift = len(line) - len(line.lstrip())
    for tok in tokens:
        if tok.type != tokenize.OP:
            continue
        col = tok.start[1] + shift
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
        elif depth > 0 and tok.string == "," and col + 1 <= width:
            places.append((-depth, 1, col + 1))
        elif depth > 0 and tok.string in ("+", "-", "*", "/") and _spaced(line, col, width):
            places.append((-depth, int(tok.string in "+-"), col))
    return max(places)[2] if places else None


def _spaced(line: str, col: int, width: int) -> bool:
    """Return whether the operator at ``col`` is a binary one (spaced) that fits ``width``."""
    return 0 < col <= width and line[col - 1] == " " and line[col + 1 : col + 2] == " "
