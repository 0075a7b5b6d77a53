"""One-line Unicode for SymPy expressions, written as a teacher writes: 2x(wx − y)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sympy
from sympy.core.mul import _keep_coeff
from sympy.printing.str import StrPrinter

from ._numbers import DIGITS, number

if TYPE_CHECKING:
    from .expression import Node

_SUPERSCRIPT = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

#: Symbol names that spell a Greek letter: the letter in plain text, its LaTeX command.
GREEK: dict[str, tuple[str, str]] = {
    "alpha": ("α", r"\alpha"),
    "beta": ("β", r"\beta"),
    "gamma": ("γ", r"\gamma"),
    "delta": ("δ", r"\delta"),
    "epsilon": ("ε", r"\varepsilon"),
    "eps": ("ε", r"\varepsilon"),
    "zeta": ("ζ", r"\zeta"),
    "eta": ("η", r"\eta"),
    "theta": ("θ", r"\theta"),
    "kappa": ("κ", r"\kappa"),
    "lam": ("λ", r"\lambda"),
    "lambda": ("λ", r"\lambda"),
    "mu": ("μ", r"\mu"),
    "nu": ("ν", r"\nu"),
    "xi": ("ξ", r"\xi"),
    "rho": ("ρ", r"\rho"),
    "sigma": ("σ", r"\sigma"),
    "tau": ("τ", r"\tau"),
    "phi": ("φ", r"\varphi"),
    "chi": ("χ", r"\chi"),
    "psi": ("ψ", r"\psi"),
    "omega": ("ω", r"\omega"),
    "Gamma": ("Γ", r"\Gamma"),
    "Delta": ("Δ", r"\Delta"),
    "Theta": ("Θ", r"\Theta"),
    "Lambda": ("Λ", r"\Lambda"),
    "Sigma": ("Σ", r"\Sigma"),
    "Phi": ("Φ", r"\Phi"),
    "Omega": ("Ω", r"\Omega"),
}
_TOKEN = re.compile(r"\d+\.?\d*(?:e[+\-−]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|\*|.", re.S)
_SUB_CHARS = "i=0123456789"
_SUB_INDEX = str.maketrans(_SUB_CHARS, "ᵢ₌₀₁₂₃₄₅₆₇₈₉")
_TRAILING_DIGITS = re.compile(r"([A-Za-z]+?)(\d+)$")
#: Functions whose integer powers are written on the name: tanh²(u), as LaTeX's \tanh^{2}.
_POWER_ON_NAME = {"sin", "cos", "tan", "sinh", "cosh", "tanh"}


def _name_parts(name: str) -> tuple[str, list[str]]:
    """Return a symbol name's base and subscripts: lam_max → (lam, [max]), w1 → (w, [1])."""
    stripped = name.rstrip("_") or name
    base, *subs = stripped.split("_")
    subs = [s for s in subs if s]
    match = _TRAILING_DIGITS.fullmatch(base)
    if match and base not in GREEK:
        base, subs = match.group(1), [match.group(2), *subs]
    return base, subs


def plain_name(name: str) -> str:
    """Return a symbol's name as one-line text: λ for ``lam``, xᵢ for ``x_i``, w₁ for ``w1``.

    >>> plain_name("lam"), plain_name("x_i"), plain_name("w1"), plain_name("lam_max")
    ('λ', 'xᵢ', 'w₁', 'λ_max')
    """
    base, subs = _name_parts(name)
    text = GREEK[base][0] if base in GREEK else base
    for sub in subs:
        if sub == "i":
            text += "ᵢ"
        elif sub.isdigit():
            text += sub.translate(_SUBSCRIPT)
        else:
            text += "_" + (GREEK[sub][0] if sub in GREEK else sub)
    return text


def latex_name(name: str, sub: str = "") -> str:
    r"""Return a symbol's name as one LaTeX symbol: ``\lambda`` for ``lam``, never ``l a m``.

    A multi-letter name that spells no Greek letter is one italic symbol;
    subscripts after ``_`` or trailing digits are set as subscripts, and
    ``sub`` (LaTeX, such as ``k+1``) after them.

    >>> latex_name("lam"), latex_name("rate"), latex_name("x_i"), latex_name("lam_max")
    ('\\lambda', '\\mathit{rate}', 'x_{i}', '\\lambda_{\\mathrm{max}}')
    >>> latex_name("w1", "k+1")
    'w_{1,k+1}'
    """
    base, subs = _name_parts(name)
    if base in GREEK:
        text = GREEK[base][1]
    elif len(base) == 1:
        text = base
    else:
        text = rf"\mathit{{{base}}}"
    if not subs and not sub:
        return text
    shown = []
    for part in subs:
        if part in GREEK:
            shown.append(GREEK[part][1])
        elif part.isdigit() or len(part) == 1:
            shown.append(part)
        else:
            shown.append(rf"\mathrm{{{part}}}")
    if sub:
        shown.append(sub)
    return f"{text}_{{{','.join(shown)}}}"


def minus(text: str) -> str:
    """Return a number's text with the true minus sign: −27, 1e−05.

    >>> minus("-1.5e-05")
    '−1.5e−05'
    """
    return text.replace("-", "−")


def positive_first(terms: list[sympy.Expr]) -> list[sympy.Expr]:
    """Return a sum's terms with the positive ones first: σ(z) − y rather than −y + σ(z)."""
    return sorted(terms, key=lambda term: bool(term.could_extract_minus_sign()))


def mean_parts(expr: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr] | None:
    """Return (the sum, the count) when ``expr`` is a mean Σ…/n, else None."""
    if not isinstance(expr, sympy.Mul):
        return None
    sums = [a for a in expr.args if isinstance(a, sympy.Sum)]
    rest = [a for a in expr.args if not isinstance(a, sympy.Sum)]
    if len(sums) != 1 or len(rest) != 1:
        return None
    (other,) = rest
    if isinstance(other, sympy.Pow) and other.exp == -1:
        return sums[0], other.base
    if other.is_Rational and other.p == 1:
        return sums[0], sympy.Integer(other.q)
    return None


def relation_sides(expr: sympy.Basic) -> tuple[sympy.Basic, str, sympy.Basic]:
    """Return a comparison as (left, operator, right), the simpler side on the right.

    ``d >= |u|`` reads better as ``|u| <= d``.
    """
    lhs, rhs, op = expr.lhs, expr.rhs, expr.rel_op
    flipped = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "==": "==", "!=": "!="}
    if lhs.is_Atom and not rhs.is_Atom:
        return rhs, flipped[op], lhs
    return lhs, op, rhs


_RELATIONS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "=", "!=": "≠"}

PRECEDENCE = sympy.printing.precedence.PRECEDENCE


class _Printer(StrPrinter):
    def __init__(self, values: Mapping[str, float] | None = None, digits: int = DIGITS) -> None:
        super().__init__()
        self.values = values or {}
        self.digits = digits

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        terms = super()._as_ordered_terms(expr, order)
        return positive_first(terms) if isinstance(expr, sympy.Add) else terms

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if expr.name in self.values:
            text = minus(number(self.values[expr.name], self.digits))
            return f"({text})" if text.startswith("−") else text
        return plain_name(expr.name)

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return minus(str(expr.p))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return minus(f"{expr.p}/{expr.q}")

    def _print_Float(self, expr: sympy.Float) -> str:
        return minus(number(float(expr), 15))

    def _print_Exp1(self, expr: sympy.Basic) -> str:
        return "e"

    def _print_Pi(self, expr: sympy.Basic) -> str:
        return "π"

    def _print_Add(self, expr: sympy.Expr, order: str | None = None) -> str:
        terms = self._as_ordered_terms(expr, order=order)
        out: list[str] = []
        for term in terms:
            text = self._print(term)
            negative = text.startswith("−") and not term.is_Add
            if negative:
                text = text[1:]
            if term.is_Add or sympy.printing.precedence.precedence(term) < PRECEDENCE["Add"]:
                text = f"({text})"
            if not out:
                out.append("−" + text if negative else text)
            else:
                out.append(("− " if negative else "+ ") + text)
        return " ".join(out)

    def _print_Mul(self, expr: sympy.Expr) -> str:
        mean = mean_parts(expr)
        if mean is not None:
            return f"(1/{self._print(mean[1])}) {self._print(mean[0])}"
        coeff, rest = expr.as_coeff_Mul()
        if coeff < 0:
            positive = _keep_coeff(-coeff, rest)
            text = self._print(positive)
            if sympy.printing.precedence.precedence(positive) < PRECEDENCE["Mul"]:
                text = f"({text})"
            return "−" + text
        return str(super()._print_Mul(expr))

    def _print_Sum(self, expr: sympy.Sum) -> str:
        (index, low, high), *_ = expr.limits
        sub, top = f"{self._print(index)}={self._print(low)}", self._print(high)
        head = "Σ" + sub.translate(_SUB_INDEX) if set(sub) <= set(_SUB_CHARS) else f"Σ_({sub})"
        if top == "n" or top.isdigit():
            head += "ⁿ" if top == "n" else top.translate(_SUPERSCRIPT)
        else:
            head += f"^({top})"
        return f"{head} [{self._print(expr.function)}]"

    def _print_MatrixBase(self, expr: sympy.MatrixBase) -> str:
        rows = (
            "[" + ", ".join(self._print(v) for v in expr.row(i)) + "]" for i in range(expr.rows)
        )
        return "[" + ", ".join(rows) + "]"

    def _raised(self, expr: sympy.Expr) -> str:
        """An exponent or a root's argument: one token as it is, anything else in brackets."""
        text = self._print(expr)
        single = expr.is_Symbol or (expr.is_Integer and expr >= 0)
        return text if single else f"({text})"

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.base, expr.exp
        if exp.is_Rational and exp < 0:
            return "1/" + self.parenthesize(sympy.Pow(base, -exp), PRECEDENCE["Mul"])
        if exp is sympy.S.Half:
            return "√" + self._raised(base)
        if exp.is_Integer and isinstance(base, sympy.Function):
            name = getattr(base.func, "__name__", "")
            if name in _POWER_ON_NAME:
                inner = ", ".join(self._print(a) for a in base.args)
                return f"{name}{str(int(exp)).translate(_SUPERSCRIPT)}({inner})"
        shown = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if shown.startswith("−"):
            shown = f"({shown})"
        if exp.is_Integer:
            return shown + str(int(exp)).translate(_SUPERSCRIPT)
        return f"{shown}^{self._raised(exp)}"

    def _print_exp(self, expr: sympy.Expr) -> str:
        (arg,) = expr.args
        if arg.is_Integer:
            return "e" + str(int(arg)).translate(_SUPERSCRIPT)
        return "e^" + self._raised(arg)

    def _print_Abs(self, expr: sympy.Expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_Max(self, expr: sympy.Expr) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr: sympy.Expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Relational(self, expr: sympy.Basic) -> str:
        lhs, op, rhs = relation_sides(expr)
        return f"{self._print(lhs)} {_RELATIONS[op]} {self._print(rhs)}"

    def _print_Piecewise(self, expr: sympy.Expr) -> str:
        pieces = []
        for value, cond in expr.args:
            shown = "otherwise" if cond is sympy.true else f"if {self._print(cond)}"
            pieces.append(f"{self._print(value)} {shown}")
        return "{" + "; ".join(pieces) + "}"

    def _print_Derivative(self, expr: sympy.Derivative) -> str:
        var = ", ".join(self._print(v) for v, _ in expr.variable_count)
        return f"∂/∂{var}[{self._print(expr.expr)}]"

    def _print_Function(self, expr: sympy.Basic) -> str:
        from .functions import by_sympy

        record = by_sympy(expr.func)
        if record is None or record.plain == record.name:
            return str(super()._print_Function(expr))
        return f"{record.plain}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Heaviside(self, expr: sympy.Basic) -> str:
        return f"H({self._print(expr.args[0])})"


def unicode(
    expr: sympy.Basic, values: Mapping[str, float] | None = None, digits: int = DIGITS
) -> str:
    """Return ``expr`` on one line; symbols in ``values`` are shown as their numbers.

    The numbers have ``digits`` significant digits (see :func:`checking_digits`).

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> unicode(2*x*(w*x - y))
    '2x(wx − y)'
    >>> unicode(2*x*(w*x - y), {"w": 0.5, "x": 3.0, "y": -6.0})
    '2·3·(0.5·3 − (−6))'
    >>> unicode(w**w*x + (w - 8)**sympy.Rational(1, 3) + sympy.Abs(w)**sympy.Rational(5, 2))
    'w^w·x + (w − 8)^(1/3) + |w|^(5/2)'
    """
    return _juxtapose(_Printer(values, digits).doprint(expr), always_dot=bool(values))


#: Tokens after which the next group is raised (an exponent) or under a root sign.
_RAISING = {"^", "√"}


def _raised_ends(tokens: list[str]) -> set[int]:
    """Return the indices of tokens that end an exponent or a root's argument."""
    ends = set()
    for i, tok in enumerate(tokens):
        if tok not in _RAISING or i + 1 >= len(tokens):
            continue
        j, depth = i + 1, 0
        while j < len(tokens):
            depth += {"(": 1, ")": -1}.get(tokens[j], 0)
            if depth == 0:
                break
            j += 1
        ends.add(j)
    return ends


def _juxtapose(text: str, always_dot: bool = False) -> str:
    """Drop ``*`` where a product reads unambiguously without it; write ``·`` elsewhere.

    With numbers substituted (``always_dot``), every product keeps its dot; so
    does a product after an exponent (w^w·x) and beside the constant e (e·w).
    """
    tokens = _TOKEN.findall(text)
    raised = _raised_ends(tokens)
    out = []
    for i, tok in enumerate(tokens):
        if tok != "*":
            out.append(tok)
            continue
        left = tokens[i - 1] if i else ""
        right = tokens[i + 1] if i + 1 < len(tokens) else ""
        left_ok = (
            left[:1].isdigit()
            or len(left) == 1
            and left.isalpha()
            or left == ")"
            or left[-1:] in "⁰¹²³⁴⁵⁶⁷⁸⁹ᵢ₀₁₂₃₄₅₆₇₈₉"
        )
        right_ok = (len(right) == 1 and right.isalpha()) or right == "("
        # A number in E-notation (1e−3) keeps its dot: 1e−3w would misread.
        tight = left_ok and right_ok and not always_dot and "e" not in left
        if i - 1 in raised or "e" in (left, right):
            tight = False
        out.append("" if tight else "·")
    return "".join(out)


def checking_digits(expr: sympy.Expr, values: Mapping[str, float], shown: str) -> int:
    """Return the fewest significant digits (at least 4) that make ``expr = shown`` check.

    With its symbols replaced by the values as printed at that many digits,
    ``expr`` evaluates to a number that prints as ``shown``: a student who
    redoes the arithmetic on the printed numbers finds the printed result.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> checking_digits(2*x*(w*x - y), {"w": 1.96545, "x": 3.0, "y": 6.0}, "-0.6219")
    6
    """
    from .numeric import UnsupportedExpression, evaluate

    used = {s.name for s in expr.free_symbols}
    for digits in range(DIGITS, 18):
        printed = {k: float(number(v, digits)) for k, v in values.items() if k in used}
        try:
            value = float(evaluate(expr, printed))
        except (UnsupportedExpression, KeyError, TypeError, ValueError, OverflowError):
            return DIGITS
        if number(value) == shown:
            return digits
    return 17


# ---------------------------------------------------------------------------------------
# The loss as its author wrote it: from the parse tree, before SymPy rewrites anything.

#: Binding strength of the loss's operators (higher binds tighter), as Python reads them.
_STRENGTH = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "**": 4}


def written(node: Node, indexed: frozenset[str] = frozenset()) -> str:
    """Return the loss tree ``node`` on one line as written: its numbers, order and powers.

    Names in ``indexed`` are data columns, shown as their row's value (xᵢ).
    Nothing is simplified: ``abs(w)**2`` stays |w|², ``0.3*w`` stays 0.3w.

    >>> from tutor.expression import parse
    >>> written(parse("abs(w)**2 + 0.3*w - 1e-3*exp(w)**2", {"w"}))
    '|w|² + 0.3w − 1e−3·(e^w)²'
    >>> written(parse("(w*x - y)**2 + lam*w**w", {"w", "x", "y", "lam"}), frozenset({"x", "y"}))
    '(wxᵢ − yᵢ)² + λw^w'
    """
    return _juxtapose(_written(node, 0, indexed))


def _written(node: Node, outer: int, indexed: frozenset[str]) -> str:
    from .expression import Binary, Call, Name, Num, Unary

    if isinstance(node, Num):
        return minus(node.source or node.text)
    if isinstance(node, Name):
        return {"pi": "π", "E": "e"}.get(node.id) or plain_name(
            f"{node.id}_i" if node.id in indexed else node.id
        )
    if isinstance(node, Call):
        return _written_call(node, indexed)
    if isinstance(node, Unary):
        text = ("−" if node.op == "-" else "+") + _written(
            node.operand, _STRENGTH["unary"], indexed
        )
        return f"({text})" if outer > _STRENGTH["unary"] else text
    assert isinstance(node, Binary)
    strength = _STRENGTH[node.op]
    if node.op == "**":
        text = _written_power(node, indexed)
    else:
        left = _written(node.left, strength, indexed)
        right = _written(node.right, strength + 1, indexed)
        sign = {"+": " + ", "-": " − ", "*": "*", "/": "/"}[node.op]
        text = f"{left}{sign}{right}"
    return f"({text})" if strength < outer else text


def _written_power(node: Any, indexed: frozenset[str]) -> str:
    from .expression import Call, Num

    exponent = node.right
    integer = isinstance(exponent, Num) and (exponent.source or exponent.text).isdigit()
    base = node.left
    if integer and isinstance(base, Call) and base.func in _POWER_ON_NAME:
        inner = ", ".join(_written(a, 0, indexed) for a in base.args)
        return f"{base.func}{(exponent.source or exponent.text).translate(_SUPERSCRIPT)}({inner})"
    shown = _written(base, _STRENGTH["**"] + 1, indexed)
    if isinstance(base, Call) and base.func == "exp":
        shown = f"({shown})"
    if integer:
        return shown + (exponent.source or exponent.text).translate(_SUPERSCRIPT)
    raised = _written(exponent, 0, indexed)
    single = isinstance(exponent, Num) and "e" not in exponent.text or _is_name(exponent)
    return f"{shown}^{raised if single else f'({raised})'}"


def _is_name(node: Node) -> bool:
    from .expression import Name

    return isinstance(node, Name)


def _written_call(node: Any, indexed: frozenset[str]) -> str:
    from .functions import REGISTRY

    args = [_written(a, 0, indexed) for a in node.args]
    if node.func == "abs":
        return f"|{args[0]}|"
    if node.func in ("sqrt", "exp"):
        (arg,) = node.args
        single = _is_name(arg)
        shown = args[0] if single else f"({args[0]})"
        return ("√" if node.func == "sqrt" else "e^") + shown
    return f"{REGISTRY[node.func].plain}({', '.join(args)})"
