"""LaTeX for derivations and descents, from the model's SymPy objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter

from .._mathtext import checking_digits, positive_first
from .._numbers import DIGITS, number
from ..analysis import DEFAULT_TOLERANCE, describe_class, describe_curvature, describe_rate
from ..model import Derivation, Partial, Problem, Step, Trajectory, Update

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


#: Characters of mathematical prose that pdfLaTeX's utf8 input cannot take as they are.
_UNICODE = {
    "−": "$-$",
    "·": r"\textperiodcentered{}",
    "×": r"$\times$",
    "²": r"\textsuperscript{2}",
    "³": r"\textsuperscript{3}",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "≈": r"$\approx$",
    "≠": r"$\neq$",
    "→": r"$\to$",
    "←": r"$\leftarrow$",
    "∂": r"$\partial$",
    "Σ": r"$\Sigma$",
    "∑": r"$\sum$",
    "√": r"$\surd$",
    "∞": r"$\infty$",
    "…": r"\dots{}",
    "–": "--",
    "—": "---",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "θ": r"$\theta$",
    "η": r"$\eta$",
    "λ": r"$\lambda$",
    "σ": r"$\sigma$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "γ": r"$\gamma$",
    "δ": r"$\delta$",
    "ε": r"$\varepsilon$",
    "μ": r"$\mu$",
    "π": r"$\pi$",
    "ρ": r"$\rho$",
    "∇": r"$\nabla$",
    "ᵢ": r"\textsubscript{i}",
    "ₖ": r"\textsubscript{k}",
}


def escape(text: str) -> str:
    r"""Return prose safe to put in a LaTeX document: specials as literal text, no controls.

    Characters pdfLaTeX cannot typeset become a visible ``[U+XXXX]``.

    >>> escape(r"50% of \input{x}")
    '50\\% of \\textbackslash{}input\\{x\\}'
    """
    return "".join(_escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch in _SPECIALS:
        return _SPECIALS[ch]
    if ch in _UNICODE:
        return _UNICODE[ch]
    if ch in "\n\t" or 32 <= code < 127 or 0xC0 <= code <= 0xFF:
        return ch
    if code < 32 or 127 <= code < 0xA0:
        return ""
    return f"[U+{code:04X}]"


class _Printer(LatexPrinter):
    """SymPy's LaTeX, with a sum's positive terms first: σ(z) − y rather than −y + σ(z)."""

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        terms = super()._as_ordered_terms(expr, order)
        return positive_first(terms) if isinstance(expr, sympy.Add) else terms


class _ValuePrinter(_Printer):
    """Prints each symbol as its value, so a formula shows the numbers substituted."""

    def __init__(self, values: Mapping[str, float], digits: int = DIGITS) -> None:
        # With numbers in place of symbols every product needs its dot: 2 · 3 · (…).
        super().__init__({"mul_symbol": "dot"})
        self.values = values
        self.digits = digits

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if expr.name in self.values:
            text = number(self.values[expr.name], self.digits)
            return rf"\left({text}\right)" if text.startswith("-") else text
        return super()._print_Symbol(expr, style)


def math(expr: sympy.Basic) -> str:
    """Return the LaTeX of a SymPy object (sums with their positive terms first)."""
    return _Printer().doprint(expr)


def substituted(expr: sympy.Basic, values: Mapping[str, float], digits: int = DIGITS) -> str:
    r"""Return the LaTeX of ``expr`` with every symbol in ``values`` replaced by its number.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> substituted(2*x*(w*x - y), {"w": 0.5, "x": 3.0, "y": 6.0})
    '2 \\cdot 3 \\cdot \\left(0.5 \\cdot 3 - 6\\right)'
    """
    return _ValuePrinter(values, digits).doprint(expr)


def partial_symbol(symbol: str, mean: bool = False) -> str:
    r"""Return ``\frac{\partial L}{\partial w}`` for ``symbol``."""
    return rf"\frac{{\partial L}}{{\partial {sympy.latex(sympy.Symbol(symbol))}}}"


def row_indexed(expr: sympy.Expr, data: tuple[str, ...]) -> sympy.Expr:
    """Return ``expr`` with each data column ``x`` written as the row's ``x_i``."""
    if not data:
        return expr
    mapping = {sympy.Symbol(n, real=True): sympy.Symbol(f"{n}_i", real=True) for n in data}
    # Unevaluated, so that 2(b + wx − y) is not distributed into 2b + 2wx − 2y.
    with sympy.evaluate(False):
        return expr.xreplace(mapping)


def partial_result(partial: Partial, problem: Problem) -> str:
    """Return the LaTeX of a partial's closed form (a mean over rows when there is data)."""
    if not problem.rows:
        return math(partial.result)
    body = math(row_indexed(partial.result, tuple(problem.data)))
    if isinstance(partial.result, sympy.Add):
        body = rf"\left({body}\right)"
    return rf"\frac{{1}}{{{problem.rows}}}\sum_{{i=1}}^{{{problem.rows}}} {body}"


def gradient_line(
    partial: Partial, problem: Problem, values: Mapping[str, float], symbolic: float
) -> str:
    """Return ``∂L/∂w = closed form = numbers substituted = value`` as LaTeX."""
    lhs = partial_symbol(partial.symbol)
    chain = [partial_result(partial, problem)]
    if partial.result.free_symbols and not problem.rows:
        digits = checking_digits(partial.result, values, number(symbolic))
        chain.append(substituted(partial.result, values, digits))
    chain = [c for c in chain if c != number(symbolic)]
    return " = ".join([lhs, *chain, number(symbolic)])


def update_line(symbol: str, update: Update, rate: float, dtype: str = "float64") -> str:
    r"""Return ``w \leftarrow 0.5 - 0.01\cdot(-27) = 0.77`` for one update."""
    old, g, new = update_numbers(symbol, update, rate, dtype)
    value, _, note = new.partition(" (")
    if note:
        new = rf"{value}\ \text{{({escape(note)}}}"
    g = rf"\left({g}\right)" if g.startswith("-") else g
    name = sympy.latex(sympy.Symbol(symbol))
    return rf"{name} \leftarrow {old} - {number(rate)}\cdot {g} = {new}"


def update_numbers(
    symbol: str, update: Update, rate: float, dtype: str = "float64"
) -> tuple[str, str, str]:
    """Return the old value, the gradient and the new value as printed in an update line.

    The new value gets the digits that show it differs from the old one; the
    old value and the gradient those that make old − η·g, redone on the
    printed numbers, print as the new value. When the run's rounding to
    ``dtype`` is as large as those digits, the new value says so and gives the
    exact result of the printed numbers beside it.
    """
    old, g, new = update.values[symbol], update.autodiff[symbol], update.updated[symbol]
    # The new value gets the digits that show it moved (11.94295, not 11.94, after 11.94).
    least = DIGITS
    while least < 17 and new != old and number(new, least) == number(old, least):
        least += 1
    shown = number(new, least)
    eta = float(number(rate))
    for digits in range(least, 18):
        a, b = number(old, digits), number(g, digits)
        if number(float(a) - eta * float(b), least) == shown:
            return a, b, shown
    # The dtype's rounding of the new value is as large as the digits that show it moved:
    # give the exact result of the printed numbers, and say that the run rounded it.
    a, b = number(old, least + 2), number(g, least + 2)
    exact = number(float(a) - eta * float(b), least + 2)
    return a, b, f"{shown} ({dtype} rounding of {exact})"


class _StepPrinter(_Printer):
    """The steps' LaTeX: every derivative written with ∂ and its operand in brackets, as the
    plain text writes ∂/∂w[…]; SymPy would write d/dw for an operand of one symbol."""

    def _print_Derivative(self, expr: sympy.Derivative) -> str:
        order = sum(int(n) for _, n in expr.variable_count)
        top = r"\partial" if order == 1 else rf"\partial^{{{order}}}"
        below = " ".join(
            rf"\partial {self._print(v)}" + ("" if n == 1 else f"^{{{n}}}")
            for v, n in expr.variable_count
        )
        return rf"\frac{{{top}}}{{{below}}}\left[{self._print(expr.expr)}\right]"


def step_math(expr: sympy.Basic) -> str:
    """Return the LaTeX of a step's expression, derivatives always written with ∂."""
    return _StepPrinter().doprint(expr)


def step_lines(step: Step, depth: int = 0) -> list[str]:
    """Return one ``align*`` line per step of the tree, the rule named in ``\\text{}``.

    A rule whose substeps' results plug into it adds the line of what it gives;
    the algebra after the rules is one chain of ``&= …`` lines, each naming its move.
    """
    indent = r"\quad " * depth
    rule = escape(step.rule)
    if step.rule == "simplify" and step.substeps:
        # The algebra's moves as one chain of equalities, each line naming its move.
        first, *rest = step.substeps
        lines = [
            rf"{indent}{step_math(step.before)} &= {step_math(first.after)} "
            rf"&& \text{{{escape(first.rule)}}}"
        ]
        lines += [rf"{indent}&= {step_math(m.after)} && \text{{{escape(m.rule)}}}" for m in rest]
        return lines
    line = rf"{indent}{step_math(step.before)} &= {step_math(step.after)} && \text{{{rule}}}"
    lines = [line]
    if step.gives is not None and step.rule in ("chain", "sum", "product", "quotient"):
        gives = rf"\text{{so the {rule} rule gives}}"
        lines.append(rf"{indent}&= {step_math(step.gives)} && {gives}")
    for sub in step.substeps:
        lines.extend(step_lines(sub, depth + 1))
    return lines


def derivation(derivation: Derivation) -> str:
    """Return an ``align*`` block per partial: its steps, then the closed form."""
    blocks = []
    for partial in derivation.partials:
        lines = [line for step in partial.steps for line in step_lines(step)]
        closed = partial_result(partial, derivation.problem)
        lines.append(rf"{partial_symbol(partial.symbol)} &= {closed}")
        blocks.append("\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}")
    return "\n".join(blocks)


def trajectory(traj: Trajectory) -> str:
    """Return the LaTeX of a descent: the derivation, then each update's two lines."""
    problem = traj.problem
    out = [f"% {escape(problem.title)}"]
    if problem.overridden:
        current = {**problem.constants, **problem.values}
        changed = ", ".join(
            f"{n} = {number(current[n])} (file: {number(v)})" for n, v in problem.overridden.items()
        )
        out.append(f"% overridden: {escape(changed)}")
    out.append(derivation(traj.derivation))
    for update in traj.updates:
        lines = []
        for partial in traj.derivation.partials:
            values = {**problem.constants, **update.values}
            lines.append(gradient_line(partial, problem, values, update.symbolic[partial.symbol]))
            lines.append(update_line(partial.symbol, update, traj.learning_rate, problem.dtype))
        out.append(f"% update {update.step}: loss {number(update.loss)}")
        out.append("\\begin{gather*}\n" + " \\\\\n".join(lines) + "\n\\end{gather*}")
    if traj.final_loss is not None:
        final = ", ".join(f"{k} = {number(v)}" for k, v in _final(traj).items())
        out.append(f"% {traj.status}: final loss {number(traj.final_loss)} at {escape(final)}")
    return "\n".join(out) + "\n"


def _final(traj: Trajectory) -> dict[str, float]:
    if not traj.updates:
        return dict(traj.start.values)
    last = traj.updates[-1]
    return {s: last.updated[s] for s in traj.problem.wrt}


def update_rule(deriv: Derivation) -> str:
    r"""Return the update rule as display math: ``w \leftarrow w - \eta\,\partial L/\partial w``."""
    problem = deriv.problem
    lines = []
    for partial in deriv.partials:
        name = math(sympy.Symbol(partial.symbol))
        closed = partial_result(partial, problem)
        lines.append(
            rf"{name} &\leftarrow {name} - \eta\, {partial_symbol(partial.symbol)}"
            rf" = {name} - {number(problem.learning_rate)} \cdot \left({closed}\right)"
        )
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def analysis_items(deriv: Derivation) -> list[str]:
    """Return the convergence analysis as LaTeX sentences, one per fact."""
    a = deriv.analysis
    if a is None:
        return []
    problem = deriv.problem
    names = [p.symbol for p in deriv.partials]
    if not a.applies:
        items = [_sentence(a.reason)]
        if a.outcome:
            items.append(_sentence(describe_rate(a, problem)))
        if a.start is not None:
            items.append(_sentence("Curvature at the start: " + _curvature(a.start, names)))
        return items
    items = [escape(a.reason[:1].upper() + a.reason[1:]) + ", so each update is linear."]
    if len(names) == 1 and not problem.rows:
        s = math(sympy.Symbol(names[0]))
        h = a.hessian[0, 0]
        shown = f"{math(h)} = " if h.free_symbols else ""
        items.append(
            rf"Curvature: $\frac{{\partial^2 L}}{{\partial {s}^2}} = {shown}"
            rf"{number(a.eigenvalues[0])}$: " + escape(describe_class(a)) + "."
        )
    else:
        shown = ", ".join(number(v) for v in a.eigenvalues)
        hessian = math(row_indexed(a.hessian, tuple(problem.data)))
        if problem.rows:
            mean = _number_matrix(a.matrix)
            rows = problem.rows
            hessian = rf"\frac{{1}}{{{rows}}}\sum_{{i=1}}^{{{rows}}} {hessian} = {mean}"
        items.append(rf"Hessian $H = {hessian}$ with eigenvalues ${shown}$.")
        items.append(_sentence("H is " + describe_class(a)))
    if a.fixed_point is not None:
        for n in names:
            formula = a.fixed_point_formula.get(n) if a.fixed_point_formula else None
            shown = f"{math(formula)} = " if formula is not None and formula.free_symbols else ""
            s = math(sympy.Symbol(n))
            label = "The minimiser nearest the start" if a.flat else "Fixed point"
            items.append(rf"{label}: ${s}^* = {shown}{number(a.fixed_point[n])}$.")
    if a.fixed_point is not None and len(names) == 1 and a.iteration is not None:
        s = math(sympy.Symbol(names[0]))
        factor = "1 - " + math(sympy.Symbol("eta") * a.hessian[0, 0])
        items.append(
            rf"Iteration: ${s}_k - {s}^* = \left({factor}\right)^k ({s}_0 - {s}^*)$, "
            rf"factor ${number(a.iteration[0][0])}$."
        )
    if a.condition is not None:
        slow = min(v for v in a.eigenvalues if v > 0)
        items.append(
            rf"Condition number $\kappa = \lambda_{{\max}}/\lambda_{{\min}} = "
            rf"{number(a.condition)}$: along the direction of $\lambda_{{\min}} = {number(slow)}$ "
            rf"the distance shrinks slowest, by $|1 - \eta\lambda_{{\min}}| = "
            rf"{number(abs(1 - a.rate * slow))}$ per update."
        )
    if a.lr_bound is not None:
        bound = math(a.lr_bound_formula) + " = " if a.lr_bound_formula is not None else ""
        verdict = escape(describe_rate(a, problem) + ".")
        items.append(rf"Stable for $\eta < {bound}{number(a.lr_bound)}$; " + verdict)
    else:
        items.append(_sentence(describe_rate(a, problem)))
    if a.steps_to_tolerance is not None:
        if a.tolerance_kind == "gradient" and problem.tolerance is not None:
            items.append(
                rf"Every $|\partial L/\partial s| < {number(problem.tolerance)}$ (the run's "
                rf"tolerance) after {a.steps_to_tolerance} updates, by the closed form."
            )
        else:
            items.append(
                rf"Within ${number(DEFAULT_TOLERANCE)}$ of the fixed point after "
                rf"{a.steps_to_tolerance} updates."
            )
    return items


def _sentence(text: str) -> str:
    """Return plain prose as an escaped LaTeX sentence, capitalised and with a full stop.

    Only a Latin first letter is capitalised: η stays η (Η is another letter).
    """
    first = text[:1].upper() if text[:1].isascii() else text[:1]
    return escape(first + text[1:] + ".")


def _number_matrix(matrix: Any) -> str:
    rows = [" & ".join(number(v) for v in row) for row in matrix]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _curvature(c: Any, names: list[str]) -> str:
    return describe_curvature(c, tuple(names))


def curvature_item(c: Any, names: list[str], where: str) -> str:
    """Return the curvature at ``where`` (the start, the end) as a LaTeX sentence."""
    return _sentence(f"curvature at {where}: " + describe_curvature(c, tuple(names)))
