"""LaTeX for derivations and descents, from the model's SymPy objects."""

from __future__ import annotations

from collections.abc import Mapping

import sympy
from sympy.printing.latex import LatexPrinter

from ..model import Derivation, Partial, Step, Trajectory, Update
from ._numbers import number

_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def escape(text: str) -> str:
    r"""Return prose safe to put in a LaTeX document: specials as literal text, no controls.

    >>> escape(r"50% of \input{x}")
    '50\\% of \\textbackslash{}input\\{x\\}'
    """
    return "".join(
        _SPECIALS.get(ch, ch) for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127)
    )


class _ValuePrinter(LatexPrinter):
    """Prints each symbol as its value, so a formula shows the numbers substituted."""

    def __init__(self, values: Mapping[str, float]) -> None:
        super().__init__()
        self.values = values

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if expr.name in self.values:
            text = number(self.values[expr.name])
            return rf"\left({text}\right)" if text.startswith("-") else text
        return super()._print_Symbol(expr, style)


def math(expr: sympy.Basic) -> str:
    """Return the LaTeX of a SymPy object."""
    return sympy.latex(expr)


def substituted(expr: sympy.Basic, values: Mapping[str, float]) -> str:
    r"""Return the LaTeX of ``expr`` with every symbol in ``values`` replaced by its number.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> substituted(2*x*(w*x - y), {"w": 0.5, "x": 3.0, "y": 6.0})
    '2 \\cdot 3 \\left(0.5 \\cdot 3 - 6\\right)'
    """
    return _ValuePrinter(values).doprint(expr)


def partial_symbol(symbol: str, mean: bool = False) -> str:
    r"""Return ``\frac{\partial L}{\partial w}`` for ``symbol``."""
    return rf"\frac{{\partial L}}{{\partial {sympy.latex(sympy.Symbol(symbol))}}}"


def partial_result(partial: Partial, rows: int) -> str:
    """Return the LaTeX of a partial's closed form (a mean over rows when there is data)."""
    body = math(partial.result)
    return rf"\frac{{1}}{{{rows}}}\sum_{{i=1}}^{{{rows}}} {body}" if rows else body


def gradient_line(
    partial: Partial,
    update: Update | None,
    values: Mapping[str, float],
    symbolic: float,
    rows: int = 0,
) -> str:
    """Return ``∂L/∂w = closed form = numbers substituted = value`` as LaTeX."""
    lhs = partial_symbol(partial.symbol)
    closed = partial_result(partial, rows)
    chain = [closed]
    if partial.result.free_symbols and not rows:
        chain.append(substituted(partial.result, values))
    chain = [c for c in chain if c != number(symbolic)]
    return " = ".join([lhs, *chain, number(symbolic)])


def update_line(symbol: str, update: Update, rate: float) -> str:
    r"""Return ``w \leftarrow 0.5 - 0.01\cdot(-27) = 0.77`` for one update."""
    g = number(update.autodiff[symbol])
    g = rf"\left({g}\right)" if g.startswith("-") else g
    name = sympy.latex(sympy.Symbol(symbol))
    return (
        rf"{name} \leftarrow {number(update.values[symbol])} - {number(rate)}\cdot {g}"
        rf" = {number(update.updated[symbol])}"
    )


def step_lines(step: Step, depth: int = 0) -> list[str]:
    """Return one ``align*`` line per step of the tree, the rule named in ``\\text{}``."""
    indent = r"\quad " * depth
    line = rf"{indent}{math(step.before)} &= {math(step.after)} && \text{{{escape(step.rule)}}}"
    lines = [line]
    for sub in step.substeps:
        lines.extend(step_lines(sub, depth + 1))
    return lines


def derivation(derivation: Derivation) -> str:
    """Return an ``align*`` block per partial: its steps, then the closed form."""
    rows = derivation.problem.rows
    blocks = []
    for partial in derivation.partials:
        lines = [line for step in partial.steps for line in step_lines(step)]
        lines.append(rf"{partial_symbol(partial.symbol)} &= {partial_result(partial, rows)}")
        blocks.append("\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}")
    return "\n".join(blocks)


def trajectory(traj: Trajectory) -> str:
    """Return the LaTeX of a descent: the derivation, then each update's two lines."""
    problem = traj.problem
    out = [f"% {escape(problem.title)}", derivation(traj.derivation)]
    for update in traj.updates:
        lines = []
        for partial in traj.derivation.partials:
            values = {**problem.constants, **update.values}
            lines.append(
                gradient_line(
                    partial, update, values, update.symbolic[partial.symbol], problem.rows
                )
            )
            lines.append(update_line(partial.symbol, update, traj.learning_rate))
        out.append(f"% update {update.step}: loss {number(update.loss)}")
        out.append("\\begin{gather*}\n" + " \\\\\n".join(lines) + "\n\\end{gather*}")
    return "\n".join(out) + "\n"
