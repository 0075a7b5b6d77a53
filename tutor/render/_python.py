"""Python source for a loss in TensorFlow, computing exactly what the tutor's own tape computes.

Used by the notebook writer. Symbols get names that cannot clash with the
names the generated code binds (``tf``, ``tape``, ``loss``…) or that IPython
binds (``_``, ``_1``, ``In``, ``Out``), and numbers are written so that
TensorFlow rounds them as :func:`tutor.autodiff.build_loss` does: a number
beside a tensor is a Python literal, which TensorFlow converts to the
tensor's dtype; a computation on numbers alone (``1/3``, ``exp(2)``) is done
on ``tf.constant`` values in the problem's dtype, never by Python in float64.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterable, Mapping

from ..expression import Binary, Call, Name, Node, Num, Unary, is_valid_symbol_name
from ..functions import REGISTRY

#: Names the generated notebook binds or uses, besides Python's built-ins.
CODE_NAMES = frozenset(
    {
        "tf",
        "tape",
        "loss",
        "math",
        "os",
        "huber",
        "tutor",
        "dataclasses",
        "PROBLEM",
        "problem",
        "derivation",
        "trajectory",
        "In",
        "Out",
        "get_ipython",
        "display",
    }
)

#: Python's binding strength for each operator (higher binds tighter).
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "**": 4}


def code_names(symbols: Iterable[str]) -> dict[str, str]:
    """Return the Python name each symbol has in generated code.

    A symbol keeps its name unless the code or IPython needs it (``tf``,
    ``loss``, ``print``, ``_1``…) or it is the name of another symbol's
    gradient (``grad_w`` beside ``w``); then it gets a trailing underscore
    (and an ``s`` in front when it starts with one) until the name is free.

    >>> code_names(["w", "tf", "loss", "loss_", "_", "grad_w"])
    {'w': 'w', 'tf': 'tf_', 'loss': 'loss__', 'loss_': 'loss_', '_': 's__', 'grad_w': 'grad_w_'}
    """
    symbols = list(symbols)
    for name in symbols:
        if not is_valid_symbol_name(name):
            raise ValueError(f"{name!r} is not a valid symbol name")
    taken = set(symbols) | CODE_NAMES | set(dir(builtins))
    names = {}
    for name in symbols:
        free = not (name in CODE_NAMES or hasattr(builtins, name) or name.startswith("_"))
        names[name] = name if free else _fresh("s" + name if name[0] == "_" else name, taken)
    # The code calls the gradient of a symbol named c grad_c: no symbol may be called so.
    while clashes := [n for n, c in names.items() if c in {f"grad_{c}" for c in names.values()}]:
        for name in clashes:
            names[name] = _fresh(names[name], taken)
    return names


def _fresh(name: str, taken: set[str]) -> str:
    """Return ``name`` with trailing underscores, as few as make it new; mark it taken."""
    name += "_"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def uses(node: Node, name: str) -> bool:
    """Return whether the loss tree calls the function, or names the symbol, ``name``."""
    if isinstance(node, Call):
        return node.func == name or any(uses(a, name) for a in node.args)
    if isinstance(node, Binary):
        return uses(node.left, name) or uses(node.right, name)
    if isinstance(node, Unary):
        return uses(node.operand, name)
    return isinstance(node, Name) and node.id == name


def _numeric(node: Node) -> bool:
    """Return whether ``node`` holds numbers only (no symbol of the problem)."""
    if isinstance(node, Num):
        return True
    if isinstance(node, Name):
        return node.id in ("pi", "E")
    if isinstance(node, Unary):
        return _numeric(node.operand)
    if isinstance(node, Binary):
        return _numeric(node.left) and _numeric(node.right)
    return all(_numeric(a) for a in node.args)


def literal(value: float) -> str:
    """Return Python source for a float that reads back as the same float.

    >>> literal(0.01), literal(3.0), literal(math.inf)
    ('0.01', '3.0', 'math.inf')
    """
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(float(value))


def _number(node: Num | Name) -> str:
    if isinstance(node, Name):
        return "math.pi" if node.id == "pi" else "math.e"
    text = node.text
    # Short integers read best as written (the notebook's ``** 2``); anything
    # else as the float the tutor's backend makes of it.
    return text if text.isdigit() and len(text) <= 15 else literal(node.value)


def expression(node: Node, names: Mapping[str, str], dtype: str, outer: int = 0) -> str:
    """Return Python source for a loss tree, computing what the tutor's backend computes.

    ``names`` maps each symbol to its name in the code; ``dtype`` is the
    problem's (``float32`` or ``float64``).

    >>> from tutor.expression import parse
    >>> tree = parse("(w*tf - y)**2 + 1/3", {"w", "tf", "y"})
    >>> expression(tree, {"w": "w", "tf": "tf_", "y": "y"}, "float32")
    '(w * tf_ - y) ** 2 + tf.constant(1.0) / tf.constant(3.0)'
    """
    return _source(node, names, dtype, outer, bare=False)


def _source(node: Node, names: Mapping[str, str], dtype: str, outer: int, bare: bool) -> str:
    if isinstance(node, Num) or (isinstance(node, Name) and node.id in ("pi", "E")):
        if bare:
            return _number(node)
        suffix = "" if dtype == "float32" else ", dtype=tf.float64"
        return f"tf.constant({literal(_value(node))}{suffix})"
    if isinstance(node, Name):
        return names[node.id]
    if isinstance(node, Call):
        args = ", ".join(_source(a, names, dtype, 0, False) for a in node.args)
        return f"{REGISTRY[node.func].code}({args})"
    if isinstance(node, Unary):
        operand = _source(node.operand, names, dtype, _PRECEDENCE["unary"], bare)
        text = f"{node.op}{operand}"
        return f"({text})" if outer > _PRECEDENCE["unary"] else text
    prec = _PRECEDENCE[node.op]
    # Left-associative operators need parentheses on a right operand of equal
    # strength (a - (b - c)); ** is right-associative, so the reverse holds.
    left_need = prec + 1 if node.op == "**" else prec
    right_need = prec if node.op == "**" else prec + 1
    # A number may stay a Python literal only beside a tensor, which gives it its dtype.
    left_bare = _numeric(node.left) and not _numeric(node.right)
    right_bare = _numeric(node.right) and not _numeric(node.left)
    left = _source(node.left, names, dtype, left_need, left_bare)
    right = _source(node.right, names, dtype, right_need, right_bare)
    text = f"{left} {node.op} {right}"
    return f"({text})" if prec < outer else text


def _value(node: Num | Name) -> float:
    if isinstance(node, Num):
        return node.value
    return math.pi if node.id == "pi" else math.e
