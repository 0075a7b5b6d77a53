"""LaTeX handouts from a :class:`tutor.handout.Handout`, through a Jinja2 template."""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from .._numbers import number, side_by_side
from ..errors import UsageError
from ..handout import Exercise, Handout, Worked
from ..model import Derivation, Trajectory
from . import latex
from .code import update_code
from .text import end_curvature, summary

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
    return {
        "title": title,
        "worked": [_worked(w) for w in handout.worked],
        "exercises": exercises,
        "key": key,
    }


def _prose(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(latex.escape(p) for p in paragraphs if p)


def _partials(derivation: Derivation) -> list[dict[str, str]]:
    out = []
    for partial in derivation.partials:
        lines = [line for step in partial.steps for line in latex.step_lines(step)]
        steps = "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}" if lines else ""
        out.append(
            {
                "steps": steps,
                "symbol": latex.partial_symbol(partial.symbol),
                "result": latex.partial_result(partial, derivation.problem),
            }
        )
    return out


def _loss_note(derivation: Derivation) -> str:
    rows = derivation.problem.rows
    return f"(the mean of this over the {rows} data rows)" if rows else ""


def _worked(w: Worked) -> dict[str, Any]:
    problem = w.derivation.problem
    traj = w.trajectory
    return {
        "title": latex.escape(problem.title),
        "summary": _prose(problem.summary),
        "loss": latex.math(problem.loss),
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
        "code": update_code(problem),
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
    head = ["$i$", *(f"${latex.math(problem.symbol(n))}_i$" for n in names)]
    shown = min(problem.rows, DATA_ROWS)
    rows = [
        " & ".join([str(i + 1), *(number(problem.data[n][i], 6) for n in names)]) + r" \\"
        for i in range(shown)
    ]
    if shown < problem.rows:
        rows.append(
            rf"\multicolumn{{{len(head)}}}{{c}}{{$\vdots$ ({problem.rows - shown} more rows)}} \\"
        )
    count = "row" if problem.rows == 1 else "rows"
    return "\n".join(
        [
            rf"The data: {problem.rows} {count}, $i = 1, \dots, {problem.rows}$.",
            r"\begin{center}\small",
            rf"\begin{{tabular}}{{{'r' * len(head)}}}",
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
        "loss": latex.math(problem.loss),
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


def _row(traj: Trajectory, k: int) -> str:
    update = traj.updates[k]
    cells = [str(update.step)]
    for p in traj.derivation.partials:
        cells.append(f"{update.values[p.symbol]:.2f}")
    cells.append(_fixed(update.loss))
    for p in traj.derivation.partials:
        s = p.symbol
        cells += side_by_side(update.symbolic[s], update.autodiff[s], traj.problem.dtype)
    cells += [f"{update.updated[p.symbol]:.2f}" for p in traj.derivation.partials]
    return " & ".join(cells) + r" \\"


def _fixed(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) and abs(value) < 1e6 else number(value)


def table(traj: Trajectory) -> str:
    """Return a booktabs table of the updates (first and last rows of a long run)."""
    names = [p.symbol for p in traj.derivation.partials]
    head = ["$k$", *(f"${n}_k$" for n in names), "$L$"]
    for n in names:
        head += [f"SymPy ${latex.partial_symbol(n)}$", f"TF ${latex.partial_symbol(n)}$"]
    head += [f"${n}_{{k+1}}$" for n in names]
    count = len(traj.updates)
    shown = list(range(count))
    if count > TABLE_ROWS:
        shown = [*range(TABLE_HEAD), -1, *range(count - TABLE_TAIL, count)]
    gap = rf"\multicolumn{{{len(head)}}}{{c}}{{$\vdots$}} \\"
    rows = [gap if k < 0 else _row(traj, k) for k in shown]
    if not rows:
        return "No update is taken (steps = 0)."
    spec = "r" * len(head)
    return "\n".join(
        [
            r"\begin{center}\small",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{center}",
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
