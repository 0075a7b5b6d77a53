"""Rich display in Jupyter: a derivation as typeset mathematics, a descent as a table and a plot.

:class:`~tutor.model.Derivation` and :class:`~tutor.model.Trajectory` call
these from their ``_repr_*_`` methods. The LaTeX is the one ``tutor show
--format latex`` prints (MathJax typesets it in a notebook, pdfLaTeX compiles
it in a document with amsmath); the table has the terminal's columns; the
plot is an inline SVG, so no display server is needed.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .._clean import clean
from .._numbers import number
from ..model import Derivation, Trajectory, Update
from . import latex, svg, text

#: Updates shown in full in a table; a longer run shows its first and last half of these.
TABLE_ROWS = 40


def derivation_latex(deriv: Derivation) -> str:
    """Return the loss and each partial's steps as ``align*`` blocks.

    >>> from tutor import derive, load
    >>> derivation_latex(derive(load("seed-w"))).splitlines()[1]
    'L &= \\\\left(w x - y\\\\right)^{2}'
    """
    head = "\\begin{align*}\n" + f"L &= {latex.loss(deriv.problem)}\n" + "\\end{align*}"
    return f"{head}\n{latex.derivation(deriv)}"


def trajectory_latex(traj: Trajectory) -> str:
    """Return the derivation, then the table of updates and the outcome in ``gather*``."""
    parts = [r"\text{" + escape_text(_title(traj)) + "}", *_latex_table(traj)]
    count = len(traj.updates)
    outcome = f"{traj.status}: {count} update{'' if count == 1 else 's'}"
    parts.append(r"\text{" + escape_text(outcome) + "}")
    body = " \\\\\n".join(parts)
    return f"{derivation_latex(traj.derivation)}\n\\begin{{gather*}}\n{body}\n\\end{{gather*}}"


def escape_text(words: str) -> str:
    r"""Return ``words`` for ``\text{…}`` in both pdfLaTeX and MathJax: ASCII letters, digits
    and plain punctuation kept, anything else dropped.

    MathJax shows ``\text`` contents literally, so no escape sequence can be
    used there; the words passed here are the tutor's own.

    >>> escape_text("completed: 20 updates, η = 0.01 {x}")
    'completed: 20 updates,  = 0.01 x'
    """
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;()=+-/*'")
    return "".join(ch for ch in words if ch in allowed)


def _title(traj: Trajectory) -> str:
    problem = traj.problem
    wrt = ", ".join(problem.wrt)
    return (
        f"Gradient descent on {wrt}: learning rate {number(traj.learning_rate)}, "
        f"{problem.dtype}, {problem.variables} mode"
    )


def _shown(traj: Trajectory) -> list[Update | None]:
    """Return the updates a table shows; None stands for the ones left out."""
    updates = traj.updates
    if len(updates) <= TABLE_ROWS:
        return list(updates)
    half = TABLE_ROWS // 2
    return [*updates[:half], None, *updates[-half:]]


def _header(traj: Trajectory) -> list[str]:
    """Return the table's column titles as the terminal names them."""
    names = ["k", "loss"]
    for s in traj.problem.wrt:
        names += [s, f"∂L/∂{s} SymPy", f"∂L/∂{s} TF", f"{s} after"]
    return names


def _row(traj: Trajectory, u: Update) -> list[str]:
    """Return one update's cells, with the terminal table's numbers."""
    row = [str(u.step), _fixed(u.loss)]
    for s in traj.problem.wrt:
        row += [
            _fixed(u.values[s]),
            number(u.symbolic[s], 8),
            number(u.autodiff[s], 8),
            _fixed(u.updated[s]),
        ]
    return row


def _fixed(value: float) -> str:
    """Return a value with the notebook's two decimals, or 3 significant digits when huge.

    >>> _fixed(0.7699999809265137), _fixed(2.0197548e38)
    ('0.77', '2.02e+38')
    """
    return f"{value:.2f}" if abs(value) < 1e6 else number(value, 3)


def _latex_table(traj: Trajectory) -> list[str]:
    if not traj.updates:
        return []
    header = ["k", "L"]
    for s in traj.problem.wrt:
        name = latex.math(traj.derivation.problem.symbol(s))
        partial = latex.partial_symbol(s)
        header += [
            name,
            rf"{partial}\ \text{{SymPy}}",
            rf"{partial}\ \text{{TF}}",
            rf"{name}\ \text{{after}}",
        ]
    lines = [" & ".join(header) + r" \\ \hline"]
    for u in _shown(traj):
        if u is None:
            lines.append(" & ".join([r"\vdots"] * len(header)) + r" \\")
        else:
            lines.append(" & ".join(_math_cell(c) for c in _row(traj, u)) + r" \\")
    columns = "r" * len(header)
    return ["\\begin{array}{" + columns + "}\n" + "\n".join(lines) + "\n\\end{array}"]


def _math_cell(cell: str) -> str:
    r"""Return a table cell as mathematics: ``1.5e-05`` as :math:`1.5\times 10^{-5}`.

    >>> _math_cell("1.5e-05"), _math_cell("-2.02e+38"), _math_cell("-inf")
    ('1.5 \\times 10^{-5}', '-2.02 \\times 10^{38}', '-\\infty')
    """
    special = {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{nan}"}
    if cell in special:
        return special[cell]
    mantissa, e, power = cell.partition("e")
    return rf"{mantissa} \times 10^{{{int(power)}}}" if e else cell


def trajectory_html(traj: Trajectory) -> str:
    """Return the run as HTML: what was descended, the table of updates, the loss plot
    (inline SVG) and the outcome. Every string from the problem file is escaped."""
    problem = traj.problem
    parts = [
        '<div class="tutor-trajectory">',
        f"<p><strong>{escape(problem.id)}</strong>: {escape(_one_line(problem.title))}</p>",
    ]
    for partial in traj.derivation.partials:
        closed = text.closed_form(partial, problem.rows, tuple(problem.data))
        parts.append(f"<p>∂L/∂{escape(partial.symbol)} = {escape(closed)}</p>")
    parts.append(f"<p>{escape(_title(traj))}</p>")
    if traj.updates:
        parts.append(_html_table(traj))
    else:
        parts.append(f"<pre>{escape(chr(10).join(text.start_block(traj)))}</pre>")
    plot = svg.loss_plot(traj.columns.loss.tolist())
    if plot:
        parts.append(f"<div>{plot}</div>")
    parts += [f"<p>{escape(text.summary(traj))}</p>", "</div>"]
    return "\n".join(parts)


def _one_line(words: str) -> str:
    return " ".join(clean(words).split())


def _html_table(traj: Trajectory) -> str:
    header = "".join(f"<th>{escape(c)}</th>" for c in _header(traj))
    rows = []
    for u in _shown(traj):
        if u is None:
            left_out = len(traj.updates) - TABLE_ROWS
            span = len(_header(traj))
            rows.append(f'<tr><td colspan="{span}">… {left_out} more updates …</td></tr>')
        else:
            rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _row(traj, u)) + "</tr>")
    return (
        '<table style="text-align: right">\n'
        f"<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def trajectory_plain(traj: Trajectory) -> str:
    """Return the run as the terminal prints it, or a digest of it when it is long."""
    if len(traj.updates) <= TABLE_ROWS:
        return text.trajectory(traj)
    lines = [
        text.derivation(traj.derivation),
        _title(traj),
        "",
        f"Loss by update: {text.sparkline(traj.columns.loss.tolist())}",
        f"Last update: {text.seed_line(traj.updates[-1], traj.problem.wrt).rstrip()}",
        "",
        text.summary(traj),
    ]
    return "\n".join(lines) + "\n"


def mimebundle(obj: Derivation | Trajectory) -> dict[str, Any]:
    """Return what Jupyter shows for a derivation (LaTeX) or a trajectory (HTML, LaTeX),
    each with plain text for consoles."""
    if isinstance(obj, Derivation):
        return {"text/plain": text.derivation(obj), "text/latex": derivation_latex(obj)}
    return {
        "text/plain": trajectory_plain(obj),
        "text/html": trajectory_html(obj),
        "text/latex": trajectory_latex(obj),
    }
