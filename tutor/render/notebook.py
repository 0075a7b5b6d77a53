"""A Jupyter notebook of a problem, in the style of the teaching notebook the tutor started from.

Markdown cells hold the derivation in LaTeX; code cells build the tensors
(or Variables), take one update with ``tf.GradientTape``, run the descent
printing the notebook's ``Loss = …,  w = …`` lines, and ask tutor to compare
TensorFlow's gradients with SymPy's. The printed lines equal ``tutor step
--format seed`` byte for byte: the code computes what the tutor's backend
computes, in the same order, and stops where it stops.

The code is built from the problem's validated symbol names (renamed where
they would clash, see :func:`tutor.render._python.code_names`), numbers
written with ``repr`` and strings as quoted literals: nothing from the
problem file becomes code. nbformat is needed to write the notebook (the
``notebook`` extra); TensorFlow is not imported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import sympy

from .._clean import clean
from .._numbers import number
from ..errors import ToolMissingError
from ..functions import REGISTRY
from ..model import Derivation, Partial, Problem
from ..problem import loads
from . import latex
from ._python import code_names, expression, literal, uses

#: What to install when nbformat is missing.
INSTALL_HINT = "pip install 'tutor[notebook]'"

#: Values of a data column per line of code.
_PER_LINE = 8


def notebook(derivation: Derivation, source: str) -> str:
    """Return the notebook of ``derivation``'s problem as ``.ipynb`` JSON text.

    ``source`` is the text of the problem file; the notebook keeps it, so that
    its last cells can ask tutor for the same problem without the file.
    Raises :class:`ToolMissingError` when nbformat is not installed.
    """
    nbformat = _nbformat()
    from nbformat import v4

    cells = [
        v4.new_markdown_cell(text, id=cell_id)
        if kind == "markdown"
        else v4.new_code_cell(text, id=cell_id)
        for cell_id, kind, text in cells_of(derivation, source)
    ]
    book = v4.new_notebook(cells=cells, metadata=_METADATA)
    nbformat.validate(book)
    return str(nbformat.writes(book))


_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def _nbformat() -> Any:
    try:
        import nbformat
    except ImportError:
        raise ToolMissingError(
            f"writing a notebook needs nbformat, which is not installed; {INSTALL_HINT}"
        ) from None
    return nbformat


def cells_of(derivation: Derivation, source: str) -> list[tuple[str, str, str]]:
    """Return the notebook's cells as (id, "markdown" or "code", source), top to bottom."""
    problem = derivation.problem
    names = code_names([*problem.data, *problem.constants, *problem.values])
    cells = [
        ("title", "markdown", _title(problem, names)),
        ("loss", "markdown", _loss(derivation)),
        ("imports", "code", _imports(problem)),
        ("values-text", "markdown", _values_text(problem)),
        ("values", "code", _values(problem, names)),
    ]
    for partial in derivation.partials:
        cells.append((f"derivative-{partial.symbol}", "markdown", _derivative(derivation, partial)))
    cells += [
        ("update-text", "markdown", _update_text(derivation)),
        ("update", "code", _one_update(problem, names)),
        ("descent-text", "markdown", _descent_text(problem)),
        ("descent", "code", _descent(problem, names)),
        ("compare-text", "markdown", _COMPARE_TEXT),
        ("derive", "code", _derive(problem, source)),
        ("compare", "code", _COMPARE),
    ]
    return cells


# Markdown cells.


def markdown_escape(words: str) -> str:
    r"""Return prose that Markdown (and the notebook's math finder) shows as it is written.

    Characters that Markdown, HTML or MathJax read as markup get a backslash,
    and so does what would open a heading, list or quote at the start of a
    block; control characters are dropped.

    >>> markdown_escape("<b>$x$</b> * 2")
    '\\<b\\>\\$x\\$\\</b\\> \\* 2'
    >>> markdown_escape("1. first")
    '1\\. first'
    """
    text = re.sub(r"([\\`*_\[\]<>$&|~#])", r"\\\1", clean(words))
    return re.sub(r"^(\s*)([-+=>]|\d+[.)])", lambda m: m[1] + m[2][:-1] + "\\" + m[2][-1], text)


def _paragraphs(words: str) -> str:
    """Return prose as Markdown paragraphs: lines of a paragraph joined, blank lines kept."""
    blocks = re.split(r"\n\s*\n", clean(words).strip())
    return "\n\n".join(markdown_escape(" ".join(b.split())) for b in blocks if b.strip())


def _title(problem: Problem, names: Mapping[str, str]) -> str:
    parts = [f"# {markdown_escape(' '.join(clean(problem.title).split()))}"]
    if problem.summary.strip():
        parts.append(_paragraphs(problem.summary))
    parts.append(
        f"Written by `tutor notebook` from the problem `{_inline_code(problem.id)}`. Run the "
        "cells from top to bottom: the descent prints the lines `tutor step --format seed` "
        "prints."
    )
    renamed = [f"`{old}` is `{new}`" for old, new in names.items() if old != new]
    if renamed:
        parts.append(
            "In the code, " + ", ".join(renamed) + ": the plain names belong to Python, "
            "TensorFlow or the code itself."
        )
    return "\n\n".join(parts)


def _inline_code(words: str) -> str:
    """Return ``words`` fit for a Markdown code span (no backticks, one line)."""
    return " ".join(clean(words).replace("`", "'").split())


def _loss(derivation: Derivation) -> str:
    problem = derivation.problem
    loss = latex.math(latex.row_indexed(problem.loss, tuple(problem.data)))
    if problem.rows:
        columns = ", ".join(latex.math(sympy.Symbol(f"{n}_i", real=True)) for n in problem.data)
        lead = f"The loss is the mean over the {problem.rows} rows $({columns})$ of the data:"
        loss = rf"\frac{{1}}{{{problem.rows}}}\sum_{{i=1}}^{{{problem.rows}}} {loss}"
    else:
        lead = "The loss:"
    return f"## The loss\n\n{lead}\n\n$$\nL = {loss}\n$$"


def _values_text(problem: Problem) -> str:
    wrt = ", ".join(f"${latex.math(problem.symbol(n))}$" for n in problem.wrt)
    if problem.variables == "variable":
        how = (
            f"The descended values ({wrt}) are `tf.Variable`s, which the tape watches by "
            "itself and which change in place with `assign_sub`; the others are constants."
        )
    else:
        how = (
            f"Every value is a tensor (`tf.convert_to_tensor`); the tape must be told to "
            f"watch the descended ones ({wrt}) with `tape.watch`, and each update makes a "
            "new tensor."
        )
    dtype = "" if problem.dtype == "float32" else " All of them are float64."
    return f"## {'Variables' if problem.variables == 'variable' else 'Tensors'}\n\n{how}{dtype}"


def _derivative(derivation: Derivation, partial: Partial) -> str:
    problem = derivation.problem
    lines = [line for step in partial.steps for line in latex.step_lines(step)]
    lines.append(
        rf"{latex.partial_symbol(partial.symbol)} &= {latex.partial_result(partial, problem)}"
    )
    body = " \\\\\n".join(lines)
    symbol = latex.math(problem.symbol(partial.symbol))
    return (
        f"## The derivative with respect to ${symbol}$, rule by rule\n\n"
        f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
    )


def _update_text(derivation: Derivation) -> str:
    problem = derivation.problem
    lines = []
    for partial in derivation.partials:
        name = latex.math(problem.symbol(partial.symbol))
        lines.append(rf"{name} &\leftarrow {name} - \eta\, {latex.partial_symbol(partial.symbol)}")
    body = " \\\\\n".join(lines)
    return (
        "## One update with `tf.GradientTape`\n\n"
        "Step against the derivative, with the learning rate "
        f"$\\eta = {number(problem.learning_rate)}$:\n\n"
        f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
    )


def _descent_text(problem: Problem) -> str:
    wrt = ", ".join(f"${latex.math(problem.symbol(n))}$" for n in problem.wrt)
    stops = ["a number stops being finite"]
    if problem.tolerance is not None:
        stops.insert(0, f"every gradient is smaller than {number(problem.tolerance)}")
    if not problem.steps:
        return (
            "## Gradient descent\n\n"
            "This problem asks for no update (`steps = 0`): the loop below prints nothing, "
            "as `tutor step` does. Raise `range(0)` to take some."
        )
    return (
        "## Gradient descent\n\n"
        f"Up to {problem.steps} updates. Each line shows the loss *before* an update and "
        f"{wrt} *after* it; the loop stops early when {' or when '.join(stops)}, as "
        "tutor does."
    )


_COMPARE_TEXT = (
    "## Compare with SymPy\n\n"
    "tutor derives the same gradient rule by rule with SymPy, runs the same descent, "
    "and shows SymPy's exact gradient beside TensorFlow's at every update."
)

_COMPARE = "trajectory = tutor.descend(derivation, tutor.TensorFlowBackend())\ntrajectory"


# Code cells.


def _imports(problem: Problem) -> str:
    lines = [
        "import math",
        "import os",
        "",
        "# As tutor does: no start-up notices, and oneDNN's reordered arithmetic off.",
        'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")',
        'os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")',
        "import tensorflow as tf",
    ]
    for record in REGISTRY.values():
        if record.helper and uses(problem.tree, record.name):
            lines += ["", "", record.helper.strip("\n")]
    return "\n".join(lines)


def _dtype(problem: Problem) -> str:
    return "" if problem.dtype == "float32" else ", dtype=tf.float64"


def _column(values: tuple[float, ...]) -> str:
    """Return a data column as a list literal, wrapped every few values."""
    items = [literal(v) for v in values]
    if len(items) <= _PER_LINE:
        return "[" + ", ".join(items) + "]"
    rows = [", ".join(items[i : i + _PER_LINE]) for i in range(0, len(items), _PER_LINE)]
    return "[\n    " + ",\n    ".join(rows) + ",\n]"


def _make(problem: Problem, name: str, value: float) -> str:
    """Return the expression that makes ``name``'s starting value, in the problem's style."""
    dtype = _dtype(problem)
    if problem.variables == "variable":
        kind = "tf.Variable" if name in problem.wrt else "tf.constant"
    else:
        kind = "tf.convert_to_tensor"
    return f"{kind}({literal(value)}{dtype})"


def _values(problem: Problem, names: Mapping[str, str]) -> str:
    lines = []
    for name, column in problem.data.items():
        lines.append(f"{names[name]} = tf.constant({_column(column)}{_dtype(problem)})")
    for name, value in {**problem.constants, **problem.values}.items():
        lines.append(f"{names[name]} = {_make(problem, name, value)}")
    shown = [*problem.constants, *problem.values]
    lines.append(", ".join(names[n] for n in shown) + ("," if len(shown) == 1 else ""))
    return "\n".join(lines)


def _tape(problem: Problem, names: Mapping[str, str], indent: str = "") -> list[str]:
    """Return the lines that compute ``loss`` under a tape and the gradient ``grad_…``."""
    lines = [f"{indent}with tf.GradientTape() as tape:"]
    if problem.variables == "tensor":
        lines += [f"{indent}    tape.watch({names[n]})" for n in problem.wrt]
    loss = expression(problem.tree, names, problem.dtype)
    loss = f"tf.reduce_mean({loss})" if problem.data else loss
    lines.append(f"{indent}    loss = {loss}")
    targets = [names[n] for n in problem.wrt]
    grads = ", ".join(f"grad_{t}" for t in targets)
    wanted = targets[0] if len(targets) == 1 else f"[{', '.join(targets)}]"
    lines.append(f"{indent}{grads} = tape.gradient(loss, {wanted})")
    return lines


def _one_update(problem: Problem, names: Mapping[str, str]) -> str:
    rate = literal(problem.learning_rate)
    lines = _tape(problem, names)
    lines.append('print("L =", loss.numpy())')
    for n in problem.wrt:
        code = names[n]
        lines.append(f"print({_quote(f'∂L/∂{n} =')}, grad_{code}.numpy())")
        label = _quote(f"{n} - {rate}·∂L/∂{n} =")
        lines.append(f"print({label}, ({code} - {rate} * grad_{code}).numpy())")
    return "\n".join(lines)


def _descent(problem: Problem, names: Mapping[str, str]) -> str:
    rate = literal(problem.learning_rate)
    lines = [f"{names[n]} = {_make(problem, n, problem.values[n])}" for n in problem.wrt]
    lines.append(f"for _ in range({problem.steps}):")
    lines += _tape(problem, names, "    ")
    grads = [f"grad_{names[n]}" for n in problem.wrt]
    if problem.tolerance is not None:
        small = " and ".join(f"abs(float({g})) < {literal(problem.tolerance)}" for g in grads)
        lines += [f"    if {small}:", "        break  # converged"]
    for n, g in zip(problem.wrt, grads, strict=True):
        code = names[n]
        if problem.variables == "variable":
            lines.append(f"    {code}.assign_sub({rate} * {g})")
        else:
            lines.append(f"    {code} -= {rate} * {g}")
    shown = ",  ".join(["Loss = {:05.2f}", *(f"{n} = {{:05.2f}}" for n in problem.wrt)]) + " "
    values = ", ".join(["loss.numpy()", *(f"{names[n]}.numpy()" for n in problem.wrt)])
    lines.append(f"    print({_quote(shown)}.format({values}))")
    finite = ", ".join(["loss", *grads, *(names[n] for n in problem.wrt)])
    lines += [
        f"    if not all(map(math.isfinite, [{finite}])):",
        "        break  # diverged",
    ]
    return "\n".join(lines)


def _derive(problem: Problem, source: str) -> str:
    override = loads(source, problem_id=problem.id).variables != problem.variables
    lines = ["import dataclasses", ""] if override else []
    lines += [
        "import tutor",
        "",
        f"PROBLEM = {_string(source)}",
        "",
        f"problem = tutor.loads(PROBLEM, problem_id={_quote(problem.id)})",
    ]
    if override:
        lines.append(
            f"problem = dataclasses.replace(problem, variables={_quote(problem.variables)})"
        )
    lines += ["derivation = tutor.derive(problem)", "derivation"]
    return "\n".join(lines)


def _quote(words: str) -> str:
    r"""Return a double-quoted Python literal of ``words`` (JSON's escapes are Python's too).

    >>> print(_quote('Loss = {:05.2f} "w"'))
    "Loss = {:05.2f} \"w\""
    """
    return json.dumps(words, ensure_ascii=False)


def _string(words: str) -> str:
    r"""Return a Python literal of ``words``: triple-quoted when that is exact, else quoted.

    >>> print(_string("a = 1\n"))
    '''\
    a = 1
    '''
    >>> print(_string("a = '''x'''"))
    "a = '''x'''"
    """
    plain = all(ch == "\n" or ch.isprintable() for ch in words)
    if plain and "\\" not in words and "'''" not in words and not words.endswith("'"):
        return "'''\\\n" + words + "'''"
    return _quote(words)
