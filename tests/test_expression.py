"""The loss parser: what it accepts, and a hostile corpus it refuses without running anything."""

from __future__ import annotations

import builtins
import contextlib
import gc
import operator
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sympy
from hypothesis import given, settings
from strategies import PARSER_SYMBOLS, loss_sources, loss_texts, python_expressions

from tutor import ExpressionError, ProblemError, loads
from tutor._timeout import within_time_limit
from tutor.expression import (
    MAX_DEGREE,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_ROOTS,
    make_symbol,
    names,
    parse,
    to_real_sympy,
    to_sympy,
)

SYMBOLS = set(PARSER_SYMBOLS)
MARKER = "MARKER"

w, x, y = (make_symbol(n) for n in ("w", "x", "y"))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working directory that must stay empty: every attack tries to write MARKER into it."""
    folder = tmp_path_factory.mktemp("sandbox")
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(before)


@pytest.fixture
def no_eval(monkeypatch):
    """Make eval and exec fail loudly, so a parser that called them could not pass."""

    def refuse(*args, **kwargs):
        raise AssertionError("eval or exec was called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)


def _outcome(text: str) -> sympy.Expr | ExpressionError:
    """Return the loss SymPy builds from ``text``, or the ExpressionError; others escape."""
    try:
        return to_real_sympy(parse(text, SYMBOLS), text)
    except ExpressionError as exc:
        return exc


VALID = {
    "the notebook's loss": ("(w*x - y)**2", (w * x - y) ** 2),
    "decimals are exact": ("0.1*w", w / 10),
    "e-notation is exact": ("1e-3*w", w / 1000),
    "underscores in numbers": ("1_000*w", 1000 * w),
    "unary minus and plus": ("-w + +x", x - w),
    "constants": ("pi*w + E", sympy.pi * w + sympy.E),
    "a square root as a power": ("w**0.5", sympy.sqrt(w)),
    "a simple fractional power": ("w**(1/3)", w ** sympy.Rational(1, 3)),
    "the largest exponent": (f"w**{MAX_EXPONENT}", w**MAX_EXPONENT),
    "a negative exponent": ("w**-2", w**-2),
    "a symbolic exponent": ("w**x", w**x),
    "a trailing comment": ("w*x  # the product", w * x),
    "nested functions": ("exp(exp(exp(w)))", sympy.exp(sympy.exp(sympy.exp(w)))),
    "max of two": ("max(0, 1 - y*w*x)", sympy.Max(0, 1 - y * w * x)),
    "a constant with a log": ("log(2)*w", sympy.log(2) * w),
}


@pytest.mark.parametrize("text, expected", VALID.values(), ids=VALID.keys())
def test_valid_losses_parse_to_the_expected_sympy(text, expected):
    assert to_real_sympy(parse(text, SYMBOLS)) == expected


def test_names_lists_the_symbols_not_the_constants():
    assert names(parse("w*x + pi + E + exp(y)", SYMBOLS)) == {"w", "x", "y"}


#: Each hostile text, and words its refusal must contain (what was refused, or how to fix it).
HOSTILE = {
    # Code execution
    "import os": ("__import__('os').system('touch MARKER')", "attribute access"),
    "import call": ("__import__('os')", "'__import__', which is not a function"),
    "subclasses walk": ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    "class of a symbol": ("w.__class__", "attribute access"),
    "eval": ('eval(\'__import__("os").system("touch MARKER")\')', "'eval'"),
    "exec": ('exec(\'open("MARKER", "w")\')', "'exec'"),
    "open": ("open('MARKER', 'w')", "'open'"),
    "compile": ("compile('1', 'f', 'eval')", "'compile'"),
    "getattr": ("getattr(w, '__class__')", "'getattr'"),
    "globals": ("globals()", "'globals'"),
    "lambda": ("(lambda: __import__('os').system('touch MARKER'))()", "lambda"),
    "list comprehension": ("[w for w in x]", "comprehension"),
    "generator": ("sum(w for w in x)", "'sum'"),
    "set comprehension": ("{w for w in x}", "comprehension"),
    "dict comprehension": ("{w: x for w in y}", "comprehension"),
    "f-string": ('f\'{__import__("os").system("touch MARKER")}\'', "f-string"),
    "walrus": ("(w := 3)", "assignment expression"),
    "conditional": ("w if x else y", "conditional expression"),
    "comparison": ("w < x", "comparison"),
    "and/or": ("w and x", "'and' / 'or'"),
    "not": ("not w", "'not'"),
    "invert": ("~w", "'~'"),
    "string": ("'MARKER'", "a string"),
    "bytes": ("b'MARKER'", "a string"),
    "keyword argument": ("exp(x=w)", "positional arguments only"),
    "keyword splat": ("exp(**w)", "positional arguments only"),
    "starred argument": ("max(*w)", "starred"),
    "subscript": ("w[0]", "subscript"),
    "slice": ("w[0:1]", "subscript"),
    "attribute of a module": ("np.exp(w)", "by its name alone"),
    "tuple": ("(w, x)", "tuple"),
    "list": ("[w, x]", "list"),
    "dict": ("{w: x}", "dict"),
    "set": ("{w, x}", "set"),
    "yield": ("(yield w)", "yield"),
    "await": ("await w", "await"),
    "statement": ("import os", "not a valid expression"),
    "two statements": ("w; __import__('os')", "not a valid expression"),
    "ellipsis": ("...", "Ellipsis"),
    "None": ("None", "None"),
    "boolean": ("True*w", "True"),
    "complex number": ("2j*w", "complex"),
    "unknown name": ("w*z", "'z', which has no value"),
    "function as a name": ("exp*w", "'exp' is a function"),
    "symbol as a function": ("w(x + 1)", "'w*(x + 1)'"),
    "null byte": ("w\x00", "control character"),
    "escape byte": ("w\x1b[31m", "control character"),
    # Resource exhaustion
    "tower 9**9**9": ("9**9**9", "stacks numeric powers"),
    "tower 10**10**10": ("10**10**10", "stacks numeric powers"),
    "tower in a symbol": ("w**w**w", "stacks powers"),
    "huge exponent": ("w**100000000", "larger than the limit"),
    "huge negative exponent": ("w**-65", "larger than the limit"),
    "power of a power": ("(w**60)**60", f"the limit is {MAX_DEGREE}"),
    "product of powers": ("(w + 1)**40*(w + 2)**40", "to the power 80"),
    "quotient of powers": ("(w + 1)**40/(w + 2)**40", "to the power 80"),
    "weird rational exponent": ("w**(333/1000) + w", "333/1000"),
    "decimal exponent": ("w**0.333333", "333333/1000000"),
    "many roots": ("w**(1/7) + w**(1/11) + w**(1/13)", f"the limit is {MAX_ROOTS}"),
    "huge constant power": ("(1e15**64)**64", "too large"),
    "tiny constant power": ("(1e-300*w)**20", f"{MAX_DIGITS} digits"),
    "huge literal": ("1" + "0" * 30 + "*w", "above the limit"),
    "overflowing literal": ("1e999*w", "not finite"),
    "exp overflow": ("exp(1000)*w", "too large"),
    "long text": ("w+" * 60_000 + "w", f"the limit is {MAX_LENGTH}"),
    "100k characters": ("w" * 100_000, f"the limit is {MAX_LENGTH}"),
    "deep brackets": ("(" * 500 + "w" + ")" * 500, "deeper than"),
    "deep calls": ("exp(" * 100 + "w" + ")" * 100, "deeper than"),
    "deep unary": ("-" * 1500 + "w", "the limit is 400"),
    "many nodes": ("+".join(["w*x"] * 300), "syntax nodes"),
    # Values that are not real numbers
    "division by zero": ("w/0", "divides by zero"),
    "zero to a negative power": ("w + 0**-1", "divides by zero"),
    "log of a negative": ("log(-1)*w", "no real value"),
    "sqrt of a negative": ("sqrt(-4) + w", "no real value"),
    "negative base, fractional power": ("(-8)**(1/3)*w", "not a real number"),
    "symbolic division by zero": ("w/(x - x)", "not a real, finite number"),
    "negative base, varying power": ("(-2)**w", "negative number to a power that varies"),
    "max of a number that is not real": ("max(w, sqrt(min(w, 1 - pi)))", "SymPy cannot build"),
    # Notation slips
    "caret": ("w^2", "'**'"),
    "implicit product": ("2w", "'2*w'"),
    "implicit product with a bracket": ("3(w + 1)", "'3*('"),
    "juxtaposed symbols": ("wx", "Did you mean 'w*x'?"),
    "lowercase e": ("e**w", "Did you mean 'E'"),
    "ln": ("ln(w)", "Did you mean 'log'?"),
    "capitalised Max": ("Max(w, x)", "Did you mean 'max'?"),
    "pow": ("pow(w, 2)", "'**'"),
    "modulo": ("w % x", "'%'"),
    "floor division": ("w // x", "use / for division"),
    "matrix product": ("w @ x", "'@'"),
    "wrong arity": ("exp(w, x)", "takes 1 argument"),
    "empty": ("   ", "empty"),
    "not an expression": ("w +", "not a valid expression"),
}


#: Hostile texts that are well formed and small, refused once SymPy sees their value.
REFUSED_BY_SYMPY = {"symbolic division by zero", "max of a number that is not real"}


@pytest.mark.parametrize("text, expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_losses_are_refused_cleanly(sandbox, no_eval, text, expected):
    outcome = _outcome(text)
    assert isinstance(outcome, ExpressionError), outcome
    assert expected in outcome.message
    assert list(sandbox.iterdir()) == []


def _problem_file(loss: str) -> str:
    escaped = loss.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\u0000")
    escaped = escaped.replace("\x1b", "\\u001b").replace("\n", "\\n")
    return f'title = "t"\nloss = "{escaped}"\n[values]\nw = 1.0\nx = 2.0\ny = 3.0\n' + (
        '[descent]\nwrt = ["w"]\nlearning_rate = 0.1\nsteps = 1\n'
    )


@pytest.mark.parametrize("text, expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_losses_in_a_problem_file_name_the_file_and_key(sandbox, no_eval, text, expected):
    with pytest.raises(ProblemError) as info:
        loads(_problem_file(text), source="evil.toml")
    assert str(info.value).startswith("evil.toml:2: loss: ")
    assert list(sandbox.iterdir()) == []


@pytest.mark.parametrize(
    "text", [t for k, (t, _) in HOSTILE.items() if k not in REFUSED_BY_SYMPY], ids=str
)
def test_hostile_losses_are_refused_before_sympy_builds_anything(monkeypatch, text):
    """The size, depth, digit and exponent limits act on the text and the syntax tree, so
    refusing costs time in the text's length, whatever its value would cost."""

    def build(*args, **kwargs):
        raise AssertionError("SymPy was asked to build a refused loss")

    monkeypatch.setattr("tutor.expression.to_sympy", build)
    with pytest.raises(ExpressionError):
        parse(text, SYMBOLS)


def test_the_corpus_is_large():
    assert len(HOSTILE) >= 30


@given(loss_texts())
def test_any_text_parses_or_is_refused_with_one_expression_error(sandbox, text):
    outcome = _outcome(text)
    if not isinstance(outcome, ExpressionError):
        assert {str(s) for s in outcome.free_symbols} <= SYMBOLS
    assert list(sandbox.iterdir()) == []


@settings(deadline=None)
@given(python_expressions())
def test_random_syntax_trees_parse_or_are_refused_with_one_expression_error(sandbox, text):
    outcome = _outcome(text)
    if not isinstance(outcome, ExpressionError):
        # A tree the parser accepts builds, and differentiates or is stopped by the time limit.
        with contextlib.suppress(ExpressionError):
            within_time_limit(sympy.diff, outcome, w, what="t", seconds=2)
    assert list(sandbox.iterdir()) == []


# The time limit around derivations.


def test_time_limit_returns_the_result_of_a_quick_computation():
    assert within_time_limit(operator.mul, 6, 7, what="multiplying") == 42


def _factor_derivative(loss: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    return sympy.factor(sympy.diff(loss, symbol))


def _spin() -> None:
    n = 0
    while n < 200_000:
        n += 1


class _Slow:
    def __del__(self) -> None:
        _spin()


def _churn() -> None:
    """Spend half the time in finalizers."""
    while True:
        _Slow()
        _spin()


def _count_forever() -> None:
    """Loop in Python bytecode (a C loop such as sum(range(n)) cannot be interrupted)."""
    n = 0
    while True:
        n += 1


@pytest.fixture
def no_garbage():
    """Collect garbage first, so that earlier tests' finalizers do not run in the child."""
    gc.collect()


def test_time_limit_stops_a_runaway_computation(no_garbage):
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="counting took longer than 0.2 s"):
        within_time_limit(_count_forever, what="counting", seconds=0.2)
    assert time.perf_counter() - start < 2.0


def test_time_limit_stops_sympy_factoring_a_blown_up_polynomial(no_garbage):
    # Five symbols to the 16th power: hundreds of thousands of terms once expanded.
    symbols = sympy.symbols("a b c d e", real=True)
    a, b, c, d, e = symbols
    loss = (a * b + c + d + e) ** 16 + (a * c + b + d + 2) ** 16
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="deriving"):
        within_time_limit(_factor_derivative, loss, a, what="deriving", seconds=0.5)
    assert time.perf_counter() - start < 3.0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_time_limit_holds_when_a_finalizer_swallows_the_expiry():
    """A computation that spends half its time in finalizers is stopped all the same."""
    with pytest.raises(ExpressionError, match="churning took longer than 0.1 s"):
        within_time_limit(_churn, what="churning", seconds=0.1)


@pytest.mark.slow
def test_time_limit_leaves_nothing_pending_after_many_close_calls():
    stopped = 0
    for _ in range(500):
        try:
            within_time_limit(sum, range(2000), what="summing", seconds=0.0001)
        except ExpressionError:
            stopped += 1
        # A late exception would surface in this loop, outside the time limit.
        sum(range(200))
    assert 0 <= stopped <= 500


def test_time_limit_works_outside_the_main_thread():
    errors: list[ExpressionError] = []

    def worker() -> None:
        try:
            within_time_limit(_count_forever, what="in a thread", seconds=0.2)
        except ExpressionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(errors) == 1


def test_to_sympy_keeps_numbers_exact():
    assert to_sympy(parse("0.1 + 1e-5", SYMBOLS)) == sympy.Rational(1, 10) + sympy.Rational(
        1, 100000
    )


@settings(deadline=None)
@given(loss_sources())
def test_random_losses_build_and_differentiate_within_the_time_limit_or_are_refused(text):
    outcome = _outcome(text)
    if not isinstance(outcome, ExpressionError):
        derivative = within_time_limit(sympy.diff, outcome, w, what="deriving", seconds=2)
        assert not derivative.has(sympy.Derivative)


@pytest.mark.slow
def test_a_derivation_stopped_at_its_limit_leaves_nothing_behind():
    """Twenty times: a derivation is stopped, then a Hypothesis search runs in this process.

    The stopped computation ran in a child process, so nothing of it can surface
    later in this one: every search finishes, and finds what it should.
    """
    a, b, c, d, e = sympy.symbols("a b c d e", real=True)
    loss = (a * b + c + d + e) ** 16 + (a * c + b + d + 2) ** 16

    @settings(max_examples=20, database=None)
    @given(loss_sources(max_leaves=4))
    def search(text):
        outcome = _outcome(text)
        if not isinstance(outcome, ExpressionError):
            assert not sympy.diff(outcome, w).has(sympy.Derivative)

    for _ in range(20):
        with pytest.raises(ExpressionError, match="took longer than 0.1 s"):
            within_time_limit(_factor_derivative, loss, a, what="deriving", seconds=0.1)
        search()
        assert threading.active_count() == 1 or "tensorflow" in sys.modules


_WHILE_IMPORTING = """
import threading, sympy
from tutor._timeout import within_time_limit, fork_is_safe
from tutor.errors import ExpressionError

a, b, c = sympy.symbols("a b c")
importer = threading.Thread(target=lambda: __import__("tensorflow"))
importer.start()
assert not fork_is_safe()
try:
    big = (a*b + c + 1)**40 * (a + b*c)**40
    within_time_limit(sympy.expand, big, what="expanding", seconds=0.5)
except ExpressionError as exc:
    print(exc)
print("still importing:", importer.is_alive())
w = sympy.Symbol("w")
print(within_time_limit(sympy.diff, w**3, w, what="deriving"))
importer.join()
"""


@pytest.mark.slow
def test_the_limit_fires_while_tensorflow_is_being_imported_in_another_thread():
    out = subprocess.run(
        [sys.executable, "-c", _WHILE_IMPORTING], capture_output=True, text=True, timeout=120
    )
    lines = out.stdout.splitlines()
    assert lines[0] == "expanding took longer than 0.5 s and was stopped; the loss is too " + (
        "complex for the tutor: use fewer terms or smaller powers"
    ), out.stderr
    assert lines[1:] == ["still importing: True", "3*w**2"]


@pytest.mark.slow
def test_a_script_that_uses_the_limit_from_a_second_thread_runs_once(tmp_path):
    """With another thread running the child comes from the fork server, which must not run
    the user's script again (a script without a __main__ guard would repeat itself)."""
    script = tmp_path / "fit.py"
    script.write_text(
        "import threading, tutor\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "print('ran')\n"
        "print(tutor.derive(tutor.load('seed-w')).partial('w').result)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.stdout == "ran\n2*x*(w*x - y)\n", out.stderr


def test_a_result_comes_back_from_the_time_limit_exactly_as_it_was_computed():
    """SymPy re-evaluates an expression rebuilt from a pickle: 2*(b + w*x - y) would come
    back as 2*b + 2*w*x - 2*y, changing every derivation that went through the child."""
    b, w, x, y = sympy.symbols("b w x y")
    expanded = 2 * b + 2 * w * x - 2 * y
    factored = sympy.factor(expanded)
    assert isinstance(factored, sympy.Mul) and factored.args[0] == 2
    back = within_time_limit(sympy.factor, expanded, what="factoring")
    assert sympy.srepr(back) == sympy.srepr(factored)


def _nested_multiply(a: int, b: int) -> int:
    return within_time_limit(operator.mul, a, b, what="multiplying inside")


def test_a_time_limit_inside_a_time_limit_computes_in_the_outer_child():
    """A daemonic child may not start children: an inner limit runs within the outer one."""
    assert within_time_limit(_nested_multiply, 6, 7, what="multiplying outside") == 42
