"""Parse a loss expression safely: a whitelist walk of Python's ``ast``, never ``eval``.

The walk produces a small neutral tree (:class:`Node`) that two builders read:
:func:`to_sympy` for the calculus and, in :mod:`tutor.autodiff`, TensorFlow
for the numbers, so TensorFlow computes the loss in the order the file writes
it, as the notebook's ``(w * x - y) ** 2`` does.

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
from dataclasses import dataclass

import sympy

from .errors import ExpressionError
from .functions import CONSTANTS, FUNCTIONS

#: Limits that keep parsing and differentiation bounded in time and memory.
MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_LITERAL = 1e15
MAX_EXPONENT = 64


@dataclass(frozen=True)
class Num:
    """A number literal, kept as written so SymPy sees it exactly (0.1 is 1/10)."""

    text: str

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

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}

#: What a refused node is called in a message, and how to do without it.
_REFUSED = {
    ast.Attribute: "attribute access ('a.b')",
    ast.Subscript: "subscripts ('a[i]')",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment expressions (':=')",
    ast.IfExp: "conditional expressions ('a if c else b'); use max, min, relu or huber",
    ast.Compare: "comparisons; use max, min, relu or huber for a piecewise loss",
    ast.BoolOp: "'and' / 'or'",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def is_valid_symbol_name(name: str) -> bool:
    """Return whether ``name`` may name a symbol: an ASCII identifier, not reserved."""
    return (
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None
        and not keyword.iskeyword(name)
        and name not in FUNCTIONS
        and name not in CONSTANTS
    )


def symbol_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a symbol, or None when it can."""
    if name in FUNCTIONS:
        return f"'{name}' is the name of a function; rename the symbol (e.g. '{name}_')"
    if name in CONSTANTS:
        return f"'{name}' is a constant of the loss language; rename the symbol"
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword; rename the symbol (e.g. '{name}_')"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is None:
        return f"'{name}' is not an identifier (letters, digits and '_', not starting with a digit)"
    return None


def parse(text: str, symbols: set[str] | frozenset[str]) -> Node:
    """Return the neutral tree of ``text``; raise :class:`ExpressionError` on anything unsafe.

    ``symbols`` are the names the problem gives values (or data, or constants) to.
    """
    if not isinstance(text, str):
        raise ExpressionError("the loss must be a string", expression=str(text))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the loss is {len(text)} characters long; the limit is {MAX_LENGTH}", expression=text
        )
    if not text.strip():
        raise ExpressionError("the loss is empty; write an expression such as '(w*x - y)**2'")
    _precheck(text)
    if _nesting(text) > MAX_DEPTH:
        raise ExpressionError(
            f"the loss nests parentheses deeper than {MAX_DEPTH} levels", expression=text
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(_syntax_message(text, exc), expression=text) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(
            "the loss is too large or too deeply nested", expression=text
        ) from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(
            f"the loss has {count} syntax nodes; the limit is {MAX_NODES}", expression=text
        )
    return _Walker(text, frozenset(symbols)).visit(tree.body, 0)


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
    if "^" in text:
        raise ExpressionError(
            "the loss uses '^'; write powers with '**' (e.g. 'x**2')", expression=text
        )
    implicit = re.search(r"(?<![A-Za-z_0-9.])(\d+(?:\.\d*)?)([A-Za-z_(])", text)
    if implicit and not re.match(r"[eE][+-]?\d", text[implicit.start(2) :]):
        number, after = implicit.group(1), implicit.group(2)
        raise ExpressionError(
            f"the loss has '{number}{after}', an implicit product; write '{number}*{after}'",
            expression=text,
        )


def _syntax_message(text: str, exc: SyntaxError) -> str:
    column = f" at column {exc.offset}" if exc.offset else ""
    return f"the loss is not a valid expression{column} ({exc.msg}); check '{text.strip()}'"


class _Walker:
    def __init__(self, text: str, symbols: frozenset[str]) -> None:
        self.text = text
        self.symbols = symbols

    def fail(self, message: str, name: str = "") -> ExpressionError:
        return ExpressionError(message, expression=self.text, name=name)

    def visit(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"the loss is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return Unary(_UNARY[type(node.op)], self.visit(node.operand, depth + 1))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op = _BINOPS[type(node.op)]
            left = self.visit(node.left, depth + 1)
            right = self.visit(node.right, depth + 1)
            if op == "**":
                self.check_power(left, right)
            return Binary(op, left, right)
        if isinstance(node, ast.BinOp):
            raise self.fail(
                f"the loss uses the operator '{type(node.op).__name__}', which is not allowed; "
                "use + - * / **"
            )
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.UnaryOp):
            raise self.fail("the loss uses 'not' or '~', which are not allowed; use + - * / **")
        refused = _REFUSED.get(type(node), type(node).__name__)
        raise self.fail(f"the loss uses {refused}, which a loss may not contain")

    def constant(self, node: ast.Constant) -> Num:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a string" if isinstance(value, str | bytes) else repr(value)
            raise self.fail(f"the loss contains {kind}; only numbers and symbols are allowed")
        if isinstance(value, int) and abs(value) > MAX_LITERAL:
            raise self.fail(f"the number {value} is larger than the limit {MAX_LITERAL:g}")
        if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= MAX_LITERAL):
            raise self.fail(
                f"the number {value!r} is not finite or above the limit {MAX_LITERAL:g}"
            )
        return Num(repr(value))

    def name(self, node: ast.Name) -> Name:
        ident = node.id
        if ident in self.symbols or ident in CONSTANTS:
            return Name(ident)
        if ident in FUNCTIONS:
            raise self.fail(f"'{ident}' is a function; call it, e.g. '{ident}(x)'", ident)
        known = sorted(self.symbols)
        hint = _did_you_mean(ident, [*known, *CONSTANTS])
        raise self.fail(
            f"the loss uses '{ident}', which has no value under [values], [constants] or [data] "
            f"(known: {', '.join(known) or 'none'}).{hint} Add it or fix the loss.",
            ident,
        )

    def call(self, node: ast.Call, depth: int) -> Call:
        if not isinstance(node.func, ast.Name):
            raise self.fail("the loss calls something that is not a function name")
        func = node.func.id
        if func not in FUNCTIONS:
            hint = _did_you_mean(func, list(FUNCTIONS))
            raise self.fail(
                f"the loss calls '{func}', which is not a function a loss may use.{hint} "
                f"Known: {', '.join(sorted(FUNCTIONS))}.",
                func,
            )
        if node.keywords:
            raise self.fail(f"'{func}' takes positional arguments only, no keywords", func)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"'{func}' takes no starred arguments", func)
        arity = FUNCTIONS[func][1]
        if len(node.args) != arity:
            raise self.fail(
                f"'{func}' takes {arity} argument{'s' if arity > 1 else ''}, not {len(node.args)}",
                func,
            )
        return Call(func, tuple(self.visit(a, depth + 1) for a in node.args))

    def check_power(self, base: Node, exponent: Node) -> None:
        if _is_numeric(exponent):
            value = _numeric_value(exponent)
            if value is None or abs(value) > MAX_EXPONENT:
                raise self.fail(
                    f"the exponent is larger than the limit {MAX_EXPONENT}; "
                    "a loss this steep cannot be taught or computed"
                )
            if isinstance(exponent, Binary) and exponent.op == "**":
                raise self.fail("the loss stacks numeric powers ('a**b**c'); compute the exponent")
        elif _contains_power(exponent):
            raise self.fail("the loss stacks powers in an exponent ('a**b**c'), which is refused")


def _is_numeric(node: Node) -> bool:
    if isinstance(node, Num):
        return True
    if isinstance(node, Unary):
        return _is_numeric(node.operand)
    if isinstance(node, Binary):
        return _is_numeric(node.left) and _is_numeric(node.right)
    return False


def _numeric_value(node: Node) -> float | None:
    """The value of a numeric subtree, or None when it is too large to compute safely."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Unary):
        inner = _numeric_value(node.operand)
        return None if inner is None else (-inner if node.op == "-" else inner)
    if isinstance(node, Binary):
        a, b = _numeric_value(node.left), _numeric_value(node.right)
        if a is None or b is None or node.op == "**":
            return None
        try:
            result = {"+": a + b, "-": a - b, "*": a * b}.get(node.op)
            if node.op == "/":
                result = a / b if b else None
        except OverflowError:
            return None
        return result
    return None


def _contains_power(node: Node) -> bool:
    if isinstance(node, Binary):
        return node.op == "**" or _contains_power(node.left) or _contains_power(node.right)
    if isinstance(node, Unary):
        return _contains_power(node.operand)
    if isinstance(node, Call):
        return any(_contains_power(a) for a in node.args)
    return False


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def make_symbol(name: str) -> sympy.Symbol:
    """Return the SymPy symbol for ``name``: every symbol of a loss is real."""
    return sympy.Symbol(name, real=True)


def to_sympy(node: Node) -> sympy.Expr:
    """Build the SymPy expression of a neutral tree (numbers exact: 0.1 becomes 1/10)."""
    if isinstance(node, Num):
        return (
            sympy.Rational(node.text)
            if "e" not in node.text.lower()
            else sympy.Rational(sympy.Float(node.text, 30))
        )
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
    return func(*(to_sympy(a) for a in node.args))  # type: ignore[operator]


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
