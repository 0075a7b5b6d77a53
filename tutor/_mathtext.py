"""One-line Unicode for SymPy expressions, written as a teacher writes: 2x(wx − y)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import sympy
from sympy.printing.str import StrPrinter

from ._numbers import DIGITS, number

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_GREEK = {
    "eta": "η",
    "lam": "λ",
    "lambda_": "λ",
    "sigma": "σ",
    "theta": "θ",
    "alpha": "α",
    "beta": "β",
    "mu": "μ",
    "delta": "δ",
}
_TOKEN = re.compile(r"\d+\.?\d*(?:e[+-]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|\*|.", re.S)


def positive_first(terms: list[sympy.Expr]) -> list[sympy.Expr]:
    """Return a sum's terms with the positive ones first: σ(z) − y rather than −y + σ(z)."""
    return sorted(terms, key=lambda term: bool(term.could_extract_minus_sign()))


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
            text = number(self.values[expr.name], self.digits)
            return f"({text})" if text.startswith("-") else text
        if expr.name.endswith("_i"):
            return _GREEK.get(expr.name[:-2], expr.name[:-2]) + "ᵢ"
        return _GREEK.get(expr.name, expr.name)

    def _print_Sum(self, expr: sympy.Sum) -> str:
        (index, low, high), *_ = expr.limits
        return (
            f"Σ_{{{self._print(index)}={self._print(low)}}}^{{{self._print(high)}}} "
            f"[{self._print(expr.function)}]"
        )

    def _print_MatrixBase(self, expr: sympy.MatrixBase) -> str:
        rows = (
            "[" + ", ".join(self._print(v) for v in expr.row(i)) + "]" for i in range(expr.rows)
        )
        return "[" + ", ".join(rows) + "]"

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        exp = expr.exp
        if exp.is_Integer and int(exp) < 0 and expr.base.is_Symbol:
            return "1/" + self._print(sympy.Pow(expr.base, -exp))
        if exp.is_Integer and 1 < int(exp) < 100:
            base = self.parenthesize(expr.base, sympy.printing.precedence.PRECEDENCE["Pow"])
            return base + str(int(exp)).translate(_SUPERSCRIPT)
        return super()._print_Pow(expr, rational)

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
    >>> unicode(2*x*(w*x - y), {"w": 0.5, "x": 3.0, "y": 6.0})
    '2·3·(0.5·3 − 6)'
    """
    text = _juxtapose(_Printer(values, digits).doprint(expr), always_dot=bool(values))
    text = text.replace(" - ", " − ").replace("(-", "(−")
    return "−" + text[1:] if text.startswith("-") else text


def _juxtapose(text: str, always_dot: bool = False) -> str:
    """Drop ``*`` where a product reads unambiguously without it; write ``·`` elsewhere.

    With numbers substituted (``always_dot``), every product keeps its dot.
    """
    tokens = _TOKEN.findall(text)
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
            or left[-1:] in "⁰¹²³⁴⁵⁶⁷⁸⁹"
        )
        right_ok = (len(right) == 1 and right.isalpha()) or right == "("
        tight = left_ok and right_ok and not always_dot
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
