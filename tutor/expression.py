"""Parse a loss expression safely: a whitelist walk of Python's ``ast``, never ``eval``.

The walk produces a small neutral tree (:class:`Node`) that two builders read:
:func:`to_sympy` for the calculus and, in :mod:`tutor.autodiff`, TensorFlow
for the numbers, so TensorFlow computes the loss in the order the file writes
it, as the notebook's ``(w * x - y) ** 2`` does.

A loss is untrusted text. Only numbers, the problem's symbols, ``pi``, ``E``,
``+ - * / **``, unary minus and positional calls of the functions in
:data:`tutor.functions.FUNCTIONS` are accepted; everything else is refused by
name. While walking, each subtree is measured (the highest power of each
symbol once multiplied out, the digits of its exact numbers, the denominators
of its constant exponents, its value when it has no symbols), so what SymPy
is later asked to differentiate and factor stays small: ``9**9**9``,
``(w**60)**60``, ``w**0.333`` (333/1000) and ``log(-1)`` never reach SymPy.

>>> tree = parse("(w*x - y)**2", symbols={"w", "x", "y"})
>>> to_sympy(tree)
(w*x - y)**2
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

import sympy

from .errors import ExpressionError
from .functions import CONSTANTS, FUNCTIONS, REGISTRY

#: Limits that keep parsing and differentiation bounded in time and memory.
MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_LITERAL = 1e15
#: The largest constant exponent, and the highest power any symbol may reach once
#: the loss is multiplied out: (w**60)**60 is w**3600 and is refused.
MAX_EXPONENT = 64
MAX_DEGREE = 64
#: Decimal digits the exact numbers of a subtree may need once multiplied out
#: (factoring works with exact rationals; 1e-300**20 would need 6000 digits).
MAX_DIGITS = 4000
#: The least common multiple of the denominators of constant exponents:
#: SymPy factors w**(333/1000) + w as a polynomial of degree 1000 in w**(1/1000).
MAX_ROOTS = 60


@dataclass(frozen=True)
class Num:
    """A number literal, kept as written so SymPy sees it exactly (0.1 is 1/10).

    ``text`` is Python's text of the number; ``source`` the loss's own
    spelling of it (``1e-3``, not ``0.001``), for showing the loss as written.
    """

    text: str
    source: str = field(default="", compare=False, repr=False)

    @property
    def value(self) -> float:
        return float(self.text)


@dataclass(frozen=True)
class Name:
    """A symbol of the problem, or ``pi`` / ``E``."""

    id: str


@dataclass(frozen=True)
class Unary:
    """``-operand`` or ``+operand``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """``left op right`` with op one of ``+ - * / **``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A call of one of the functions in :data:`tutor.functions.FUNCTIONS`."""

    func: str
    args: tuple[Node, ...]


Node = Num | Name | Unary | Binary | Call

_Number = TypeVar("_Number", float, Fraction)

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}

#: How a refused operator is written, and what to use instead.
_REFUSED_OPS = {
    ast.Mod: ("%", "there is no remainder in a loss"),
    ast.FloorDiv: ("//", "use / for division"),
    ast.MatMult: ("@", "use * for a product of numbers"),
    ast.BitXor: ("^", "write powers with '**'"),
    ast.BitOr: ("|", "use max or min for a piecewise loss"),
    ast.BitAnd: ("&", "use max or min for a piecewise loss"),
    ast.LShift: ("<<", "use * or ** instead"),
    ast.RShift: (">>", "use / or ** instead"),
}

#: What a refused node is called in a message, and how to do without it.
_PIECEWISE = "use max, min, relu or huber for a piecewise loss"
_REFUSED: dict[type[ast.AST], tuple[str, str]] = {
    ast.Attribute: ("attribute access", "call a function by its name alone, e.g. exp(w)"),
    ast.Subscript: ("a subscript", "give each value its own symbol, or use [data] columns"),
    ast.Lambda: ("lambda", ""),
    ast.ListComp: ("a comprehension", "use [data] columns for a sum over rows"),
    ast.SetComp: ("a comprehension", "use [data] columns for a sum over rows"),
    ast.DictComp: ("a comprehension", "use [data] columns for a sum over rows"),
    ast.GeneratorExp: ("a generator expression", "use [data] columns for a sum over rows"),
    ast.JoinedStr: ("an f-string", ""),
    ast.FormattedValue: ("an f-string", ""),
    ast.NamedExpr: ("an assignment expression", "put values under [values]"),
    ast.IfExp: ("a conditional expression", _PIECEWISE),
    ast.Compare: ("a comparison", _PIECEWISE),
    ast.BoolOp: ("'and' / 'or'", _PIECEWISE),
    ast.List: ("a list", "use [data] columns for rows of data"),
    ast.Tuple: ("a tuple", "use [data] columns for rows of data"),
    ast.Dict: ("a dict", ""),
    ast.Set: ("a set", ""),
    ast.Starred: ("a starred argument", ""),
    ast.Await: ("await", ""),
    ast.Yield: ("yield", ""),
    ast.YieldFrom: ("yield", ""),
    ast.Slice: ("a slice", ""),
}

#: Names people reach for that the loss language spells differently.
_ALIASES = {
    "ln": "log",
    "log10": "log",
    "fabs": "abs",
    "sigma": "sigmoid",
    "logistic": "sigmoid",
    "expit": "sigmoid",
    "maximum": "max",
    "minimum": "min",
    "Heaviside": "relu",
}


@dataclass(frozen=True)
class _Size:
    """What SymPy would build from a subtree: degrees, digits, roots, and its value."""

    degree: Mapping[str, float] = field(default_factory=dict)
    digits: int = 0
    roots: int = 1
    value: float | None = None

    def top_degree(self) -> tuple[str, float]:
        """Return the symbol with the highest power, and that power."""
        return max(self.degree.items(), key=lambda kv: kv[1], default=("", 0.0))


def is_valid_symbol_name(name: str) -> bool:
    """Return whether ``name`` may name a symbol: an ASCII identifier, not reserved."""
    return symbol_name_problem(name) is None


def symbol_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a symbol, or None when it can.

    >>> symbol_name_problem("exp")
    "'exp' is the name of a function; rename the symbol (e.g. 'exp_')"
    """
    if name in FUNCTIONS:
        return f"'{name}' is the name of a function; rename the symbol (e.g. '{name}_')"
    if name in CONSTANTS:
        return f"'{name}' is a constant of the loss language; rename the symbol (e.g. '{name}_')"
    if keyword.iskeyword(name):
        example = "lam" if name == "lambda" else f"{name}_"
        return f"'{name}' is a Python keyword; rename the symbol (e.g. '{example}')"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is None:
        return (
            f"{name!r} is not a symbol name; use letters, digits and '_', "
            "not starting with a digit (e.g. 'w1')"
        )
    return None


def parse(text: str, symbols: set[str] | frozenset[str]) -> Node:
    """Return the neutral tree of ``text``; raise :class:`ExpressionError` on anything unsafe.

    ``symbols`` are the names the problem gives values (or data, or constants) to.

    >>> parse("2*w", {"w"})
    Binary(op='*', left=Num(text='2'), right=Name(id='w'))
    """
    if not isinstance(text, str):
        raise ExpressionError("the loss must be a string", expression=str(text))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the loss is {len(text)} characters long; the limit is {MAX_LENGTH}. "
            "Write a shorter loss (with [data], one row's loss is enough)",
            expression=text[:80],
        )
    source = text.strip()
    if not source:
        raise ExpressionError("the loss is empty; write an expression such as '(w*x - y)**2'")
    _precheck(source)
    tree = _ast_of(source)
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(
            f"the loss has {count} syntax nodes; the limit is {MAX_NODES}. Write a shorter loss",
            expression=text,
        )
    return _Walker(source, frozenset(symbols)).visit(tree.body, 0)[0]


def _ast_of(source: str) -> ast.Expression:
    """Return Python's syntax tree of ``source``, which is only read, never compiled."""
    if _nesting(source) > MAX_DEPTH:
        raise ExpressionError(
            f"the loss nests brackets deeper than {MAX_DEPTH} levels; write it flatter",
            expression=source,
        )
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(_syntax_message(source, exc), expression=source) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(
            f"the loss is too deeply nested to read; the limit is {MAX_DEPTH} levels",
            expression=source,
        ) from None


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _precheck(text: str) -> None:
    """Refuse the common slips of people used to other notations, with the fix."""
    bad = next((ch for ch in text if ord(ch) < 32 and ch not in "\t\n\r" or ch == "\x7f"), None)
    if bad is not None:
        raise ExpressionError(
            f"the loss contains the control character U+{ord(bad):04X}; remove it",
            expression=text,
        )
    if "^" in text:
        raise ExpressionError(
            "the loss uses '^'; write powers with '**' (e.g. 'x**2')", expression=text
        )
    for match in re.finditer(r"(?<![A-Za-z_0-9.])(\d+(?:\.\d*)?)([A-Za-z_(])", text):
        rest = text[match.start(2) :]
        # 1e-3, 1_000, 0x1F and 2j are number literals (the last refused later), not products.
        if re.match(r"[eE][+-]?\d|_\d|[xXoObB][0-9a-fA-F]|[jJ](?![A-Za-z0-9_])", rest):
            continue
        number, after = match.group(1), match.group(2)
        raise ExpressionError(
            f"the loss has '{number}{after}', an implicit product; write '{number}*{after}'",
            expression=text,
        )


def _syntax_message(text: str, exc: SyntaxError) -> str:
    column = f" at column {exc.offset}" if exc.offset else ""
    return (
        f"the loss is not a valid expression{column} ({exc.msg}); "
        f"check '{text}' (operators are + - * / **, calls look like exp(w))"
    )


class _Walker:
    """Builds the neutral tree bottom-up, measuring each subtree against the limits."""

    def __init__(self, text: str, symbols: frozenset[str]) -> None:
        self.text = text
        self.symbols = symbols

    def fail(self, message: str, name: str = "") -> ExpressionError:
        return ExpressionError(message, expression=self.text, name=name)

    def snippet(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node) or ""
        return segment if len(segment) <= 60 else segment[:57] + "..."

    def visit(self, node: ast.AST, depth: int) -> tuple[Node, _Size]:
        if depth > MAX_DEPTH:
            raise self.fail(f"the loss is nested deeper than {MAX_DEPTH} levels; write it flatter")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand, size = self.visit(node.operand, depth + 1)
            op = _UNARY[type(node.op)]
            value = None if size.value is None else (-size.value if op == "-" else size.value)
            return Unary(op, operand), _Size(size.degree, size.digits, size.roots, value)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.refused(node)

    def refused(self, node: ast.AST) -> ExpressionError:
        if isinstance(node, ast.UnaryOp):
            return self.fail("the loss uses 'not' or '~', which are not allowed; use + - * / **")
        what, how = _REFUSED.get(type(node), (f"'{type(node).__name__}' syntax", ""))
        if isinstance(node, ast.Attribute) and node.attr in FUNCTIONS:
            how = f"call the function by its name alone, e.g. '{node.attr}(x)'"
        return self.fail(
            f"the loss uses {what} ('{self.snippet(node)}'), which a loss may not contain; "
            f"{how or 'a loss is numbers, symbols, + - * / ** and calls such as exp(w)'}"
        )

    def constant(self, node: ast.Constant) -> tuple[Num, _Size]:
        value = node.value
        if isinstance(value, complex):
            raise self.fail(f"the loss contains the complex number {value!r}; losses are real")
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a string" if isinstance(value, str | bytes) else repr(value)
            raise self.fail(
                f"the loss contains {kind}; only numbers, symbols and function calls are allowed"
            )
        # Compare an integer as an integer: one of 400 digits does not fit a float.
        if not (abs(value) <= MAX_LITERAL and (isinstance(value, int) or math.isfinite(value))):
            raise self.fail(
                f"the number {self.snippet(node)} is not finite or above the limit "
                f"{MAX_LITERAL:g}; rescale the problem"
            )
        text = repr(value)
        source = (ast.get_source_segment(self.text, node) or "").replace("_", "")
        return Num(text, source), _Size(digits=_digits(Fraction(text)), value=float(value))

    def name(self, node: ast.Name) -> tuple[Name, _Size]:
        ident = node.id
        if ident in CONSTANTS:
            return Name(ident), _Size(value=math.pi if ident == "pi" else math.e)
        if ident in self.symbols:
            return Name(ident), _Size(degree={ident: 1.0})
        if ident in FUNCTIONS:
            raise self.fail(f"'{ident}' is a function; call it, e.g. '{ident}(x)'", ident)
        known = sorted(self.symbols)
        hint = _split_hint(ident, self.symbols) or _did_you_mean(ident, [*known, *CONSTANTS])
        if ident == "e":
            hint = " Did you mean 'E' (or exp(...))?"
        raise self.fail(
            f"the loss uses '{ident}', which has no value under [values], [constants] or [data] "
            f"(known: {', '.join(known) or 'none'}).{hint} Add {ident} = 0.0 under [values], "
            "or fix the loss.",
            ident,
        )

    def binary(self, node: ast.BinOp, depth: int) -> tuple[Node, _Size]:
        if type(node.op) not in _BINOPS:
            written, instead = _REFUSED_OPS.get(type(node.op), (type(node.op).__name__, ""))
            raise self.fail(
                f"the loss uses the operator '{written}', which is not allowed; "
                f"{instead + '; ' if instead else ''}the operators are + - * / **"
            )
        op = _BINOPS[type(node.op)]
        left, a = self.visit(node.left, depth + 1)
        right, b = self.visit(node.right, depth + 1)
        if op == "**":
            size = self.power(node, right, a, b)
        else:
            size = _Size(
                _merge(a.degree, b.degree, add=op in "*/"),
                a.digits + b.digits,
                math.lcm(a.roots, b.roots),
                self.arithmetic(node, op, a.value, b.value),
            )
        self.check_size(node, size)
        return Binary(op, left, right), size

    def arithmetic(
        self, node: ast.BinOp, op: str, a: float | None, b: float | None
    ) -> float | None:
        if op == "/" and b == 0:
            raise self.fail(f"'{self.snippet(node)}' divides by zero; fix the denominator")
        if a is None or b is None:
            return None
        return self.finite(node, _combine(op, a, b))

    def power(self, node: ast.BinOp, exponent: Node, base: _Size, exp: _Size) -> _Size:
        if exp.value is None:
            if _contains_power(exponent):
                raise self.fail(
                    "the loss stacks powers in an exponent ('a**b**c'), which is refused; "
                    "write exp(...) for an exponential"
                )
            if base.value is not None and base.value < 0:
                raise self.fail(
                    f"'{self.snippet(node)}' raises a negative number to a power that varies, "
                    "which is not real for most values; use a positive base"
                )
            degree = _merge(base.degree, exp.degree, add=False)
            return _Size(degree, base.digits + exp.digits, math.lcm(base.roots, exp.roots))
        if _contains_power(exponent):
            raise self.fail(
                f"the loss stacks numeric powers ('{self.snippet(node)}'); "
                "compute the exponent and write it as one number"
            )
        if abs(exp.value) > MAX_EXPONENT:
            raise self.fail(
                f"the exponent in '{self.snippet(node)}' is larger than the limit {MAX_EXPONENT}; "
                "a loss this steep cannot be taught or computed"
            )
        roots = math.lcm(base.roots, exp.roots, self.denominator(node, exponent))
        times = abs(exp.value)
        degree = {name: d * times for name, d in base.degree.items()}
        digits = base.digits * max(1, math.ceil(times)) + exp.digits
        return _Size(degree, digits, roots, self.constant_power(node, base.value, exp.value))

    def denominator(self, node: ast.BinOp, exponent: Node) -> int:
        exact = _exact(exponent)
        if exact is None or exact.denominator == 1:
            return 1
        if exact.denominator > MAX_ROOTS:
            raise self.fail(
                f"the exponent in '{self.snippet(node)}' is the fraction {exact}; "
                f"write a simple fraction (denominator up to {MAX_ROOTS}), e.g. 1/3"
            )
        return exact.denominator

    def constant_power(self, node: ast.BinOp, base: float | None, exp: float) -> float | None:
        if base is None:
            return None
        if base == 0 and exp < 0:
            raise self.fail(f"'{self.snippet(node)}' divides by zero; fix the base or exponent")
        try:
            result = base**exp
        except OverflowError:
            result = math.inf
        if isinstance(result, complex):
            raise self.fail(
                f"'{self.snippet(node)}' is not a real number (a negative number to a "
                "fractional power); fix the base or the exponent"
            )
        return self.finite(node, result)

    def finite(self, node: ast.AST, value: float) -> float:
        if not math.isfinite(value):
            raise self.fail(
                f"'{self.snippet(node)}' is too large for a floating-point number; rescale it"
            )
        return value

    def check_size(self, node: ast.AST, size: _Size) -> None:
        name, power = size.top_degree()
        if power > MAX_DEGREE:
            raise self.fail(
                f"'{self.snippet(node)}' raises {name} to the power {power:g} once multiplied "
                f"out; the limit is {MAX_DEGREE}. Use smaller exponents"
            )
        if size.digits > MAX_DIGITS:
            raise self.fail(
                f"'{self.snippet(node)}' needs numbers of more than {MAX_DIGITS} digits once "
                "multiplied out; use smaller exponents or plainer numbers"
            )
        if size.roots > MAX_ROOTS:
            raise self.fail(
                f"the exponents in '{self.snippet(node)}' have denominators whose least common "
                f"multiple is {size.roots}; the limit is {MAX_ROOTS}. Use simpler fractions"
            )

    def call(self, node: ast.Call, depth: int) -> tuple[Call, _Size]:
        func = self.callee(node)
        if node.keywords:
            raise self.fail(f"'{func}' takes positional arguments only, no keywords", func)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"'{func}' takes no starred arguments; list the arguments", func)
        arity = FUNCTIONS[func][1]
        if len(node.args) != arity:
            example = f"{func}(x)" if arity == 1 else f"{func}(a, b)"
            raise self.fail(
                f"'{func}' takes {arity} argument{'s' if arity > 1 else ''}, not "
                f"{len(node.args)}; write e.g. '{example}'",
                func,
            )
        visited = [self.visit(a, depth + 1) for a in node.args]
        sizes = [s for _, s in visited]
        degree: dict[str, float] = {}
        for s in sizes:
            degree = _merge(degree, s.degree, add=False)
        size = _Size(
            degree,
            sum(s.digits for s in sizes),
            math.lcm(*(s.roots for s in sizes)),
            self.constant_call(node, func, [s.value for s in sizes]),
        )
        self.check_size(node, size)
        return Call(func, tuple(n for n, _ in visited)), size

    def callee(self, node: ast.Call) -> str:
        """Return the name of the function ``node`` calls, refusing anything else."""
        if isinstance(node.func, ast.Attribute):
            raise self.refused(node.func)
        if not isinstance(node.func, ast.Name):
            raise self.fail(
                f"the loss calls something that is not a function name ('{self.snippet(node)}')"
            )
        func = node.func.id
        if func in FUNCTIONS:
            return func
        if func in self.symbols:
            args = ", ".join(self.snippet(a) for a in node.args)
            raise self.fail(
                f"the loss calls '{func}', a symbol, as a function; "
                f"to multiply, write '{func}*({args})'",
                func,
            )
        guess = _ALIASES.get(func)
        hint = f" Did you mean '{guess}'?" if guess else _did_you_mean(func, list(FUNCTIONS))
        if func == "pow":
            hint = " Write powers with '**', e.g. 'w**2'."
        raise self.fail(
            f"the loss calls '{func}', which is not a function a loss may use.{hint} "
            f"Known: {', '.join(sorted(FUNCTIONS))}.",
            func,
        )

    def constant_call(self, node: ast.Call, func: str, args: list[float | None]) -> float | None:
        if any(a is None for a in args):
            return None
        try:
            result = REGISTRY[func].evaluate(*args)
        except OverflowError:
            result = math.inf
        except (ValueError, ZeroDivisionError):
            raise self.fail(
                f"'{self.snippet(node)}' has no real value ({func} is not defined there); "
                "fix its argument"
            ) from None
        return self.finite(node, float(result))


def _digits(number: Fraction) -> int:
    """Return about how many decimal digits the numerator and denominator need together."""
    bits = abs(number.numerator).bit_length() + number.denominator.bit_length()
    return max(1, math.ceil(bits * math.log10(2)))


def _merge(a: Mapping[str, float], b: Mapping[str, float], *, add: bool) -> dict[str, float]:
    """Return per-symbol degrees of a product (``add``) or of a sum (the larger of the two)."""
    out = dict(a)
    for name, d in b.items():
        out[name] = out.get(name, 0.0) + d if add else max(out.get(name, 0.0), d)
    return out


def _exact(node: Node) -> Fraction | None:
    """Return the exact value of a subtree of numbers and + - * /, or None for anything else."""
    if isinstance(node, Num):
        return Fraction(node.text)
    if isinstance(node, Unary):
        inner = _exact(node.operand)
        return None if inner is None else (-inner if node.op == "-" else inner)
    if isinstance(node, Binary) and node.op != "**":
        a, b = _exact(node.left), _exact(node.right)
        if a is None or b is None or (node.op == "/" and b == 0):
            return None
        return _combine(node.op, a, b)
    return None


def _combine(op: str, a: _Number, b: _Number) -> _Number:
    """Return ``a op b`` for op one of ``+ - * /`` (``b`` is not zero for ``/``)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b if op == "*" else a / b


def _contains_power(node: Node) -> bool:
    if isinstance(node, Binary):
        return node.op == "**" or _contains_power(node.left) or _contains_power(node.right)
    if isinstance(node, Unary):
        return _contains_power(node.operand)
    if isinstance(node, Call):
        return any(_contains_power(a) for a in node.args)
    return False


def _did_you_mean(word: str, candidates: list[str]) -> str:
    """Return " Did you mean 'x'?" for the candidate nearest ``word``, or "" when none is near."""
    same = [c for c in candidates if c.lower() == word.lower()]
    close = same or difflib.get_close_matches(word, candidates, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _split_hint(word: str, symbols: frozenset[str]) -> str:
    """Return a hint when ``word`` is two symbols written side by side ('wx' for 'w*x')."""
    for i in range(1, len(word)):
        if word[:i] in symbols and word[i:] in symbols:
            return f" Did you mean '{word[:i]}*{word[i:]}'?"
    return ""


def make_symbol(name: str) -> sympy.Symbol:
    """Return the SymPy symbol for ``name``: every symbol of a loss is real."""
    return sympy.Symbol(name, real=True)


def to_sympy(node: Node) -> sympy.Expr:
    """Build the SymPy expression of a neutral tree (numbers exact: 0.1 becomes 1/10)."""
    if isinstance(node, Num):
        exact = Fraction(node.text)
        return sympy.Rational(exact.numerator, exact.denominator)
    if isinstance(node, Name):
        return CONSTANTS.get(node.id) or make_symbol(node.id)
    if isinstance(node, Unary):
        inner = to_sympy(node.operand)
        return -inner if node.op == "-" else inner
    if isinstance(node, Binary):
        a, b = to_sympy(node.left), to_sympy(node.right)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if node.op == "/":
            return a / b
        return a**b
    func = FUNCTIONS[node.func][0]
    return func(*(to_sympy(a) for a in node.args))


def term_order(node: Node) -> dict[sympy.Expr, int]:
    """Return each term of every sum in ``node`` (as SymPy holds it, sign included) and its
    place in that sum as written: ``(w*x - y)**2 + lam*w**2`` puts (wx − y)² before λw².

    >>> w, y = make_symbol("w"), make_symbol("y")
    >>> term_order(parse("w**2 - y", {"w", "y"}))
    {w**2: 0, -y: 1}
    """
    order: dict[sympy.Expr, int] = {}
    _collect_terms(node, order)
    return order


def _collect_terms(node: Node, order: dict[sympy.Expr, int]) -> None:
    if isinstance(node, Binary) and node.op in "+-":
        for k, (sign, term) in enumerate(_signed_terms(node)):
            order.setdefault(sign * to_sympy(term), k)
            _collect_terms(term, order)
        return
    children: tuple[Node, ...] = ()
    if isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary):
        children = (node.left, node.right)
    elif isinstance(node, Call):
        children = node.args
    for child in children:
        _collect_terms(child, order)


def _signed_terms(node: Node, sign: int = 1) -> list[tuple[int, Node]]:
    """Return the terms of a sum as written, each with its sign."""
    if isinstance(node, Binary) and node.op in "+-":
        right = -sign if node.op == "-" else sign
        return _signed_terms(node.left, sign) + _signed_terms(node.right, right)
    if isinstance(node, Unary) and isinstance(node.operand, Binary) and node.operand.op in "+-":
        return _signed_terms(node.operand, -sign if node.op == "-" else sign)
    return [(sign, node)]


#: What SymPy turns a division by zero, log(0) or sqrt(-1) into.
_NOT_REAL = (sympy.zoo, sympy.oo, sympy.S.NegativeInfinity, sympy.nan, sympy.I)


def to_real_sympy(node: Node, text: str = "") -> sympy.Expr:
    """Return :func:`to_sympy` of ``node``, refusing a loss that SymPy finds not real or finite.

    The walk already refuses constant parts such as ``1/0`` and ``log(-1)``;
    this catches the ones only SymPy's simplification reveals, such as
    ``w/(x - x)``.

    >>> try:
    ...     to_real_sympy(parse("w/(x - x)", {"w", "x"}))
    ... except ExpressionError as exc:
    ...     print(exc.message[:33])
    the loss becomes zoo*w once SymPy
    """
    try:
        expr = to_sympy(node)
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        # SymPy refuses some losses as it builds them, e.g. the max of a number it
        # knows is not real: max(w, sqrt(min(w, 1 - pi))).
        raise ExpressionError(
            f"SymPy cannot build the loss ({exc}); check that every max, min, log and sqrt "
            "has a real argument",
            expression=text,
        ) from None
    if expr.has(*_NOT_REAL):
        shown = str(expr)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ExpressionError(
            f"the loss becomes {shown} once SymPy simplifies it, which is not a real, finite "
            "number (zoo is 1/0, I is sqrt(-1)); check for a denominator or log argument "
            "that is always zero",
            expression=text,
        )
    return expr


def names(node: Node) -> set[str]:
    """Return the symbol names a tree uses (not ``pi`` or ``E``)."""
    if isinstance(node, Name):
        return set() if node.id in CONSTANTS else {node.id}
    if isinstance(node, Unary):
        return names(node.operand)
    if isinstance(node, Binary):
        return names(node.left) | names(node.right)
    if isinstance(node, Call):
        return set().union(*(names(a) for a in node.args))
    return set()
