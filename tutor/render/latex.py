"""LaTeX for derivations and descents, from the model's SymPy objects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter

from .._clean import clean
from .._mathtext import (
    checking_digits,
    latex_name,
    mean_parts,
    positive_first,
    relation_sides,
)
from .._numbers import DIGITS, number
from ..analysis import DEFAULT_TOLERANCE, describe_class, describe_curvature, describe_rate
from ..expression import Binary, Call, Name, Node, Num, Unary
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
    "ζ": r"$\zeta$",
    "κ": r"$\kappa$",
    "ν": r"$\nu$",
    "ξ": r"$\xi$",
    "τ": r"$\tau$",
    "φ": r"$\varphi$",
    "χ": r"$\chi$",
    "ψ": r"$\psi$",
    "ω": r"$\omega$",
    "Γ": r"$\Gamma$",
    "Δ": r"$\Delta$",
    "Θ": r"$\Theta$",
    "Λ": r"$\Lambda$",
    "Φ": r"$\Phi$",
    "Ω": r"$\Omega$",
    "ι": r"$\iota$",
    "ο": r"$o$",
    "υ": r"$\upsilon$",
    "ς": r"$\varsigma$",
    "ϑ": r"$\vartheta$",
    "ϕ": r"$\phi$",
    "Ξ": r"$\Xi$",
    "Π": r"$\Pi$",
    "Ψ": r"$\Psi$",
    "Υ": r"$\Upsilon$",
    "±": r"$\pm$",
    "°": r"\textdegree{}",
    "∛": r"$\sqrt[3]{}$",
    "ⁿ": r"\textsuperscript{n}",
    "⁻": r"\textsuperscript{$-$}",
    **{sup: rf"\textsuperscript{{{d}}}" for d, sup in zip("01456789", "⁰¹⁴⁵⁶⁷⁸⁹", strict=True)},
    **{sub: rf"\textsubscript{{{d}}}" for d, sub in zip("0123456789", "₀₁₂₃₄₅₆₇₈₉", strict=True)},
    **{
        sup: rf"\textsuperscript{{{c}}}"
        for c, sup in zip("abcdefghijklmoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True)
    },
    **{
        sub: rf"\textsubscript{{{c}}}"
        for c, sub in zip("aehjklmnoprstuvx", "ₐₑₕⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)
    },
}


#: A one-letter name with a subscript in prose (λ_max, x_i), set as a subscript.
_SUBSCRIPTED = re.compile(r"(?<![A-Za-z0-9])([A-Za-zα-ωΑ-Ω])_([A-Za-z0-9]+)")
#: A minus sign before a number in prose (ASCII in the text the analysis writes).
_NUMBER_MINUS = re.compile(r"(?<![\w.=])-(?=\d|inf\b)")
#: A number in E-notation in prose (1e-06), set as a power of ten.
_E_NOTATION = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?e[+-]?\d+\b")


def escape(text: str) -> str:
    r"""Return prose safe to put in a LaTeX document: specials as literal text, no controls.

    A minus before a number is a true minus, ``--`` stays two hyphens (not an
    en dash), and ``λ_max`` is λ with the subscript max. Characters pdfLaTeX
    cannot typeset become a visible ``[U+XXXX]`` (``tutor check`` refuses them
    in problem files: see :func:`unsupported`).

    >>> escape(r"50% of \input{x}")
    '50\\% of \\textbackslash{}input\\{x\\}'
    >>> escape("tutor step ridge --set lam=0; w = -1.5 within 1e-06")
    'tutor step ridge -{}-set lam=0; w = $-$1.5 within $10^{-6}$'
    >>> escape("T\x1b[31mRED\x1b]0;PWN\x07 \u202eevil")
    'TRED evil'
    """
    text = clean(text)  # escape sequences go whole, not only their ESC
    out = []
    pos = 0
    for match in _E_NOTATION.finditer(text):
        out.append(_escape_words(text[pos : match.start()]))
        out.append(f"${tex_text(match.group())}$")
        pos = match.end()
    out.append(_escape_words(text[pos:]))
    return "".join(out)


def _escape_words(text: str) -> str:
    out = []
    pos = 0
    for match in _SUBSCRIPTED.finditer(text):
        out.append(_escape_plain(text[pos : match.start()]))
        base, sub = match.groups()
        out.append(f"{_escape_plain(base)}\\textsubscript{{{_escape_plain(sub)}}}")
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    text = _NUMBER_MINUS.sub("−", text)
    chars = [_escape_char(ch) for ch in text]
    # T1 fonts join -- into an en dash: an empty group keeps a command's two hyphens.
    return "".join(
        "-{}" if ch == "-" and i + 1 < len(text) and text[i + 1] == "-" else chars[i]
        for i, ch in enumerate(text)
    )


def typesettable(ch: str) -> bool:
    """Return whether the handout's pdfLaTeX can set ``ch`` in prose.

    Printable ASCII, the Latin-1 letters (À to ÿ), tab and newline, and the
    mathematical characters of :data:`_UNICODE` (Greek letters, −, ·, ≤, …);
    control and formatting characters are dropped, so they pass too.
    """
    code = ord(ch)
    if ch in "\n\t" or 32 <= code < 127 or 0xC0 <= code <= 0xFF or ch in _UNICODE:
        return True
    return _invisible(ch)  # dropped, so nothing to typeset


def unsupported(text: str) -> list[str]:
    """Return the characters of ``text`` a handout cannot typeset, each once, in order."""
    seen: list[str] = []
    for ch in text:
        if not typesettable(ch) and ch not in seen:
            seen.append(ch)
    return seen


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch in _SPECIALS:
        return _SPECIALS[ch]
    if ch in _UNICODE:
        return _UNICODE[ch]
    if ch in "\n\t" or 32 <= code < 127 or 0xC0 <= code <= 0xFF:
        return ch
    if _invisible(ch):
        return ""
    return f"[U+{code:04X}]"


def _invisible(ch: str) -> bool:
    """Return whether ``ch`` is a control or formatting character (bidi marks): never set."""
    import unicodedata

    return unicodedata.category(ch) in ("Cc", "Cf")


def tex_number(value: float, digits: int = DIGITS) -> str:
    r"""Return a number as LaTeX mathematics: E-notation as a power of ten.

    >>> tex_number(1.15e8), tex_number(-0.001), tex_number(1e-5), tex_number(-27.0)
    ('1.15 \\times 10^{8}', '-0.001', '10^{-5}', '-27')
    """
    return tex_text(number(value, digits))


def tex_text(text: str) -> str:
    r"""Return a number's text (``1e-05``, ``-2.5e+08``) as LaTeX, E-notation as a power of ten.

    >>> tex_text("-2.5e+08")
    '-2.5 \\times 10^{8}'
    """
    mantissa, e, exponent = text.partition("e")
    if not e or not exponent.lstrip("+-").isdigit():
        return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}.get(text, text)
    power = int(exponent)
    if mantissa.lstrip("-") == "1":
        return f"{mantissa[:-1]}10^{{{power}}}"
    return rf"{mantissa} \times 10^{{{power}}}"


class _Printer(LatexPrinter):
    r"""SymPy's LaTeX in the tutor's notation.

    A sum's positive terms come first (σ(z) − y rather than −y + σ(z)); every
    symbol is one symbol (``\lambda`` for ``lam``, ``\mathit{rate}``); the
    step function is H; fractional powers read ``w^{5/2}``; a mean over rows
    is ``\frac{1}{n}\sum`` with its summand in brackets; a piecewise
    function is written as cases, its conditions with the simpler side right.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__({"fold_frac_powers": True, **(settings or {})})

    def _print_Pow(self, expr: sympy.Pow) -> str:
        # A cube root is a power 1/3, as the loss writes it: the principal root, which
        # ∛'s real cube root is not for a negative base.
        if expr.exp != sympy.Rational(1, 3):
            return str(super()._print_Pow(expr))
        roots = self._settings["root_notation"]
        self._settings["root_notation"] = False
        try:
            return str(super()._print_Pow(expr))
        finally:
            self._settings["root_notation"] = roots

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        terms = super()._as_ordered_terms(expr, order)
        return positive_first(terms) if isinstance(expr, sympy.Add) else terms

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        return latex_name(expr.name)

    def _print_Heaviside(self, expr: sympy.Expr, exp: Any = None) -> str:
        text = rf"H\left({self._print(expr.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_Float(self, expr: sympy.Float) -> str:
        return tex_number(float(expr), 15)

    def _print_Relational(self, expr: sympy.Basic) -> str:
        lhs, op, rhs = relation_sides(expr)
        ops = {"<=": r"\le", ">=": r"\ge", "<": "<", ">": ">", "==": "=", "!=": r"\neq"}
        return f"{self._print(lhs)} {ops[op]} {self._print(rhs)}"

    def _print_Piecewise(self, expr: sympy.Expr) -> str:
        rows = []
        for value, cond in expr.args:
            shown = (
                r"\text{otherwise}" if cond is sympy.true else rf"\text{{if }} {self._print(cond)}"
            )
            rows.append(f"{self._print(value)} & {shown}")
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"

    def _print_Sum(self, expr: sympy.Sum) -> str:
        (index, low, high), *_ = expr.limits
        body = self._print(expr.function)
        if isinstance(expr.function, sympy.Add):
            body = rf"\left[{body}\right]"
        return rf"\sum_{{{self._print(index)}={self._print(low)}}}^{{{self._print(high)}}} {body}"

    def _print_Mul(self, expr: sympy.Expr) -> str:
        mean = mean_parts(expr)
        if mean is not None:
            return rf"\frac{{1}}{{{self._print(mean[1])}}} {self._print(mean[0])}"
        if sympy.E in expr.args and self._settings["mul_symbol_latex"] == " ":
            # e w would read as one symbol ew: the constant e keeps its dot, as in plain text.
            self._settings["mul_symbol_latex"] = r" \cdot "
            try:
                return str(super()._print_Mul(expr))
            finally:
                self._settings["mul_symbol_latex"] = " "
        return str(super()._print_Mul(expr))


class _ValuePrinter(_Printer):
    """Prints each symbol as its value, so a formula shows the numbers substituted."""

    def __init__(self, values: Mapping[str, float], digits: int = DIGITS) -> None:
        # With numbers in place of symbols every product needs its dot: 2 · 3 · (…).
        super().__init__({"mul_symbol": "dot"})
        self.values = values
        self.digits = digits

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if expr.name in self.values:
            text = tex_number(self.values[expr.name], self.digits)
            return rf"\left({text}\right)" if text.startswith("-") else text
        return super()._print_Symbol(expr, style)


def math(expr: sympy.Basic) -> str:
    """Return the LaTeX of a SymPy object in the tutor's notation (see :class:`_Printer`)."""
    return _Printer().doprint(expr)


def symbol(name: str) -> str:
    """Return the LaTeX of the symbol ``name``: one symbol, as in every other medium."""
    return latex_name(name)


def substituted(expr: sympy.Basic, values: Mapping[str, float], digits: int = DIGITS) -> str:
    r"""Return the LaTeX of ``expr`` with every symbol in ``values`` replaced by its number.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> substituted(2*x*(w*x - y), {"w": 0.5, "x": 3.0, "y": 6.0})
    '2 \\cdot 3 \\cdot \\left(0.5 \\cdot 3 - 6\\right)'
    """
    return _ValuePrinter(values, digits).doprint(expr)


def partial_symbol(symbol: str, mean: bool = False) -> str:
    r"""Return ``\frac{\partial L}{\partial w}`` for ``symbol``."""
    return rf"\frac{{\partial L}}{{\partial {latex_name(symbol)}}}"


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
    return mean(row_indexed(partial.result, tuple(problem.data)), problem.rows)


def mean(summand: sympy.Expr, rows: int) -> str:
    r"""Return ``\frac{1}{n}\sum_{i=1}^{n}`` of ``summand``, a sum in brackets.

    >>> x, y = sympy.symbols("x_i y_i", real=True)
    >>> mean(x - y, 6)
    '\\frac{1}{6}\\sum_{i=1}^{6} \\left[x_{i} - y_{i}\\right]'
    """
    body = math(summand)
    if isinstance(summand, sympy.Add):
        body = rf"\left[{body}\right]"
    return rf"\frac{{1}}{{{rows}}}\sum_{{i=1}}^{{{rows}}} {body}"


def gradient_line(
    partial: Partial, problem: Problem, values: Mapping[str, float], symbolic: float
) -> str:
    """Return ``∂L/∂w = closed form = numbers substituted = value`` as LaTeX."""
    lhs = partial_symbol(partial.symbol)
    chain = [partial_result(partial, problem)]
    if partial.result.free_symbols and not problem.rows:
        digits = checking_digits(partial.result, values, number(symbolic))
        chain.append(substituted(partial.result, values, digits))
    return " = ".join(distinct([lhs, *chain, tex_number(symbolic)]))


def distinct(parts: list[str]) -> list[str]:
    """Return the sides of an equation chain without one repeated next to itself (2 = 2).

    >>> distinct(["a", "2", "2"])
    ['a', '2']
    """
    return [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]


def update_line(symbol: str, update: Update, rate: float, dtype: str = "float64") -> str:
    r"""Return ``w \leftarrow 0.5 - 0.01\cdot(-27) = 0.77`` for one update."""
    old, g, new = update_numbers(symbol, update, rate, dtype)
    value, _, note = new.partition(" (")
    new = tex_text(value)
    if note:
        new = rf"{new}\ \text{{({escape(note)}}}"
    g = rf"\left({tex_text(g)}\right)" if g.startswith("-") else tex_text(g)
    name = latex_name(symbol)
    return rf"{name} \leftarrow {tex_text(old)} - {tex_number(rate)}\cdot {g} = {new}"


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

    The rule column is left-aligned, so a substep's rule is indented there. A rule whose
    substeps' results plug into it adds the line of what it gives; the algebra after the
    rules is one chain of ``&= …`` lines, each naming its move.
    """
    indent = r"\quad " * depth
    rule = escape(step.rule)
    if step.rule == "simplify" and step.substeps:
        # The algebra's moves as one chain of equalities, each line naming its move.
        first, *rest = step.substeps
        lines = [
            rf"{step_math(step.before)} &= {step_math(first.after)} "
            rf"&& {indent}\text{{{escape(first.rule)}}}"
        ]
        lines += [rf"&= {step_math(m.after)} && {indent}\text{{{escape(m.rule)}}}" for m in rest]
        return lines
    line = rf"{step_math(step.before)} &= {step_math(step.after)} && {indent}\text{{{rule}}}"
    lines = [line]
    if step.gives is not None and step.rule in ("chain", "sum", "product", "quotient"):
        gives = rf"{indent}\text{{so the {rule} rule gives}}"
        lines.append(rf"&= {step_math(step.gives)} && {gives}")
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
    out.append(rf"\[ L = {loss(problem)} \]")
    out.append(derivation(traj.derivation))
    for update in traj.updates:
        lines = []
        for partial in traj.derivation.partials:
            values = {**problem.constants, **update.values}
            lines.append(gradient_line(partial, problem, values, update.symbolic[partial.symbol]))
            lines.append(update_line(partial.symbol, update, traj.learning_rate, problem.dtype))
        head = rf"\text{{Update {update.step}:}}\quad L = {tex_number(update.loss)}"
        out.append("\\begin{gather*}\n" + " \\\\\n".join([head, *lines]) + "\n\\end{gather*}")
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
        name = latex_name(partial.symbol)
        closed = partial_result(partial, problem)
        lines.append(
            rf"{name} &\leftarrow {name} - \eta\, {partial_symbol(partial.symbol)}"
            rf" = {name} - {tex_number(problem.learning_rate)} \cdot \left({closed}\right)"
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
        s = latex_name(names[0])
        h = a.hessian[0, 0]
        chain = distinct([rf"\frac{{\partial^2 L}}{{\partial {s}^2}}", math(h)])
        chain = distinct([*chain, tex_number(a.eigenvalues[0])])
        items.append(rf"Curvature: ${' = '.join(chain)}$: " + escape(describe_class(a)) + ".")
    else:
        shown = ", ".join(tex_number(v) for v in a.eigenvalues)
        hessian = math(row_indexed(a.hessian, tuple(problem.data)))
        if problem.rows:
            hessian = rf"\frac{{1}}{{{problem.rows}}}\sum_{{i=1}}^{{{problem.rows}}} {hessian}"
            hessian += f" = {_number_matrix(a.matrix)}"
        items.append(rf"Hessian $H = {hessian}$ with eigenvalues ${shown}$.")
        items.append(_sentence("H is " + describe_class(a)))
    if a.fixed_point is not None:
        for n in names:
            formula = a.fixed_point_formula.get(n) if a.fixed_point_formula else None
            shown = f"{math(formula)} = " if formula is not None and formula.free_symbols else ""
            shown = "" if shown == f"{tex_number(a.fixed_point[n])} = " else shown
            s = latex_name(n)
            label = "The minimiser nearest the start" if a.flat else "Fixed point"
            items.append(rf"{label}: ${s}^* = {shown}{tex_number(a.fixed_point[n])}$.")
    if a.fixed_point is not None and len(names) == 1 and a.iteration is not None:
        s = latex_name(names[0])
        factor = "1 - " + math(sympy.Symbol("eta") * a.hessian[0, 0])
        items.append(
            rf"Iteration: ${s}_k - {s}^* = \left({factor}\right)^k ({s}_0 - {s}^*)$, "
            rf"factor ${tex_number(a.iteration[0][0])}$."
        )
    if a.condition is not None:
        slow = min(v for v in a.eigenvalues if v > 0)
        items.append(
            rf"Condition number $\kappa = \lambda_{{\max}}/\lambda_{{\min}} = "
            rf"{tex_number(a.condition)}$: along the direction of "
            rf"$\lambda_{{\min}} = {tex_number(slow)}$ "
            rf"the distance shrinks slowest, by $|1 - \eta\lambda_{{\min}}| = "
            rf"{tex_number(abs(1 - a.rate * slow))}$ per update."
        )
    if a.lr_bound is not None:
        formula = [math(a.lr_bound_formula)] if a.lr_bound_formula is not None else []
        bound = " = ".join(distinct([*formula, tex_number(a.lr_bound)]))
        verdict = escape(describe_rate(a, problem) + ".")
        items.append(rf"Stable for $\eta < {bound}$; " + verdict)
    else:
        items.append(_sentence(describe_rate(a, problem)))
    if a.steps_to_tolerance is not None:
        if a.tolerance_kind == "gradient" and problem.tolerance is not None:
            items.append(
                rf"Every $|\partial L/\partial s| < {tex_number(problem.tolerance)}$ (the run's "
                rf"tolerance) after {a.steps_to_tolerance} updates, by the closed form."
            )
        else:
            items.append(
                rf"Within ${tex_number(DEFAULT_TOLERANCE)}$ of the fixed point after "
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
    rows = [" & ".join(tex_number(v) for v in row) for row in matrix]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _curvature(c: Any, names: list[str]) -> str:
    return describe_curvature(c, tuple(names))


def curvature_item(c: Any, names: list[str], where: str) -> str:
    """Return the curvature at ``where`` (the start, the end) as a LaTeX sentence."""
    return _sentence(f"curvature at {where}: " + describe_curvature(c, tuple(names)))


# ---------------------------------------------------------------------------------------
# The loss as its author wrote it: from the parse tree, before SymPy rewrites anything.

_STRENGTH = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "**": 4}
_NAMED_POWER = {"sin", "cos", "tan", "sinh", "cosh", "tanh"}


def loss(problem: Problem) -> str:
    r"""Return the LaTeX of the loss as its file writes it, a mean over the rows with data.

    >>> from tutor import load
    >>> loss(load("least-squares"))
    '\\frac{1}{5}\\sum_{i=1}^{5} \\left(w x_{i} + b - y_{i}\\right)^{2}'
    """
    shown = written(problem.tree, frozenset(problem.data))
    if not problem.rows:
        return shown
    tree = problem.tree
    add = isinstance(tree, Binary) and tree.op in "+-" or shown.startswith("-")
    body = rf"\left[{shown}\right]" if add else shown
    return rf"\frac{{1}}{{{problem.rows}}}\sum_{{i=1}}^{{{problem.rows}}} {body}"


def written(node: Node, indexed: frozenset[str] = frozenset()) -> str:
    r"""Return the LaTeX of the loss tree ``node`` as written: its numbers, order and powers.

    Names in ``indexed`` are data columns, shown as their row's value (``x_{i}``).

    >>> from tutor.expression import parse
    >>> written(parse("abs(w)**2 + 0.3*w - 1e-3*exp(w)**2", {"w"}))
    '\\left|w\\right|^{2} + 0.3 w - 10^{-3} \\cdot \\left(e^{w}\\right)^{2}'
    >>> written(parse("lam*w**2.5/2", {"w", "lam"}))
    '\\frac{\\lambda w^{2.5}}{2}'
    """
    return _tex(node, 0, indexed)


def _tex(node: Node, outer: int, indexed: frozenset[str]) -> str:
    if isinstance(node, Num):
        return tex_text(node.source or node.text)
    if isinstance(node, Name):
        constant = {"pi": r"\pi", "E": "e"}.get(node.id)
        return constant or latex_name(f"{node.id}_i" if node.id in indexed else node.id)
    if isinstance(node, Call):
        return _tex_call(node, indexed)
    if isinstance(node, Unary):
        text = ("-" if node.op == "-" else "+") + _tex(node.operand, _STRENGTH["unary"], indexed)
        return rf"\left({text}\right)" if outer > _STRENGTH["unary"] else text
    strength = _STRENGTH[node.op]
    if node.op == "/":
        text = rf"\frac{{{_tex(node.left, 0, indexed)}}}{{{_tex(node.right, 0, indexed)}}}"
    elif node.op == "**":
        text = _tex_power(node, indexed)
    else:
        left = _tex(node.left, strength, indexed)
        right = _tex(node.right, strength + 1, indexed)
        if node.op == "*":
            dot = right[:1].isdigit() or "e" in (left, right) or "10^{" in left
            text = f"{left} \\cdot {right}" if dot else f"{left} {right}"
        else:
            text = f"{left} {node.op} {right}"
    return rf"\left({text}\right)" if strength < outer else text


def _tex_power(node: Binary, indexed: frozenset[str]) -> str:
    base, exponent = node.left, node.right
    raised = _tex(exponent, 0, indexed)
    if (
        isinstance(exponent, Binary)
        and exponent.op == "/"
        and isinstance(exponent.left, Num)
        and isinstance(exponent.right, Num)
    ):
        # A fraction in an exponent is written on one line, as the steps write it: w^{1/3}.
        raised = f"{_tex(exponent.left, 0, indexed)}/{_tex(exponent.right, 0, indexed)}"
    if isinstance(base, Call) and base.func in _NAMED_POWER:
        inner = ", ".join(_tex(a, 0, indexed) for a in base.args)
        return rf"\{base.func}^{{{raised}}}\left({inner}\right)"
    shown = _tex(base, _STRENGTH["**"] + 1, indexed)
    atom = isinstance(base, Name) or isinstance(base, Num) and "e" not in base.text
    if isinstance(base, Call) and base.func not in ("exp", "sqrt"):
        atom = True
    if not atom and not shown.startswith(r"\left("):
        shown = rf"\left({shown}\right)"
    return f"{shown}^{{{raised}}}"


def _tex_call(node: Call, indexed: frozenset[str]) -> str:
    from ..functions import REGISTRY

    args = [_tex(a, 0, indexed) for a in node.args]
    if node.func == "abs":
        return rf"\left|{args[0]}\right|"
    if node.func == "sqrt":
        return rf"\sqrt{{{args[0]}}}"
    if node.func == "exp":
        return f"e^{{{args[0]}}}"
    return rf"{REGISTRY[node.func].latex}\left({', '.join(args)}\right)"


# ---------------------------------------------------------------------------------------
# Derivations laid out to fit a page.

#: Characters of one-line text that fit one line of a handout's display (A4, 2.2 cm margins).
PAGE_CHARS = 76


def _width(expr: sympy.Basic) -> int:
    """Return the width of ``expr`` in characters of its one-line text, a proxy for its LaTeX."""
    from .._mathtext import unicode

    return len(unicode(expr))


def _pieces(expr: sympy.Basic, room: int) -> list[str]:
    """Return ``expr`` as LaTeX lines each about ``room`` characters wide at most.

    A sum too wide for one line breaks before a ``+`` or ``−`` between its
    terms; anything else stays on one line.
    """
    if _width(expr) <= room or not isinstance(expr, sympy.Add):
        return [step_math(expr)]
    printer = _StepPrinter()
    terms = printer._as_ordered_terms(expr)
    lines: list[str] = []
    current, used = "", 0
    for term in terms:
        negative = bool(term.could_extract_minus_sign())
        shown = step_math(-term if negative else term)
        if term.is_Add:
            shown = rf"\left({shown}\right)"
        width = _width(term) + 3
        sign = "- " if negative else ("+ " if current or lines else "")
        if current and used + width > room:
            lines.append(current)
            current, used = "", 0
        current += ("" if not current else " ") + sign + shown
        used += width
    return [*lines, current]


def fitted_steps(step: Step, depth: int = 0) -> list[str]:
    r"""Return ``align*`` lines of a step tree, each narrow enough for a handout's page.

    Every line starts at the left (``&``): the rule's name, indented by its
    depth, then the step ``before = after``, broken onto further lines when
    it is wider than :data:`PAGE_CHARS`. As in :func:`step_lines`, a rule whose
    substeps' results plug into it says what it gives, and the algebra after the
    rules is one chain of ``= …`` lines, each naming its move.
    """
    rule = rf"\text{{{escape(step.rule)}:}}\quad "
    room = PAGE_CHARS - 2 * depth
    if step.rule == "simplify" and step.substeps:
        lines = _fitted_line(rule, step.before, None, depth, room)
        for move in step.substeps:
            named = rf"\text{{{escape(move.rule)}:}}\quad "
            lines += _fitted_line(rf"\qquad {named}= ", move.after, None, depth, room - 4)
        return lines
    lines = _fitted_line(rule, step.before, step.after, depth, room)
    if step.gives is not None and step.rule in ("chain", "sum", "product", "quotient"):
        said = rf"\qquad \text{{so the {escape(step.rule)} rule gives}}\quad "
        lines += _fitted_line(said, step.gives, None, depth, room - 4)
    for sub in step.substeps:
        lines.extend(fitted_steps(sub, depth + 1))
    return lines


def _fitted_line(
    head: str, before: sympy.Basic, after: sympy.Basic | None, depth: int, room: int
) -> list[str]:
    """Return ``head before = after`` (or ``head before``) on as many lines as it needs."""
    indent = r"\quad " * depth
    label = len(re.sub(r"\\[a-z]+|[{}]", "", head))
    width = _width(before) + (0 if after is None else _width(after) + 3)
    if label + width + 2 <= room:
        tail = "" if after is None else f" = {step_math(after)}"
        return [rf"&{indent}{head}{step_math(before)}{tail}"]
    if label + _width(before) + 2 <= room:
        lines = [rf"&{indent}{head}{step_math(before)}"]
    else:  # a long sum: its first terms beside the head, the rest under them
        first, *rest = _pieces(before, room - label - 2)
        lines = [rf"&{indent}{head}{first}"]
        lines += [rf"&{indent}\qquad\phantom{{=}} {p}" for p in rest]
    return lines + ([] if after is None else _continued(after, depth, room))


def _continued(expr: sympy.Basic, depth: int, room: int) -> list[str]:
    """Return ``= expr`` on lines of their own, below the step's first line."""
    indent = r"\quad " * depth
    first, *rest = _pieces(expr, room - 6)
    return [rf"&{indent}\qquad = {first}", *(rf"&{indent}\qquad\phantom{{=}} {p}" for p in rest)]


def fitted_derivation(partial: Partial) -> str:
    """Return a partial's steps as one ``align*`` that fits a handout's page ("" if none)."""
    lines = [line for step in partial.steps for line in fitted_steps(step)]
    if not lines:
        return ""
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"
