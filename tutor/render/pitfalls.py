"""The pitfall lab as plain text, rich renderables, JSON and a standalone LaTeX document."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

from .._clean import clean
from .._mathtext import minus
from .._numbers import number
from ..pitfalls import Lab, Outcome, Pitfall

_WIDTH = 88


def listing(pitfalls: Sequence[Pitfall]) -> str:
    """Return one line per pitfall: its name and what goes wrong.

    >>> from tutor.pitfalls import PITFALLS
    >>> listing(PITFALLS[:1])
    'unwatched-tensor  a plain tensor is not watched: tape.gradient returns None\\n'
    """
    width = max((len(p.name) for p in pitfalls), default=0)
    return "".join(f"{p.name:<{width}}  {p.summary}\n" for p in pitfalls)


def listing_json(pitfalls: Sequence[Pitfall]) -> str:
    """Return the catalogue as one JSON object: ``{"pitfalls": [{name, title, summary}]}``."""
    items = [{"name": p.name, "title": p.title, "summary": p.summary} for p in pitfalls]
    return json.dumps({"pitfalls": items}, ensure_ascii=False) + "\n"


def _n(value: float, digits: int) -> str:
    """Return a number as the text shows it, with a true minus sign."""
    return minus(number(value, digits))


def _point(lab: Lab) -> str:
    return ", ".join(f"{n} = {_n(v, 8)}" for n, v in lab.point.items())


def _setting(lab: Lab) -> str:
    from .text import loss_line

    return f"on {lab.problem.id}: {loss_line(lab.problem)} at {_point(lab)}"


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        clean(text), _WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )


def _code(code: str) -> list[str]:
    return [f"    {line}" if line else "" for line in code.rstrip("\n").split("\n")]


def _observed(outcome: Outcome) -> list[str]:
    lines = [f"    {line}" for line in outcome.lines()]
    if outcome.error:
        lines.append(f"    raised {clean(outcome.error)}")
    if not outcome.results and not outcome.error:
        lines.append("    (printed nothing)")
    lines += [f"    TensorFlow warned: {clean(w)}" for w in outcome.warnings]
    return lines


def _verdicts(lab: Lab) -> list[str]:
    lines = []
    for a in lab.agreement:
        if a.symbolic is None:
            continue
        if a.autodiff is None:
            lines.append(f"    {a.label}: no number, but SymPy says {_n(a.symbolic, 8)}")
            continue
        verdict = "agrees with" if a.agrees else "DIFFERS from"
        difference, bound = _n(a.difference or 0.0, 3), _n(a.bound or 0.0, 3)
        lines.append(
            f"    {a.label}: {_n(a.autodiff, 8)} {verdict} SymPy's {_n(a.symbolic, 8)} "
            f"(difference {difference}, rounding bound {bound})"
        )
    for e in lab.expected:
        if e.value is None and lab.fixed.result(e.label) is not None:
            lines.append(f"    {e.label}: SymPy's gradient is {clean(e.text)}")
    return lines


def lab_text(lab: Lab) -> str:
    """Return one pitfall run in plain text: code, TF's result, SymPy's, why, fix, fixed code."""
    lines = [f"{lab.pitfall.name}: {lab.pitfall.title}", f"  {_setting(lab)}"]
    if lab.note:
        lines += _wrap(lab.note)
    lines += ["", "The code", *_code(lab.broken_code)]
    lines += ["", "What TensorFlow does (run now)", *_observed(lab.broken)]
    lines += ["", "What SymPy says"]
    for e in lab.expected:
        lines += textwrap.wrap(
            f"    {e.label}: {clean(e.text)}", _WIDTH, subsequent_indent="      "
        )
    lines += ["", "Why", *_wrap(lab.why), "", "The fix", *_wrap(lab.fix)]
    lines += ["", "The fixed code", *_code(lab.fixed_code)]
    lines += ["", "What the fixed code gives (run now)", *_observed(lab.fixed)]
    for verdict in _verdicts(lab):
        lines += textwrap.wrap(verdict, _WIDTH, subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def labs_text(labs: Sequence[Lab]) -> str:
    """Return several pitfall runs, one after another, each under a rule."""
    rule = "─" * _WIDTH + "\n"
    return rule.join(
        lab_text(lab) if i == 0 else "\n" + lab_text(lab) for i, lab in enumerate(labs)
    )


def lab_rich(lab: Lab) -> Any:
    """Return one pitfall run as a rich renderable (a panel, the code highlighted)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.text import Text

    def heading(text: str) -> Text:
        return Text(f"\n{text}", style="bold")

    def observed(outcome: Outcome) -> Text:
        body = Text()
        for line in outcome.lines():
            body.append(
                f"{line}\n", style="red" if line.endswith("= None") or "nan" in line else ""
            )
        if outcome.error:
            body.append(f"raised {clean(outcome.error)}\n", style="bold red")
        for w in outcome.warnings:
            body.append(f"TensorFlow warned: {clean(w)}\n", style="yellow")
        body.rstrip()
        return body

    parts: list[Any] = [Text(_setting(lab), style="dim")]
    if lab.note:
        parts.append(Text(clean(lab.note), style="yellow"))
    parts += [
        heading("The code"),
        Syntax(lab.broken_code.rstrip("\n"), "python", theme="ansi_dark"),
    ]
    parts += [heading("What TensorFlow does (run now)"), observed(lab.broken)]
    parts += [heading("What SymPy says")]
    parts += [Text(f"{e.label}: {clean(e.text)}") for e in lab.expected]
    parts += [heading("Why"), Text(clean(lab.why)), heading("The fix"), Text(clean(lab.fix))]
    parts += [
        heading("The fixed code"),
        Syntax(lab.fixed_code.rstrip("\n"), "python", theme="ansi_dark"),
    ]
    parts += [heading("What the fixed code gives (run now)"), observed(lab.fixed)]
    verdicts = Text()
    for line in _verdicts(lab):
        verdicts.append(line.strip() + "\n", style="green" if "agrees" in line else "bold red")
    verdicts.rstrip()
    parts.append(verdicts)
    title = Text(f"{lab.pitfall.name}: {lab.pitfall.title}", style="bold")
    return Panel(Group(*parts), title=title, title_align="left")


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, tuple):
        return [_json_number(v) for v in value]
    return value


def _outcome_json(code: str, outcome: Outcome) -> dict[str, Any]:
    return {
        "code": code,
        "observed": {r.label: _json_number(r.value) for r in outcome.results},
        "printed": outcome.lines(),
        "error": outcome.error or None,
        "warnings": list(outcome.warnings),
    }


def lab_data(lab: Lab) -> dict[str, Any]:
    """Return one pitfall run as JSON-ready data (non-finite numbers as strings)."""
    return {
        "pitfall": lab.pitfall.name,
        "title": lab.pitfall.title,
        "problem": lab.problem.id,
        "loss": lab.problem.loss_text,
        "values": {n: _json_number(v) for n, v in lab.point.items()},
        "note": lab.note or None,
        "broken": _outcome_json(lab.broken_code, lab.broken),
        "expected": {
            e.label: {"value": _json_number(e.value), "text": e.text} for e in lab.expected
        },
        "why": lab.why,
        "fix": lab.fix,
        "fixed": _outcome_json(lab.fixed_code, lab.fixed),
        "gradient": {
            a.label: {
                "symbolic": _json_number(a.symbolic),
                "autodiff": _json_number(a.autodiff),
                "difference": _json_number(a.difference),
                "bound": _json_number(a.bound),
                "agrees": a.agrees,
            }
            for a in lab.agreement
        },
        "agrees": lab.agrees,
    }


def lab_json(lab: Lab) -> str:
    """Return one pitfall run as one line of strict JSON."""
    return json.dumps(lab_data(lab), ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------
# LaTeX


_PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{xcolor}
\usepackage{listings}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6em}
\lstset{language=Python,basicstyle=\ttfamily\small,columns=fullflexible,keepspaces=true,
  breaklines=true,breakatwhitespace=false,frame=single,framerule=0.3pt,rulecolor=\color{gray},
  upquote=true,showstringspaces=false,postbreak=\mbox{\textcolor{gray}{$\hookrightarrow$}\space}}
\lstnewenvironment{tfbroken}{\lstset{backgroundcolor=\color{red!4}}}{}
\lstnewenvironment{tffixed}{\lstset{backgroundcolor=\color{green!4}}}{}
\lstnewenvironment{tfoutput}{\lstset{language={},frame=none,basicstyle=\ttfamily\small}}{}
"""


def _verbatim(environment: str, text: str) -> str:
    """``text`` in a listings environment; a line that would end it is not possible here.

    Code and printed lines are built from validated symbol names, numbers and
    TensorFlow's messages; a line equal to the environment's end is dropped
    rather than allowed to close it early.
    """
    end = f"\\end{{{environment}}}"
    lines = [line for line in clean(text).rstrip("\n").split("\n") if line.strip() != end]
    return f"\\begin{{{environment}}}\n" + "\n".join(lines) + f"\n{end}\n"


def _outcome_latex(outcome: Outcome) -> str:
    lines = list(outcome.lines())
    if outcome.error:
        lines.append(f"raised {outcome.error}")
    lines += [f"TensorFlow warned: {w}" for w in outcome.warnings]
    return _verbatim("tfoutput", "\n".join(lines) or "(printed nothing)")


def _prose(text: str) -> str:
    r"""Escaped prose in which long code words may break after ``_``, ``.``, ``=`` and ``,``.

    >>> _prose("unconnected_gradients=tf.ZERO")
    'unconnected\\_\\allowbreak{}gradients=\\allowbreak{}tf.\\allowbreak{}ZERO'
    """
    import re

    from . import latex

    escaped = latex.escape(text)
    escaped = escaped.replace(r"\_", r"\_\allowbreak{}")
    return re.sub(r"(=|\.(?=[A-Za-z(])|,(?=\S))", r"\1\\allowbreak{}", escaped)


def lab_latex(lab: Lab) -> str:
    """Return one pitfall run as a LaTeX section (for :func:`document`)."""
    e = _prose
    parts = [
        f"\\section{{{e(lab.pitfall.title)}}}\n",
        f"\\texttt{{{e(lab.pitfall.name)}}}: {e(lab.pitfall.summary)}.\n\n",
        f"{e(_setting(lab)[0].upper() + _setting(lab)[1:])}.",
        f" {e(lab.note)}\n\n" if lab.note else "\n\n",
        "\\subsection*{The code}\n",
        _verbatim("tfbroken", lab.broken_code),
        "\\subsection*{What TensorFlow does (run now)}\n",
        _outcome_latex(lab.broken),
        "\\subsection*{What SymPy says}\n\\begin{itemize}\n",
        *(f"\\item \\texttt{{{e(x.label)}}}: {e(x.text)}\n" for x in lab.expected),
        "\\end{itemize}\n",
        f"\\textbf{{Why.}} {e(lab.why)}\n\n",
        f"\\textbf{{The fix.}} {e(lab.fix)}\n\n",
        "\\subsection*{The fixed code}\n",
        _verbatim("tffixed", lab.fixed_code),
        "\\subsection*{What the fixed code gives (run now)}\n",
        _outcome_latex(lab.fixed),
    ]
    verdicts = [line.strip() for line in _verdicts(lab)]
    if verdicts:
        parts.append("\\begin{itemize}\n")
        parts += [f"\\item {e(v)}\n" for v in verdicts]
        parts.append("\\end{itemize}\n")
    return "".join(parts)


def document(labs: Sequence[Lab]) -> str:
    """Return a standalone LaTeX document of the pitfall runs (build it with pdflatex)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tf_version = version("tensorflow-cpu")
    except PackageNotFoundError:
        try:
            tf_version = version("tensorflow")
        except PackageNotFoundError:
            tf_version = "installed"
    title = (
        "GradientTape pitfalls"
        if len(labs) != 1
        else f"GradientTape pitfall: {labs[0].pitfall.title}"
    )
    from . import latex

    intro = (
        "Each section shows code in the style of the notebook, what TensorFlow "
        f"(version {tf_version}) returned, raised or warned when the tutor ran it, what "
        "SymPy says the gradient is, why they differ, and the fixed code with its result."
    )
    body = "\\clearpage\n".join(lab_latex(lab) for lab in labs)
    return (
        _PREAMBLE
        + f"\\title{{{latex.escape(title)}}}\n\\date{{}}\n\\begin{{document}}\n\\maketitle\n"
        + f"{latex.escape(intro)}\n\n"
        + body
        + "\\end{document}\n"
    )
