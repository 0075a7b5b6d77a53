"""LaTeX handouts from a :class:`tutor.handout.Handout`, through a Jinja2 template."""

from __future__ import annotations

import math
import re
from importlib import resources
from typing import Any

from .._mathtext import latex_name
from .._numbers import number, side_by_side
from ..errors import UsageError
from ..handout import Exercise, Handout, Worked
from ..model import Derivation, Trajectory
from . import latex
from .code import update_code, wrapped
from .text import end_curvature, summary

#: Characters per line of the code listing (\small typewriter in the text width).
CODE_WIDTH = 84
#: Lines of code kept on one page (a longer listing may break across pages).
CODE_PAGE = 40


def number_columns(rows: list[list[str]]) -> str:
    """Return the dcolumn specs of numbers aligned on the decimal point, one per column.

    Each column reserves as many places after the point as its longest
    fraction needs (``D{.}{.}{n}``), so the column is no wider than its numbers.
    """
    widths = [0] * (len(rows[0]) if rows else 0)
    for row in rows:
        for j, cell in enumerate(row):
            fraction = cell.partition(".")[2]
            # A power of ten (\times 10^{-5}) takes the room of about six digits and its
            # exponent's characters.
            power = re.search(r"\\times 10\^\{(-?\d+)\}", fraction)
            extra = 6 + len(power.group(1)) if power else 0
            widths[j] = max(
                widths[j], len(fraction[: power.start()] if power else fraction) + extra
            )
    return "".join(f"D{{.}}{{.}}{{{w}}}" for w in widths)


#: Rows of the update table shown in full; longer runs show the first and last rows.
TABLE_ROWS = 40
TABLE_HEAD, TABLE_TAIL = 25, 5


def template_source(path: str | None = None) -> str:
    """Return the text of the handout template: the shipped one, or the file at ``path``."""
    if path is None:
        return (resources.files("tutor") / "templates" / "handout.tex.j2").read_text("utf-8")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--template {path}: cannot read it ({exc}); give a UTF-8 file") from None


def render(handout: Handout, template: str | None = None, *, key_only: bool = False) -> str:
    """Return the LaTeX document of ``handout`` rendered with ``template`` (source text).

    With ``key_only``, the document holds the answer key alone (a file to keep
    apart from the students' sheets).
    """
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        compiled = env.from_string(template if template is not None else template_source())
        return compiled.render(doc=context(handout, key_only=key_only))
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise UsageError(f"the handout template{where}: {exc}; fix the template") from None


def context(handout: Handout, *, key_only: bool = False) -> dict[str, Any]:
    """Return the values the template sees, every one of them LaTeX already."""
    titles = [w.derivation.problem.title for w in handout.worked]
    if key_only:
        title = f"Gradient descent exercises (seed {handout.seed}): answer key"
    elif handout.exercises:
        title = f"Gradient descent exercises (seed {handout.seed})"
    else:
        title = latex.escape(titles[0]) if len(titles) == 1 else "Gradient descent"
    shown = () if key_only else handout.exercises
    exercises = [_exercise(e, len(handout.exercises)) for e in shown]
    key = [_key(e) for e in handout.exercises if e.key is not None] if handout.answers else []
    worked = [_worked(w) for w in handout.worked]
    # One worked problem is the document: its title is the document's, printed once.
    alone = len(worked) == 1 and not handout.exercises
    for w in worked:
        w["heading"] = "" if alone else rf"\section{{{w['title']}}}"
    return {
        "title": title,
        "worked": worked,
        "exercises": exercises,
        "key": key,
    }


def _prose(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(latex.escape(p) for p in paragraphs if p)


def _partials(derivation: Derivation) -> list[dict[str, str]]:
    out = []
    for partial in derivation.partials:
        steps = latex.fitted_derivation(partial)
        out.append(
            {
                "steps": steps,
                "symbol": latex.partial_symbol(partial.symbol),
                "result": latex.partial_result(partial, derivation.problem),
            }
        )
    return out


def _loss_note(derivation: Derivation) -> str:
    """Return "" (the loss shows its own mean over the rows); kept for older templates."""
    return ""


loss = latex.loss


def _worked(w: Worked) -> dict[str, Any]:
    problem = w.derivation.problem
    traj = w.trajectory
    return {
        "title": latex.escape(problem.title),
        "summary": _prose(problem.summary),
        "loss": loss(problem),
        "loss_note": _loss_note(w.derivation),
        "data": data_table(problem),
        "partials": _partials(w.derivation),
        "update_rule": latex.update_rule(w.derivation),
        "analysis": latex.analysis_items(w.derivation),
        "table": table(traj),
        "plot": _plot(traj),
        "plot_mode": _plot_mode(traj),
        "outcome": latex.escape(summary(traj)),
        "end": latex.escape(end_curvature(traj)) + "." if traj.end_curvature else "",
        "code": wrapped(update_code(problem), CODE_WIDTH),
        "code_keep": update_code(problem).count("\n") <= CODE_PAGE,
        "graph": _graph(w),
    }


def _graph(w: Worked) -> str:
    """The computation graph section's LaTeX, or "" when the handout has none."""
    if w.graph is None:
        return ""
    from .graph import latex as graph_latex

    return graph_latex(w.graph)


#: Data rows shown in a handout's table; more are counted, not shown.
DATA_ROWS = 30


def data_table(problem: Any) -> str:
    """Return the data rows as a booktabs table (the first :data:`DATA_ROWS`), with their count."""
    if not problem.rows:
        return ""
    names = list(problem.data)
    head = ["$i$", *(_head(f"${latex_name(n, 'i')}$") for n in names)]
    shown = min(problem.rows, DATA_ROWS)
    cells = [[_cell(number(problem.data[n][i], 6)) for n in names] for i in range(shown)]
    rows = [" & ".join([str(i + 1), *row]) + r" \\" for i, row in enumerate(cells)]
    if shown < problem.rows:
        rows.append(
            rf"\multicolumn{{{len(head)}}}{{c}}{{$\vdots$ ({problem.rows - shown} more rows)}} \\"
        )
    count = "row" if problem.rows == 1 else "rows"
    return "\n".join(
        [
            rf"The data: {problem.rows} {count}, $i = 1, \dots, {problem.rows}$.",
            r"\begin{center}\small",
            rf"\begin{{tabular}}{{r{number_columns(cells)}}}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{center}",
        ]
    )


def _values(problem: Any) -> str:
    return ",\\ ".join(
        f"{latex.math(problem.symbol(n))} = {number(v)}" for n, v in problem.values.items()
    )


def _exercise(e: Exercise, total: int) -> dict[str, Any]:
    problem = e.variant.problem
    partials = ", ".join(f"${latex.partial_symbol(s)}$" for s in problem.wrt)
    return {
        "heading": f"Variant {e.variant.number} of {total} (seed {e.variant.seed})",
        "title": latex.escape(problem.title),
        "summary": "",
        "loss": loss(problem),
        "loss_note": _loss_note(e.derivation),
        "start": _values(problem),
        "rate": number(problem.learning_rate),
        "partials_asked": partials,
        "updates_asked": min(3, problem.steps) or 1,
    }


def _key(e: Exercise) -> dict[str, Any]:
    assert e.key is not None  # only called for exercises with a key
    problem = e.variant.problem
    return {
        "heading": f"Variant {e.variant.number} (seed {e.variant.seed}): "
        f"{latex.escape(problem.title)}",
        "start": _values(problem),
        "rate": number(problem.learning_rate),
        "partials": _partials(e.derivation),
        "analysis": latex.analysis_items(e.derivation),
        "table": table(e.key),
    }


def _row(traj: Trajectory, k: int) -> list[str]:
    update = traj.updates[k]
    cells = [str(update.step)]
    for p in traj.derivation.partials:
        cells.append(_fixed(update.values[p.symbol]))
    # The loss with significant digits: near convergence 0.00 would say nothing.
    cells.append(_cell(number(update.loss)))
    for p in traj.derivation.partials:
        s = p.symbol
        pair = side_by_side(update.symbolic[s], update.autodiff[s], traj.problem.dtype)
        cells += [_cell(v) for v in pair]
    cells += [_fixed(update.updated[p.symbol]) for p in traj.derivation.partials]
    return cells


def _fixed(value: float) -> str:
    text = f"{value:.2f}" if math.isfinite(value) and abs(value) < 1e6 else number(value)
    return _cell(text)


def _cell(text: str) -> str:
    """Return a number for a decimal-aligned column: math, E-notation as a power of ten."""
    return latex.tex_text(text)


def _head(text: str) -> str:
    """Return a column head, centred over a decimal-aligned column."""
    return rf"\multicolumn{{1}}{{c}}{{{text}}}"


def table(traj: Trajectory) -> str:
    """Return booktabs tables of the updates (first and last rows of a long run).

    With one variable, one table; with more, the values and the loss in one
    table and the gradients in a second, so that neither runs past the margin.
    """
    names = [p.symbol for p in traj.derivation.partials]
    head = ["$k$", *(_head(f"${latex_name(n, 'k')}$") for n in names), _head("$L$")]
    for n in names:
        partial = latex.partial_symbol(n)
        head += [_head(f"SymPy ${partial}$"), _head(f"TF ${partial}$")]
    head += [_head(f"${latex_name(n, 'k+1')}$") for n in names]
    count = len(traj.updates)
    if not count:
        return "No update is taken (steps = 0)."
    shown = list(range(count))
    if count > TABLE_ROWS:
        shown = [*range(TABLE_HEAD), -1, *range(count - TABLE_TAIL, count)]
    cells = {k: _row(traj, k) for k in shown if k >= 0}
    if len(names) == 1:
        return _tabular(head, cells, shown)
    values = [0, *range(1, len(names) + 2), *range(len(head) - len(names), len(head))]
    gradients = [0, *range(len(names) + 2, len(head) - len(names))]
    return "\n".join(
        _tabular(
            [head[j] for j in columns],
            {k: [c[j] for j in columns] for k, c in cells.items()},
            shown,
        )
        for columns in (values, gradients)
    )


def _tabular(head: list[str], cells: dict[int, list[str]], shown: list[int]) -> str:
    """Return one centred booktabs table: ``head``, then the rows ``shown`` (-1 for a gap).

    A ``longtable``: a long run breaks across pages, its head repeated,
    rather than leaving the rest of a page empty.
    """
    gap = rf"\multicolumn{{{len(head)}}}{{c}}{{$\vdots$}} \\"
    rows = [gap if k < 0 else " & ".join(cells[k]) + r" \\" for k in shown]
    spec = "r" + number_columns([row[1:] for row in cells.values()])
    return "\n".join(
        [
            r"{\small",
            rf"\begin{{longtable}}{{{spec}}}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
            r"\endhead",
            *rows,
            r"\bottomrule",
            r"\end{longtable}}",
        ]
    )


def _plot(traj: Trajectory) -> str:
    points = [(u.step, u.loss) for u in traj.updates if math.isfinite(u.loss)]
    if len(points) < 2:
        return ""
    if len(points) > 400:
        stride = math.ceil(len(points) / 400)
        points = points[::stride]
    return " ".join(f"({k},{loss:.6g})" for k, loss in points)


def _plot_mode(traj: Trajectory) -> str:
    losses = [u.loss for u in traj.updates if math.isfinite(u.loss)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 100:
        return " ymode=log,"
    return ""
