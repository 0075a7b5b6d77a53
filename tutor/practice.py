"""Practice mode: judge a student's derivative and update numbers, as pure functions.

The tutor asks for ∂L/∂s, then for the gradient and the updated value of the
first updates of the descent. :func:`check_answer` judges a derivative typed
as text: it is read with the same safe parser as a problem file (nothing is
evaluated as code), compared with the derivation's result at random points in
the problem's ``[verify]`` box (the problem's own values first), and, where no
point tells them apart, proved equal by SymPy when it can. A wrong answer comes
with a point where it differs and, where it can be named, the kind of mistake.

>>> from tutor.problem import load
>>> from tutor.derivation import derive
>>> derivation = derive(load("seed-w"))
>>> check_answer(derivation, "w", "2*x*(w*x - y)").verdict
'correct'
>>> judged = check_answer(derivation, "w", "2*(w*x - y)")
>>> judged.verdict, judged.mistake, judged.factor
('wrong', 'chain_factor', x)

The session itself is a list of :class:`Item` records, one per question,
changed only by :func:`respond`; :func:`score` sums them up.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from ._timeout import within_time_limit
from .errors import ExpressionError
from .expression import Binary, Call, Node, Unary, make_symbol, parse, to_real_sympy
from .functions import FUNCTIONS
from .model import Derivation, Partial, Problem, Step, Trajectory
from .numeric import UnsupportedExpression, evaluate
from .problem import DEFAULT_BOX
from .steps import tidy
from .variants import hand_round

#: What a judged answer can be.
VERDICTS = ("correct", "unsimplified", "wrong")
#: The kinds of mistake the checker names (JSON spelling), and how people read them.
MISTAKES = {
    "sign": "sign error",
    "chain_factor": "missing chain-rule factor",
    "constant_factor": "wrong constant factor",
    "other_symbol": "derivative with respect to another symbol",
}
#: Words typed at the prompt that are commands, not answers.
COMMANDS = ("hint", "step", "show", "help")
#: Points where a derivative must agree with the answer before it is called equal,
#: and how many points are tried in all (some fall outside the loss's domain).
POINTS_NEEDED = 12
POINTS_TRIED = 60
#: Seconds SymPy may spend proving an answer equal, and the size it is tried on.
PROOF_SECONDS = 2.0
PROOF_MAX_OPS = 80
#: Seconds a whole answer check may take (milliseconds for any answer a student writes).
CHECK_SECONDS = 10.0
#: Digits of the high-precision re-evaluation that confirms a float64 disagreement.
PRECISION = 50


@dataclass(frozen=True)
class Counterexample:
    """A point where the answer and the derivative differ; ``answer`` None where it is not real."""

    values: Mapping[str, float]
    expected: float
    answer: float | None


@dataclass(frozen=True)
class Judgement:
    """What :func:`check_answer` found.

    ``verdict`` is one of :data:`VERDICTS`; for a wrong answer ``mistake`` is a
    key of :data:`MISTAKES` or None, ``factor`` the missing chain-rule or
    constant factor, ``other`` the symbol differentiated by instead, and
    ``counterexample`` a point where the two differ. ``proof`` says how a
    correct answer was judged: ``"sympy"`` (proved equal) or ``"points"``
    (equal at every point tried).
    """

    verdict: str
    answer: sympy.Expr | float
    expected: sympy.Expr | float
    mistake: str | None = None
    factor: sympy.Expr | None = None
    other: str = ""
    counterexample: Counterexample | None = None
    proof: str = ""

    @property
    def accepted(self) -> bool:
        """Whether the answer counts as right (correct, simplified or not)."""
        return self.verdict in ("correct", "unsimplified")


# -- reading answers ---------------------------------------------------------------------


def read_expression(problem: Problem, text: str) -> sympy.Expr:
    """Return the SymPy expression of an answer, read like a loss; raise ExpressionError.

    >>> from tutor.problem import load
    >>> read_expression(load("seed-w"), "2x")
    Traceback (most recent call last):
    ...
    tutor.errors.ExpressionError: the answer has '2x', an implicit product; write '2*x'
    """
    return _read(problem, text)[0]


def _read(problem: Problem, text: str) -> tuple[sympy.Expr, Node]:
    """Return the answer's SymPy expression and its parsed tree (what was typed)."""
    symbols = {*problem.values, *problem.constants, *problem.data}
    text = as_typed(text)
    try:
        tree = parse(text, symbols)
        expr = within_time_limit(to_real_sympy, tree, text, what="reading the answer", seconds=2)
    except ExpressionError as exc:
        raise _as_answer_error(exc, text, sorted(symbols)) from None
    return expr, tree


def _written_size(expr: sympy.Expr, problem: Problem) -> int:
    """Return the size of ``expr`` written out as an answer would be, as :func:`tree_size` counts.

    SymPy distributes a number over a sum (2*(w - y) is 2*w - 2*y), so sizes
    are compared as written, not as SymPy holds them.
    """
    symbols = {*problem.values, *problem.constants, *problem.data}
    try:
        return tree_size(parse(str(expr), symbols))
    except ExpressionError:
        # Written with functions an answer cannot use (sign, Heaviside): count SymPy's operations.
        return int(sympy.count_ops(expr)) * 2 + 1


def tree_size(node: Node) -> int:
    """Return the number of nodes of a parsed expression.

    >>> tree_size(parse("2*(w - y)", {"w", "y"}))
    5
    """
    if isinstance(node, Unary):
        return 1 + tree_size(node.operand)
    if isinstance(node, Binary):
        return 1 + tree_size(node.left) + tree_size(node.right)
    if isinstance(node, Call):
        return 1 + sum(tree_size(a) for a in node.args)
    return 1


def as_typed(text: str) -> str:
    """Return an answer with the signs the tutor prints read as the operators they are:
    a true minus (−) as ``-``, a middle dot (·) and × as ``*``, so that a number or
    formula copied from the tutor's own output reads back.

    >>> as_typed("0.5 − 0.01·(−27)")
    '0.5 - 0.01*(-27)'
    """
    return text.translate(_TYPED)


_TYPED = str.maketrans({"−": "-", "·": "*", "×": "*"})


def read_number(text: str) -> float:
    """Return the number an answer gives (arithmetic such as ``0.5 - 0.01*(-27)`` allowed).

    >>> read_number("0.5 - 0.01*(-27)")
    0.77
    """
    text = as_typed(text)
    try:
        tree = parse(text, frozenset())
        value = to_real_sympy(tree, text)
    except ExpressionError as exc:
        if exc.name and exc.name not in FUNCTIONS:
            raise ExpressionError(
                f"the answer uses '{exc.name}'; give a number here, e.g. 0.77 "
                "(arithmetic such as 0.5 - 0.01*(-27) is fine)",
                expression=text,
                name=exc.name,
            ) from None
        raise _as_answer_error(exc, text, []) from None
    number = float(sympy.N(value, 30))
    if not math.isfinite(number):
        raise ExpressionError("the answer is not a finite number; give e.g. 0.77", expression=text)
    return number


def _as_answer_error(exc: ExpressionError, text: str, symbols: list[str]) -> ExpressionError:
    """Return the parser's error reworded for an answer typed at the prompt."""
    if exc.name and exc.name not in FUNCTIONS and "has no value" in exc.message:
        hint = re.search(r" Did you mean '[^']*'\?", exc.message)
        message = (
            f"the answer uses '{exc.name}', which is not a symbol of this problem "
            f"(symbols: {', '.join(symbols) or 'none'}).{hint.group(0) if hint else ''}"
        )
    else:
        message = exc.message.replace("the loss", "the answer").replace("a loss", "an answer")
        message = message.replace(
            "Write a shorter loss (with [data], one row's loss is enough)",
            "Write a shorter answer",
        )
    return ExpressionError(message, expression=text, name=exc.name)


# -- judging a derivative ---------------------------------------------------------------


def check_answer(derivation: Derivation, symbol: str, text: str) -> Judgement:
    """Return the verdict on ``text`` as ∂L/∂``symbol``; raise ExpressionError if unreadable.

    With data rows the answer is the per-row partial, as the derivation shows it.
    The whole check runs under a time limit of :data:`CHECK_SECONDS`.
    """
    try:
        return within_time_limit(
            _check, derivation, symbol, text, what="checking the answer", seconds=CHECK_SECONDS
        )
    except ExpressionError as exc:
        if not exc.message.startswith("checking the answer took longer"):
            raise  # the answer could not be read: the parser's reason stands
        raise ExpressionError(
            f"checking the answer took longer than {CHECK_SECONDS:g} s and was stopped; "
            "write it with fewer terms or smaller powers",
            expression=text,
        ) from None


def _check(derivation: Derivation, symbol: str, text: str) -> Judgement:
    partial = derivation.partial(symbol)
    problem = derivation.problem
    answer, tree = _read(problem, text)
    expected = partial.result
    points = list(sample_points(problem, symbol))
    differs, agreed = first_difference(answer, expected, points, problem.loss)
    if differs is None:
        proved = proved_equal(answer, expected)
        if not (proved or agreed):
            # No point of the box tells them apart or together, and SymPy cannot decide.
            return Judgement("wrong", answer, expected)
        simpler = answer == expected or tree_size(tree) <= _written_size(expected, problem)
        return Judgement(
            "correct" if simpler else "unsimplified",
            answer,
            expected,
            proof="sympy" if proved else "points",
        )
    mistake, factor, other = classify(answer, partial, problem, points)
    return Judgement("wrong", answer, expected, mistake, factor, other, differs)


def sample_points(problem: Problem, symbol: str) -> Iterator[dict[str, float]]:
    """Yield the points to compare at: the problem's values, then points in its [verify] box.

    Random points are rounded as a teacher would write them (to 0.1, or to a
    whole number from 5 up) for the first half, so a counterexample is easy
    to check by hand; constants keep their values, data columns take a row.
    """
    rng = random.Random(f"practice:{problem.id}:{symbol}")
    rows = problem.rows
    yield {**problem.constants, **problem.values, **_row(problem, 0 if rows else None)}
    for k in range(POINTS_TRIED - 1):
        point = {}
        for name in problem.values:
            value = rng.uniform(*problem.verify.get(name, DEFAULT_BOX))
            point[name] = hand_round(value) if k < POINTS_TRIED // 2 else value
        row = rng.randrange(rows) if rows else None
        yield {**problem.constants, **point, **_row(problem, row)}


def _row(problem: Problem, row: int | None) -> dict[str, float]:
    return {} if row is None else {name: column[row] for name, column in problem.data.items()}


def first_difference(
    answer: sympy.Expr, expected: sympy.Expr, points: list[dict[str, float]], domain: sympy.Expr
) -> tuple[Counterexample | None, int]:
    """Return the first point where ``answer`` and ``expected`` differ (or None), and how
    many points they agreed at before it (at most :data:`POINTS_NEEDED`).

    Points where ``domain`` (the loss) or ``expected`` is not a finite real
    number are skipped.
    """
    agreed = 0
    for point in points:
        verdict = _compare_at(answer, expected, point, domain)
        if isinstance(verdict, Counterexample):
            return verdict, agreed
        agreed += verdict is True
        if agreed >= POINTS_NEEDED:
            break
    return None, agreed


def _compare_at(
    answer: sympy.Expr, expected: sympy.Expr, point: dict[str, float], domain: sympy.Expr
) -> bool | None | Counterexample:
    """Return True if they agree at ``point``, None if it tells nothing, else the counterexample.

    Equal float64 values agree at once. Otherwise both are evaluated in 50
    digits (the inputs are exact binary numbers): a difference is real when
    it persists at 90 digits, and only rounding when it shrinks with more
    digits, as the difference of two equal forms does, however much their
    terms cancel.
    """
    where, e, a = (_float(x, point) for x in (domain, expected, answer))
    if where is None or e is None:
        return None
    if a is not None and a == e:
        return True
    if _overflows(expected, point) or _overflows(answer, point):
        # Exact values past float64 (exp of exp of exp) can take mpmath forever.
        return None
    e_exact, a_exact = _precise(expected, point, PRECISION), _precise(answer, point, PRECISION)
    if e_exact is None:
        return None
    if a_exact is not None:
        gap = abs(a_exact - e_exact)
        if gap <= 10.0 ** -(PRECISION - 5) * max(abs(a_exact), abs(e_exact), 1e-300):
            return True
        e_more, a_more = (_precise(x, point, 2 * PRECISION) for x in (expected, answer))
        if e_more is not None and a_more is not None and abs(a_more - e_more) < 1e-20 * gap:
            return True
    return Counterexample(dict(point), float(e_exact), None if a_exact is None else float(a_exact))


def _overflows(expr: sympy.Expr, point: Mapping[str, float]) -> bool:
    """Return whether some part of ``expr`` is beyond float64's range at ``point``."""
    for part in sympy.preorder_traversal(expr):
        if not part.args:
            continue
        try:
            value = complex(evaluate(part, point))
        except (UnsupportedExpression, TypeError, ValueError, ZeroDivisionError):
            continue
        except OverflowError:
            return True
        if math.isinf(value.real) or math.isinf(value.imag):
            return True
    return False


def _float(expr: sympy.Expr, point: Mapping[str, float]) -> float | None:
    """Return expr in float64 at point, or None where it is not a finite real number."""
    try:
        with warnings.catch_warnings():
            # NumPy warns where a part is not real (a complex power of a negative number).
            warnings.simplefilter("error")
            value = complex(evaluate(expr, point))
    except (Warning, UnsupportedExpression, TypeError, ValueError, ZeroDivisionError):
        return None
    except OverflowError:
        return None
    if value.imag != 0 or not math.isfinite(value.real):
        return None
    return value.real


def _precise(expr: sympy.Expr, point: Mapping[str, float], digits: int) -> Any:
    """Return expr at point evaluated with ``digits`` digits (an mpf), or None where not real."""
    import mpmath

    try:
        with mpmath.workdps(digits):
            value = evaluate(expr, point, precise=True)
            if isinstance(value, mpmath.mpc):
                if abs(value.imag) > mpmath.mpf(10) ** -(digits - 10) * max(1, abs(value)):
                    return None
                value = value.real
            value = mpmath.mpf(value)
    except (UnsupportedExpression, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if mpmath.isfinite(value) else None


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + atol


def proved_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Return whether SymPy shows ``a - b`` is 0 within :data:`PROOF_SECONDS`."""
    difference = a - b
    if difference == 0:
        return True
    if sympy.count_ops(difference) > PROOF_MAX_OPS:
        return False
    try:
        return bool(
            within_time_limit(
                _simplifies_to_zero, difference, what="comparing", seconds=PROOF_SECONDS
            )
        )
    except (ExpressionError, ValueError, TypeError, ArithmeticError, RecursionError):
        return False


def _simplifies_to_zero(expr: sympy.Expr) -> bool:
    return sympy.expand(expr) == 0 or sympy.simplify(expr) == 0


def classify(
    answer: sympy.Expr, partial: Partial, problem: Problem, points: list[dict[str, float]]
) -> tuple[str | None, sympy.Expr | None, str]:
    """Return (mistake, factor, other symbol) naming what a wrong answer got wrong, if it can."""
    expected = partial.result

    def same(a: sympy.Expr, b: sympy.Expr) -> bool:
        return _agrees(a, b, points, problem.loss)

    if same(answer, -expected):
        return "sign", None, ""
    for factor in chain_factors(partial):
        if same(answer, expected / factor):
            return "chain_factor", factor, ""
    ratio = constant_ratio(answer, expected, points, problem.loss)
    if ratio is not None:
        return "constant_factor", ratio, ""
    symbol = partial.symbol
    for other in (*problem.values, *problem.constants):
        if other != symbol and same(answer, sympy.diff(problem.loss, problem.symbol(other))):
            return "other_symbol", None, other
    return None, None, ""


def _agrees(
    a: sympy.Expr, b: sympy.Expr, points: list[dict[str, float]], domain: sympy.Expr
) -> bool:
    """Return whether a and b agree at enough of ``points`` and differ at none."""
    agreed = 0
    for point in points:
        verdict = _compare_at(a, b, point, domain)
        if isinstance(verdict, Counterexample):
            return False
        agreed += verdict is True
        if agreed >= POINTS_NEEDED:
            return True
    return agreed > 0


def chain_factors(partial: Partial) -> list[sympy.Expr]:
    """Return the inner derivative of every chain rule in the derivation, outermost first."""
    s = make_symbol(partial.symbol)
    factors = []
    for step in preorder(partial.steps):
        if step.rule != "chain":
            continue
        for inner in step.after.atoms(sympy.Derivative):
            factor = tidy(sympy.diff(inner.expr, s))
            if factor not in (0, 1) and factor not in factors:
                factors.append(factor)
    return factors


def constant_ratio(
    answer: sympy.Expr, expected: sympy.Expr, points: list[dict[str, float]], domain: sympy.Expr
) -> sympy.Expr | None:
    """Return c when answer = c·expected at every usable point for a constant c ≠ ±1, else None."""
    ratios = []
    for point in points:
        where, e, a = (_float(x, point) for x in (domain, expected, answer))
        if where is None or e is None or a is None or abs(e) < 1e-9:
            continue
        ratios.append(a / e)
        if len(ratios) >= POINTS_NEEDED:
            break
    if len(ratios) < 3 or not all(_close(r, ratios[0], 1e-9, 0.0) for r in ratios):
        return None
    ratio = ratios[0]
    if ratio == 0 or _close(abs(ratio), 1.0, 1e-9, 0.0):
        return None
    simple = Fraction(ratio).limit_denominator(1000)
    if _close(float(simple), ratio, 1e-9, 0.0):
        return sympy.Rational(simple.numerator, simple.denominator)
    return sympy.Float(ratio, 6)


# -- judging a number -------------------------------------------------------------------


def tolerance(value: float, decimals: int, dtype: str) -> float:
    """Return how far a number may be from ``value`` and still be right to ``decimals``.

    Half a unit in the last decimal asked for (0.005 for 2 decimals), plus the
    rounding of ``value`` itself in the problem's dtype (a float32 value near
    10⁵ is only known to about 0.004).

    >>> tolerance(0.77, 2, "float64")
    0.005000000000000171
    """
    unit = 2.0**-24 if dtype == "float32" else 2.0**-53
    return 0.5 * 10.0**-decimals + 2 * unit * abs(value)


def check_number(question: Question, text: str, decimals: int, dtype: str) -> Judgement:
    """Return the verdict on a number typed for an update question; raise ExpressionError.

    It is right when within :func:`tolerance` of the tutor's value (TensorFlow's)
    or of SymPy's exact one; a wrong number whose negation is right is a sign error.
    """
    answer = read_number(text)
    targets = [question.expected, question.alternative]
    targets = [t for t in targets if math.isfinite(t)]

    def near(number: float) -> bool:
        return any(abs(number - t) <= tolerance(t, decimals, dtype) for t in targets)

    if near(answer):
        return Judgement("correct", answer, question.expected)
    mistake = None
    if question.quantity == "gradient" and near(-answer):
        mistake = "sign"
    elif question.quantity == "updated":
        stepped_up = question.values[question.symbol] + question.rate * question.gradient
        if abs(answer - stepped_up) <= tolerance(stepped_up, decimals, dtype):
            mistake = "sign"
    return Judgement("wrong", answer, question.expected, mistake)


# -- hints -----------------------------------------------------------------------------


def preorder(steps: tuple[Step, ...]) -> list[Step]:
    """Return every step of a step tree, each before its substeps."""
    out: list[Step] = []
    for step in steps:
        out.append(step)
        out.extend(preorder(step.substeps))
    return out


def hint_steps(partial: Partial) -> list[Step]:
    """Return the steps hints walk through: the rule tree in order, each rule once."""
    return [s for s in preorder(partial.steps) if s.rule != "mean over rows"] or preorder(
        partial.steps
    )


# -- questions and the session --------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One thing the student is asked.

    ``kind`` is ``"derivative"`` (∂L/∂symbol as an expression) or ``"update"``;
    an update question asks for a ``quantity``, ``"gradient"`` or ``"updated"``,
    at the update ``step`` from the tutor's ``values`` before it; ``expected``
    is the tutor's (TensorFlow's) number, ``alternative`` SymPy's exact one.
    """

    kind: str
    symbol: str
    step: int | None = None
    quantity: str | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    expected: float = math.nan
    alternative: float = math.nan
    rate: float = math.nan
    gradient: float = math.nan


@dataclass(frozen=True)
class Item:
    """The record of one question: every answer and verdict, and the hints taken.

    ``hints`` counts every ``hint``, ``step`` and ``show``; ``first_hints`` is
    how many were taken before the first answer. ``revealed`` is how far
    ``step`` has shown the derivation, ``hinted`` how far ``hint`` has named it.
    """

    question: Question
    answers: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    mistakes: tuple[str | None, ...] = ()
    hints: int = 0
    first_hints: int = 0
    hinted: int = 0
    revealed: int = 0

    @property
    def solved(self) -> bool:
        """Whether an answer has been accepted."""
        return bool(self.verdicts) and self.verdicts[-1] in ("correct", "unsimplified")

    @property
    def right_first_time(self) -> bool:
        """Whether the first answer was accepted, with no hint before it."""
        return bool(self.verdicts) and self.verdicts[0] != "wrong" and self.first_hints == 0


@dataclass(frozen=True)
class Reply:
    """What the tutor says to one line typed: a judgement, a reveal, or a refusal.

    ``kind`` is ``"judged"``, ``"refused"`` (unreadable; ``message`` says
    why), ``"hint"``, ``"step"``, ``"show"`` (``steps`` revealed), ``"help"``
    or ``"empty"``.
    """

    kind: str
    judgement: Judgement | None = None
    message: str = ""
    steps: tuple[Step, ...] = ()


def derivative_questions(derivation: Derivation) -> list[Question]:
    """Return one question per partial of the derivation: ∂L/∂s as an expression."""
    return [Question("derivative", p.symbol) for p in derivation.partials]


def update_questions(traj: Trajectory) -> list[Question]:
    """Return, for each update of ``traj``, the gradient and the updated value of each symbol.

    Questions stop before the first update with a number that is not finite:
    no typed number could match it.
    """
    questions = []
    for update in traj.updates:
        numbers = [*update.values.values(), *update.autodiff.values(), *update.updated.values()]
        if not all(math.isfinite(v) for v in numbers):
            break
        values = {**traj.problem.constants, **update.values}
        for symbol in traj.problem.wrt:
            common: dict[str, Any] = {
                "kind": "update",
                "symbol": symbol,
                "step": update.step,
                "values": values,
                "rate": traj.learning_rate,
                "gradient": update.autodiff[symbol],
            }
            questions.append(
                Question(
                    quantity="gradient",
                    expected=update.autodiff[symbol],
                    alternative=update.symbolic[symbol],
                    **common,
                )
            )
            exact = update.values[symbol] - traj.learning_rate * update.autodiff[symbol]
            questions.append(
                Question(
                    quantity="updated", expected=update.updated[symbol], alternative=exact, **common
                )
            )
    return questions


def respond(item: Item, text: str, derivation: Derivation) -> tuple[Item, Reply]:
    """Return the item after the line ``text`` was typed, and the tutor's reply to it."""
    line = text.strip()
    command = line.lower()
    if not line:
        return item, Reply("empty")
    if command == "help":
        return item, Reply("help")
    if command in COMMANDS:
        return _reveal(item, command, derivation)
    question = item.question
    problem = derivation.problem
    try:
        if question.kind == "derivative":
            judgement = check_answer(derivation, question.symbol, line)
        else:
            judgement = check_number(question, line, problem.practice_decimals, problem.dtype)
    except ExpressionError as exc:
        return item, Reply("refused", message=exc.message)
    first = not item.answers
    item = dataclasses.replace(
        item,
        answers=(*item.answers, line),
        verdicts=(*item.verdicts, judgement.verdict),
        mistakes=(*item.mistakes, judgement.mistake),
        first_hints=item.hints if first else item.first_hints,
    )
    return item, Reply("judged", judgement)


def _reveal(item: Item, command: str, derivation: Derivation) -> tuple[Item, Reply]:
    """Return the item with one more hint counted, and the steps the command reveals."""
    question = item.question
    item = dataclasses.replace(item, hints=item.hints + 1)
    if question.kind != "derivative":
        return item, Reply(command)
    steps = hint_steps(derivation.partial(question.symbol))
    if command == "show":
        return dataclasses.replace(item, revealed=len(steps), hinted=len(steps)), Reply(
            "show", steps=tuple(steps)
        )
    if command == "step":
        k = min(item.revealed, len(steps) - 1)
        item = dataclasses.replace(item, revealed=k + 1, hinted=max(item.hinted, k + 1))
        return item, Reply("step", steps=(steps[k],))
    k = min(max(item.hinted, item.revealed), len(steps) - 1)
    return dataclasses.replace(item, hinted=k + 1), Reply("hint", steps=(steps[k],))


@dataclass(frozen=True)
class Score:
    """The practice summary: items asked and right first time, hints, mistakes by kind."""

    items: int
    answered: int
    right_first_time: int
    hints: int
    mistakes: Mapping[str, int]


def score(items: Sequence[Item]) -> Score:
    """Return the summary of a session's items (mistakes of every attempt, by kind)."""
    mistakes: dict[str, int] = {}
    for item in items:
        for verdict, mistake in zip(item.verdicts, item.mistakes, strict=True):
            if verdict == "wrong":
                key = mistake or "other"
                mistakes[key] = mistakes.get(key, 0) + 1
    return Score(
        items=len(items),
        answered=sum(1 for i in items if i.answers),
        right_first_time=sum(1 for i in items if i.right_first_time),
        hints=sum(i.hints for i in items),
        mistakes=mistakes,
    )
