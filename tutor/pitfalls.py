"""The GradientTape pitfall lab: each classic ``None`` (or NaN, or error), run live and fixed.

Each pitfall is applied to a problem's loss (the seed's by default): the
broken code in the notebook's style, what TensorFlow really returns, raises
or warns when that code runs now, what SymPy says the gradient is, why they
differ, the fix, and the fixed code's result beside SymPy's.

The code a student reads and the code that runs live are made from the same
parts: the printed loss is :func:`tutor.render.code.expression` of the
problem's parsed tree, and the live loss is :func:`tutor.autodiff.build_loss`
of that tree, with the problem's validated symbol names. Nothing is
evaluated from text. Each printed script ends in ``print("label =", value)``
lines, and a live run records ``label`` and ``str(value)``, so a script's
output and the live record can be compared line for line.

The catalogue (:data:`PITFALLS`) needs neither TensorFlow nor SymPy;
:func:`run` imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .errors import UsageError
from .expression import Binary, Call, Name, Node, Num, Unary
from .model import Problem

#: The problem a pitfall is applied to by default, and whenever it cannot use the given one.
SEED_PROBLEM = "seed-w"


@dataclass(frozen=True)
class Pitfall:
    """One entry of the catalogue: its name (the command-line argument), title and summary."""

    name: str
    title: str
    summary: str


PITFALLS: tuple[Pitfall, ...] = (
    Pitfall(
        "unwatched-tensor",
        "An unwatched tensor",
        "a plain tensor is not watched: tape.gradient returns None",
    ),
    Pitfall(
        "integer-dtype",
        "An integer dtype",
        "an integer tensor is watched with a warning, and its gradient is None",
    ),
    Pitfall(
        "reassigned-variable",
        "A Variable reassigned with w = w - lr*g",
        "the update turns the Variable into a Tensor: the next step's gradient is None",
    ),
    Pitfall(
        "numpy-inside-tape",
        "NumPy inside the tape",
        "a value taken out with .numpy() leaves the tape: the gradient is None",
    ),
    Pitfall(
        "non-persistent-tape",
        "A non-persistent tape used twice",
        "a second tape.gradient call on the same tape raises RuntimeError",
    ),
    Pitfall(
        "gradient-outside-outer-tape",
        "gradient called outside the outer tape (second derivatives)",
        "the first derivative taken after the outer block closes: the second derivative is None",
    ),
    Pitfall(
        "non-scalar-target",
        "A non-scalar target",
        "the gradient of a vector of losses is the gradient of their sum, not of their mean",
    ),
    Pitfall(
        "unconnected-source",
        "An unconnected source",
        "a source the loss does not use gets None, not 0, unless UnconnectedGradients.ZERO",
    ),
    Pitfall(
        "non-differentiable-op",
        "A non-differentiable op: round, cast to int",
        "round and a cast to an integer have no gradient: None",
    ),
    Pitfall(
        "mixed-dtypes",
        "float32 meeting float64",
        "a float32 tensor times a float64 one raises InvalidArgumentError",
    ),
    Pitfall(
        "sqrt-at-zero",
        "sqrt at 0 (and abs at 0)",
        "the square root of a zero loss has the gradient NaN; abs at 0 gives the subgradient 0",
    ),
)

#: The pitfalls by name.
BY_NAME: dict[str, Pitfall] = {p.name: p for p in PITFALLS}


def find(name: str) -> Pitfall:
    """Return the pitfall called ``name``, or raise a :class:`UsageError` that suggests one.

    >>> find("integer-dtype").title
    'An integer dtype'
    """
    if name in BY_NAME:
        return BY_NAME[name]
    close = difflib.get_close_matches(name, list(BY_NAME), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UsageError(
        f"pitfalls: there is no pitfall '{name}'.{hint} "
        f"'tutor pitfalls' lists them ({len(PITFALLS)})."
    )


# ---------------------------------------------------------------------------------------
# What a run records.


@dataclass(frozen=True)
class Result:
    """One printed value: ``label = shown``; ``value`` is its number (None for ``None``)."""

    label: str
    shown: str
    value: float | tuple[float, ...] | None


@dataclass(frozen=True)
class Outcome:
    """What running one script did: the values it printed, the error it raised, TF's warnings."""

    results: tuple[Result, ...]
    error: str = ""
    warnings: tuple[str, ...] = ()

    def result(self, label: str) -> Result | None:
        """Return the result printed as ``label``, if the script got that far."""
        for r in self.results:
            if r.label == label:
                return r
        return None

    def lines(self) -> list[str]:
        """Return the lines the script prints on standard output, as Python prints them."""
        return [f"{r.label} = {r.shown}" for r in self.results]


@dataclass(frozen=True)
class Expected:
    """What SymPy says a printed value should be.

    ``value`` is None where SymPy's gradient is not defined (or is not a
    number); ``text`` says what the value is, in words and symbols.
    """

    label: str
    value: float | None
    text: str


@dataclass(frozen=True)
class Agreement:
    """A fixed result beside SymPy's: their difference and the rounding bound it must meet."""

    label: str
    autodiff: float | None
    symbolic: float | None
    difference: float | None
    bound: float | None
    agrees: bool


@dataclass(frozen=True)
class Lab:
    """One pitfall applied to one problem, run live: the broken and the fixed code and results."""

    pitfall: Pitfall
    problem: Problem
    note: str
    point: Mapping[str, float]
    broken_code: str
    broken: Outcome
    expected: tuple[Expected, ...]
    why: str
    fix: str
    fixed_code: str
    fixed: Outcome
    agreement: tuple[Agreement, ...]

    @property
    def agrees(self) -> bool:
        """Whether every fixed result with a defined SymPy value agrees with it."""
        return all(a.agrees for a in self.agreement)


# ---------------------------------------------------------------------------------------
# Live runs: a recorder the live code prints to, and TensorFlow's warnings captured.


class _Recorder:
    """Collects ``print("label =", value)`` of a live run as :class:`Result` objects."""

    def __init__(self) -> None:
        self.results: list[Result] = []

    def show(self, label: str, value: Any) -> None:
        self.results.append(Result(label, str(value), _number(value)))


def _number(value: Any) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    array = value.numpy() if hasattr(value, "numpy") else value
    if getattr(array, "ndim", 0):
        return tuple(float(v) for v in array.reshape(-1))
    return float(array)


class _Capture(logging.Handler):
    """Keeps the messages of TensorFlow's Python logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tensorflow_warnings(tf: Any) -> Iterator[list[str]]:
    """Collect TensorFlow's warnings (its logger and Python's ``warnings``) while running.

    The tutor keeps TF's logger at ERROR; here it listens at WARNING. TF logs
    some warnings (an integer tensor watched) only the first five times in a
    process: the count is set aside during the run and put back after it, so
    every run shows TF's warning and the process's count is left unchanged.
    """
    found: list[str] = []
    logger = tf.get_logger()
    handler = _Capture()
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    counts = _log_counts()
    saved = dict(counts) if counts is not None else None
    # Only here, not also on standard error: the lab shows them in its output.
    for other in handlers:
        logger.removeHandler(other)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if counts is not None:
        counts.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield found
        found.extend(handler.messages)
        found.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        for other in handlers:
            logger.addHandler(other)
        logger.setLevel(level)
        logger.propagate = propagate
        if counts is not None and saved is not None:
            counts.clear()
            counts.update(saved)


def _log_counts() -> dict[Any, int] | None:
    """TF's count of messages logged with ``log_first_n`` (None if TF no longer keeps one)."""
    try:
        from tensorflow.python.platform import tf_logging
    except ImportError:  # pragma: no cover - a TensorFlow without the module
        return None
    counts = getattr(tf_logging, "_log_counter_per_token", None)
    return counts if isinstance(counts, dict) else None


def _execute(live: Callable[[Any, _Recorder], None]) -> Outcome:
    """Run ``live`` with TensorFlow; return what it printed, raised and warned."""
    from .autodiff import tensorflow

    tf = tensorflow()
    recorder = _Recorder()
    error = ""
    with _tensorflow_warnings(tf) as found:
        try:
            live(tf, recorder)
        except Exception as exc:  # the pitfall itself: shown, not raised
            error = f"{type(exc).__name__}: {_one_line(str(exc))}"
    return Outcome(tuple(recorder.results), error, tuple(dict.fromkeys(found)))


def _one_line(message: str) -> str:
    text = " ".join(message.split())
    return text.removesuffix(" name:").strip()


# ---------------------------------------------------------------------------------------
# The setting a pitfall works in: the problem, its first wrt symbol, its point.


class _NotApplicable(Exception):
    """The problem's loss lacks what the pitfall needs (the message says what)."""


@dataclass(frozen=True)
class _Setting:
    problem: Problem
    w: str
    point: dict[str, float]
    dtype: str = "float32"

    @property
    def others(self) -> list[str]:
        """The valued symbols other than ``w``, in the file's order."""
        return [n for n in self.point if n != self.w]

    def fresh(self, stem: str) -> str:
        """Return a variable name from ``stem`` that no symbol of the problem uses."""
        taken = {*self.point, *self.problem.data, "tf", "tape", "loss", "math", "huber"}
        name = stem
        while name in taken:
            name += "_"
        return name


#: Names the printed code uses for itself; a problem symbol with one of them would clash.
_RESERVED = frozenset(
    {"tf", "math", "huber", "print", "range", "tape", "outer", "inner", "step", "loss"}
    | {"losses", "loss_round", "loss_cast", "positive", "safe", "root", "distance"}
    | {"root_gradient"}
)
_RESERVED_PREFIXES = ("grad_", "d2loss_", "rounded_")


def _setting(problem: Problem) -> _Setting:
    names = {*problem.values, *problem.constants, *problem.data}
    clash = sorted(n for n in names if n in _RESERVED or n.startswith(_RESERVED_PREFIXES))
    if clash:
        raise _NotApplicable(
            f"names a symbol {clash[0]!r}, a name the printed code uses for itself"
        )
    point = {**problem.constants, **problem.values}
    return _Setting(problem, problem.wrt[0], point, problem.dtype)


def _tf_dtype(tf: Any, dtype: str) -> Any:
    return tf.float64 if dtype == "float64" else tf.float32


def _dtype_arg(dtype: str) -> str:
    return "" if dtype == "float32" else ", dtype=tf.float64"


def _literal(value: float) -> str:
    return repr(float(value))


# --- code text ---------------------------------------------------------------------------


def _header(s: _Setting, tree: Node | None = None) -> list[str]:
    """The imports a script needs (``math`` for pi and e, a huber helper)."""
    from .render.code import _HUBER, _uses

    tree = tree or s.problem.tree
    imports = "import math\n\n" if _uses(tree, "pi") or _uses(tree, "E") else ""
    lines = [f"{imports}import tensorflow as tf"]
    if _uses(tree, "huber"):
        lines.append(_HUBER.rstrip("\n"))
    return [*lines, ""]


def _definitions(
    s: _Setting,
    values: Mapping[str, float | int],
    dtype: Mapping[str, str] | None = None,
    make: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per data column and valued symbol, as the notebook's cell 5 writes them."""
    dtype = dtype or {}
    make = make or {}
    lines = []
    for name, column in s.problem.data.items():
        lines.append(
            f"{name} = tf.constant({list(column)!r}{_dtype_arg(dtype.get(name, s.dtype))})"
        )
    for name, value in values.items():
        text = repr(value) if isinstance(value, int) else _literal(value)
        kind = make.get(name, "tf.convert_to_tensor")
        lines.append(f"{name} = {kind}({text}{_dtype_arg(dtype.get(name, s.dtype))})")
    return lines


def _loss_text(s: _Setting, tree: Node | None = None, mean: bool = True) -> str:
    from .render.code import expression

    text = expression(tree or s.problem.tree)
    return f"tf.reduce_mean({text})" if s.problem.data and mean else text


def _prints(*labels: tuple[str, str], indent: str = "") -> list[str]:
    return [f'{indent}print("{label} =", {variable})' for label, variable in labels]


def _script(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


# --- live counterparts -------------------------------------------------------------------


def _env(
    tf: Any,
    s: _Setting,
    values: Mapping[str, float | int],
    dtype: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The tensors :func:`_definitions` makes, made live."""
    import numpy as np

    dtype = dtype or {}
    env: dict[str, Any] = {}
    for name, column in s.problem.data.items():
        env[name] = tf.constant(list(column), dtype=_tf_dtype(tf, dtype.get(name, s.dtype)))
    for name, value in values.items():
        if isinstance(value, int):
            env[name] = tf.convert_to_tensor(value)
        else:
            kind = dtype.get(name, s.dtype)
            env[name] = tf.convert_to_tensor(np.array(value, dtype=kind), dtype=_tf_dtype(tf, kind))
    return env


def _live_loss(tf: Any, s: _Setting, env: Mapping[str, Any], tree: Node | None = None) -> Any:
    from .autodiff import build_loss

    value = build_loss(tree or s.problem.tree, env, _dtype_of(tf, env, s))
    return tf.reduce_mean(value) if s.problem.data else value


def _dtype_of(tf: Any, env: Mapping[str, Any], s: _Setting) -> Any:
    """The dtype the loss's number literals take: that of the first floating tensor."""
    for value in env.values():
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.is_floating:
            return dtype
    return _tf_dtype(tf, s.dtype)


def _rename(tree: Node, old: str, new: str) -> Node:
    """Return ``tree`` with the symbol ``old`` written as ``new``."""
    if isinstance(tree, Name):
        return Name(new) if tree.id == old else tree
    if isinstance(tree, Unary):
        return Unary(tree.op, _rename(tree.operand, old, new))
    if isinstance(tree, Binary):
        return Binary(tree.op, _rename(tree.left, old, new), _rename(tree.right, old, new))
    if isinstance(tree, Call):
        return Call(tree.func, tuple(_rename(a, old, new) for a in tree.args))
    return tree


# ---------------------------------------------------------------------------------------
# SymPy's side: the gradient at a point, exactly, and the bound a fixed result must meet.


def _exact_point(point: Mapping[str, float]) -> dict[Any, Any]:
    import sympy

    from .expression import make_symbol

    return {make_symbol(n): sympy.Rational(Fraction(v)) for n, v in point.items()}


def _symbolic(expr: Any, point: Mapping[str, float]) -> float | None:
    """Return ``expr`` at ``point`` evaluated in high precision; None when not a real number."""

    value = expr.subs(_exact_point(point)).evalf(40)
    if not value.is_real or not value.is_finite:
        return None
    return float(value)


def _gradient_expr(
    problem: Problem, name: str, data: Mapping[str, Sequence[float]] | None = None
) -> Any:
    """∂L/∂name as SymPy writes it (unsimplified), the mean over the data rows if any."""
    import sympy

    from .expression import make_symbol

    data = problem.data if data is None else data
    partial = sympy.diff(problem.loss, make_symbol(name))
    if not data:
        return partial
    rows = len(next(iter(data.values())))
    terms = [
        partial.subs({make_symbol(k): sympy.Rational(Fraction(v[i])) for k, v in data.items()})
        for i in range(rows)
    ]
    return sympy.Add(*terms) / rows


def _problem_bound(problem: Problem, name: str, point: Mapping[str, float], dtype: str) -> float:
    """The forward error bound TF's gradient of ``problem`` meets (:mod:`tutor.tolerance`)."""
    import numpy as np

    from .tolerance import analyse

    values = {k: np.array([v]) for k, v in point.items() if k not in problem.constants}
    assessment = analyse(problem, name, dtype).assess(values)
    return float(assessment.tolerance[0])


def _closed_form_bound(expr: Any, point: Mapping[str, float], dtype: str) -> float:
    """The forward error bound of ``expr`` evaluated in ``dtype``: γ_k·S (Higham, ch. 3).

    For values the tape computes that are not a problem's own gradient (a
    second derivative, the gradient of a square root): S and k are those of
    SymPy's unsimplified closed form, which follows the tape's operations;
    two more roundings cover the inputs held in ``dtype``.
    """
    import sympy

    from .tolerance import gamma, magnitude, precision

    # DiracDelta (the derivative of a step) is 0 wherever it has a value.
    m = magnitude(expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero))
    scale = _symbolic(m.expr, point)
    if scale is None:
        return math.inf
    return gamma(m.k + 2, precision(dtype).u) * scale


def _agreement(
    label: str,
    outcome: Outcome,
    symbolic: float | None,
    bound: float,
) -> Agreement:
    found = outcome.result(label)
    tf_value = found.value if found is not None and isinstance(found.value, float) else None
    if tf_value is None or symbolic is None:
        return Agreement(label, tf_value, symbolic, None, None, symbolic is None)
    difference = abs(tf_value - symbolic)
    return Agreement(label, tf_value, symbolic, difference, bound, difference <= bound)


# ---------------------------------------------------------------------------------------
# The pitfalls. Each returns its codes, live runs and explanation for one setting.


@dataclass(frozen=True)
class _Spec:
    point: Mapping[str, float]
    broken_code: str
    broken: Callable[[Any, _Recorder], None]
    fixed_code: str
    fixed: Callable[[Any, _Recorder], None]
    why: str
    fix: str
    expected: Callable[[Outcome], tuple[tuple[Expected, ...], tuple[Agreement, ...]]]


def _gradient_check(
    s: _Setting, label: str, name: str, point: Mapping[str, float], dtype: str | None = None
) -> Callable[[Outcome], tuple[tuple[Expected, ...], tuple[Agreement, ...]]]:
    """Expect SymPy's ∂L/∂name at ``point`` for ``label``, within the problem's own bound."""

    def check(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        expr = _gradient_expr(s.problem, name)
        value = _symbolic(expr, point)
        bound = _problem_bound(s.problem, name, point, dtype or s.dtype)
        expected = Expected(label, value, _gradient_text(s.problem, name, point, value))
        return (expected,), (_agreement(label, fixed, value, bound),)

    return check


def _gradient_text(
    problem: Problem, name: str, point: Mapping[str, float], value: float | None
) -> str:
    """``∂L/∂w = 2x(wx − y) = 2·3·(1·3 − 6) = −18``: the closed form, substituted, its value."""
    import sympy

    from ._mathtext import unicode
    from .expression import make_symbol

    closed = sympy.factor(sympy.diff(problem.loss, make_symbol(name)))
    if problem.data:
        return f"∂L/∂{name} = mean over rows of {unicode(closed)} = {_pretty(value)}"
    substituted = unicode(closed, point)
    return f"∂L/∂{name} = {unicode(closed)} = {substituted} = {_pretty(value)}"


def _pretty(value: float | None) -> str:
    from ._numbers import number

    return "undefined" if value is None else number(value, 8)


def _tape_lines(
    s: _Setting, watched: Sequence[str], body: Sequence[str], opener: str = ""
) -> list[str]:
    lines = [opener or "with tf.GradientTape() as tape:"]
    lines += [f"    tape.watch({n})" for n in watched]
    return lines + [f"    {line}" for line in body]


def _unwatched_tensor(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    loss = _loss_text(s)

    def code(watch: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        lines += _tape_lines(s, [w] if watch else [], [f"loss = {loss}"])
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(watch: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as tape:
                if watch:
                    tape.watch(env[w])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"A tape records operations on the tensors it watches. A tf.Variable is watched "
            f"by itself; a tensor made with tf.convert_to_tensor is not, so nothing on the "
            f"path from {w} to the loss was recorded and the tape has no gradient to give: "
            f"None, not an error."
        ),
        fix=f"Call tape.watch({w}) inside the with block (or make {w} a tf.Variable).",
        expected=_gradient_check(s, f"grad_{w}", w, point),
    )


def _integers(s: _Setting) -> dict[str, int]:
    """The point rounded to integers (halves away from zero: 0.5 → 1)."""
    out = {}
    for name, value in s.point.items():
        out[name] = int(math.copysign(math.floor(abs(value) + 0.5), value))
    return out


def _only_integer_arithmetic(tree: Node) -> bool:
    if isinstance(tree, Num):
        return float(tree.text).is_integer() and "." not in tree.text and "e" not in tree.text
    if isinstance(tree, Name):
        return tree.id not in ("pi", "E")
    if isinstance(tree, Unary):
        return _only_integer_arithmetic(tree.operand)
    if isinstance(tree, Binary):
        return (
            tree.op != "/"
            and _only_integer_arithmetic(tree.left)
            and _only_integer_arithmetic(tree.right)
        )
    return False


def _integer_literals(tree: Node, taken: set[str]) -> tuple[Node, dict[str, int]]:
    """Return ``tree`` with each number literal a name, and the integer each name stands for."""
    literals: dict[str, int] = {}

    def walk(node: Node) -> Node:
        if isinstance(node, Num):
            name = f"_literal{len(literals)}"
            while name in taken:
                name += "_"
            literals[name] = int(float(node.text))
            return Name(name)
        if isinstance(node, Unary):
            return Unary(node.op, walk(node.operand))
        if isinstance(node, Binary):
            return Binary(node.op, walk(node.left), walk(node.right))
        return node

    return walk(tree), literals


def _integer_dtype(s: _Setting) -> _Spec:
    if s.problem.data or not _only_integer_arithmetic(s.problem.tree):
        raise _NotApplicable(
            "uses division, functions, data or non-integer numbers, which TensorFlow refuses "
            "on integer tensors before the tape is asked"
        )
    w = s.w
    ints = _integers(s)
    floats = {n: float(v) for n, v in ints.items()}
    loss = _loss_text(s)

    def code(values: Mapping[str, float | int]) -> str:
        lines = _header(s) + _definitions(s, values)
        lines += _tape_lines(s, [w], [f"loss = {loss}"])
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(values: Mapping[str, float | int]) -> Callable[[Any, _Recorder], None]:
        integer = isinstance(values[w], int)
        # build_loss makes a literal in the loss's dtype; Python's int literals in
        # the printed code meet int32 tensors as int32, so the live loss binds them so.
        tree, literals = _integer_literals(s.problem.tree, set(values)) if integer else (None, {})

        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, values)
            env.update({n: tf.constant(v) for n, v in literals.items()})
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                value = _live_loss(tf, s, env, tree)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    shown = ", ".join(f"{n} = {v}" for n, v in ints.items())
    return _Spec(
        floats,
        code(ints),
        live(ints),
        code(floats),
        live(floats),
        why=(
            f"tf.convert_to_tensor({ints[w]}) makes an int32 tensor ({shown}). Gradients are "
            f"only defined for floating-point tensors: the tape warns when it is asked to "
            f"watch an integer one, computes the loss in integers, and returns None for it."
        ),
        fix=f"Write the numbers as floats ({ints[w]}.0, or dtype=tf.float32), so {w} is float32.",
        expected=_gradient_check(s, f"grad_{w}", w, floats),
    )


def _reassigned_variable(s: _Setting) -> _Spec:
    import numpy as np

    w, point = s.w, s.point
    loss = _loss_text(s)
    rate = s.problem.learning_rate
    held = {n: v for n, v in point.items() if n != w}

    def code(assign: bool) -> str:
        lines = _header(s) + _definitions(s, held)
        lines.append(f"{w} = tf.Variable({_literal(point[w])}{_dtype_arg(s.dtype)})")
        lines.append("for step in range(2):")
        lines += ["    " + line for line in _tape_lines(s, [], [f"loss = {loss}"])]
        lines.append(f"    grad_{w} = tape.gradient(loss, {w})")
        lines.append(f'    print(f"step {{step + 1}}: grad_{w} =", grad_{w})')
        if assign:
            lines.append(f"    {w}.assign_sub({rate!r} * grad_{w})")
        else:
            lines.append(f"    {w} = {w} - {rate!r} * grad_{w}")
        return _script(lines)

    def live(assign: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, held)
            value = np.array(point[w], dtype=s.dtype)
            env[w] = tf.Variable(value, dtype=_tf_dtype(tf, s.dtype))
            for step in range(2):
                with tf.GradientTape() as tape:
                    result = _live_loss(tf, s, env)
                grad = tape.gradient(result, env[w])
                out.show(f"step {step + 1}: grad_{w}", grad)
                if assign:
                    env[w].assign_sub(rate * grad)
                else:
                    env[w] = env[w] - rate * grad

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        first = _gradient_check(s, f"step 1: grad_{w}", w, point)(fixed)
        step1 = fixed.result(f"step 1: grad_{w}")
        if step1 is None or not isinstance(step1.value, float):
            return first
        # The value the Variable holds after assign_sub, in the dtype's arithmetic.
        kind = np.dtype(s.dtype).type
        after = float(kind(point[w]) - kind(rate) * kind(step1.value))
        moved = {**point, w: after}
        second = _gradient_check(s, f"step 2: grad_{w}", w, moved)(fixed)
        return first[0] + second[0], first[1] + second[1]

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"{w} - {rate!r} * grad_{w} is a new tf.Tensor, and the name {w} now points to "
            f"it: the Variable is gone. The next tape watches no Variable and the tensor is "
            f"not watched, so the second gradient is None, and the update after it fails on "
            f"None. ({w} -= ... on a tf.Variable raises RuntimeError in TensorFlow 2.21.)"
        ),
        fix=f"Update the Variable in place: {w}.assign_sub({rate!r} * grad_{w}).",
        expected=expected,
    )


def _numpy_inside_tape(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    taken = s.fresh(f"{w}_value")
    broken_tree = _rename(s.problem.tree, w, taken)

    def code(broken: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        if broken:
            body = [f"{taken} = {w}.numpy()", f"loss = {_loss_text(s, broken_tree)}"]
        else:
            body = [f"loss = {_loss_text(s)}"]
        lines += _tape_lines(s, [w], body)
        lines += [f"grad_{w} = tape.gradient(loss, {w})"]
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(broken: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                if broken:
                    value = _live_loss(tf, s, {**env, taken: env[w].numpy()}, broken_tree)
                else:
                    value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(True),
        live(True),
        code(False),
        live(False),
        why=(
            f"{w}.numpy() copies the value out of TensorFlow into a NumPy number. The loss is "
            f"still computed (TensorFlow turns the NumPy number back into a constant), but "
            f"the tape never saw {w} reach it: the path from {w} to the loss is cut, and "
            f"the gradient is None."
        ),
        fix=(
            f"Compute the loss from {w} itself with TensorFlow operations inside the tape; "
            f"call .numpy() only afterwards, to print."
        ),
        expected=_gradient_check(s, f"grad_{w}", w, point),
    )


def _non_persistent_tape(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    second = next((n for n in s.problem.values if n != w), w)
    loss = _loss_text(s)
    watched = list(dict.fromkeys([w, second]))
    second_label = f"grad_{second}" if second != w else f"grad_{w}_again"

    def code(persistent: bool) -> str:
        opener = "with tf.GradientTape(persistent=True) as tape:" if persistent else ""
        lines = _header(s) + _definitions(s, point)
        lines += _tape_lines(s, watched, [f"loss = {loss}"], opener)
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        lines += _prints((f"grad_{w}", f"grad_{w}"))
        lines.append(f"{second_label} = tape.gradient(loss, {second})")
        lines += _prints((second_label, second_label))
        if persistent:
            lines.append("del tape")
        return _script(lines)

    def live(persistent: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape(persistent=persistent) as tape:
                for n in watched:
                    tape.watch(env[n])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))
            out.show(second_label, tape.gradient(value, env[second]))

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        a = _gradient_check(s, f"grad_{w}", w, point)(fixed)
        b = _gradient_check(s, second_label, second, point)(fixed)
        return a[0] + b[0], a[1] + b[1]

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            "A tape frees what it recorded as soon as gradient() has been called once, "
            "unless it is persistent: the second call finds nothing left and raises."
        ),
        fix=(
            f"Open the tape with tf.GradientTape(persistent=True) (and del tape when done), "
            f"or ask for both in one call: tape.gradient(loss, [{w}, {second}])."
        ),
        expected=expected,
    )


def _gradient_outside_outer(s: _Setting) -> _Spec:
    import sympy

    from .expression import make_symbol

    w, point = s.w, s.point
    loss = _loss_text(s)
    second = f"d2loss_d{w}2"
    # Where ∂L/∂w does not depend on w at all, the outer tape finds no path from
    # it to w: the fixed code asks for 0 there rather than None.
    flat = sympy.diff(_gradient_expr(s.problem, w), make_symbol(w)) == 0
    option = ", unconnected_gradients=tf.UnconnectedGradients.ZERO"

    def code(inside: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        lines += ["with tf.GradientTape() as outer:", f"    outer.watch({w})"]
        lines += ["    with tf.GradientTape() as inner:", f"        inner.watch({w})"]
        lines.append(f"        loss = {loss}")
        lines.append(f"{'    ' if inside else ''}grad_{w} = inner.gradient(loss, {w})")
        zero = option if inside and flat else ""
        lines.append(f"{second} = outer.gradient(grad_{w}, {w}{zero})")
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}"), (second, second)))

    def live(inside: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point)
            with tf.GradientTape() as outer:
                outer.watch(env[w])
                with tf.GradientTape() as inner:
                    inner.watch(env[w])
                    value = _live_loss(tf, s, env)
                if inside:
                    grad = inner.gradient(value, env[w])
            if not inside:
                grad = inner.gradient(value, env[w])
            zero = tf.UnconnectedGradients.ZERO if inside and flat else tf.UnconnectedGradients.NONE
            out.show(f"grad_{w}", grad)
            out.show(second, outer.gradient(grad, env[w], unconnected_gradients=zero))

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        first = _gradient_check(s, f"grad_{w}", w, point)(fixed)
        expr = sympy.diff(_gradient_expr(s.problem, w), make_symbol(w))
        value = _symbolic(expr, point)
        bound = _closed_form_bound(expr, point, s.dtype)
        text = f"∂²L/∂{w}² = {_pretty(value)}"
        agreement = _agreement(second, fixed, value, bound)
        return first[0] + (Expected(second, value, text),), first[1] + (agreement,)

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"For a first derivative it does not matter where inner.gradient is called. For a "
            f"second one it does: the outer tape records only while its with block is open, "
            f"so grad_{w}, computed after the block closed, is a value the outer tape never "
            f"saw, and its gradient is None."
        ),
        fix=(
            f"Call inner.gradient inside the outer tape's with block, so that the outer "
            f"tape records how grad_{w} depends on {w}."
            + (
                f" Here ∂L/∂{w} does not depend on {w}: the outer tape still finds no path, "
                f"so ask for 0 with unconnected_gradients=tf.UnconnectedGradients.ZERO."
                if flat
                else ""
            )
        ),
        expected=expected,
    )


def _batch(s: _Setting) -> tuple[str, list[float]]:
    """A symbol to make a column of three values (its value, +1, +2), and the column."""
    others = [n for n in s.others if n not in s.problem.constants]
    if not others:
        raise _NotApplicable(f"has no symbol besides {s.w} to take several values")
    name = others[0]
    return name, [s.point[name] + k for k in range(3)]


def _non_scalar_target(s: _Setting) -> _Spec:
    w = s.w
    if s.problem.data:
        batch_problem, point = s.problem, s.point
    else:
        name, column = _batch(s)
        values = {k: v for k, v in s.problem.values.items() if k != name}
        batch_problem = dataclasses.replace(
            s.problem, values=values, data={name: tuple(column)}, wrt=(w,)
        )
        point = {k: v for k, v in s.point.items() if k != name}
    b = _Setting(batch_problem, w, point, s.dtype)
    per_row = _loss_text(b, mean=False)

    def code(mean: bool) -> str:
        lines = _header(b) + _definitions(b, point)
        body = [f"losses = {per_row}"] + (["loss = tf.reduce_mean(losses)"] if mean else [])
        lines += _tape_lines(b, [w], body)
        lines.append(f"grad_{w} = tape.gradient({'loss' if mean else 'losses'}, {w})")
        return _script(lines + _prints(("losses", "losses"), (f"grad_{w}", f"grad_{w}")))

    def live(mean: bool) -> Callable[[Any, _Recorder], None]:
        from .autodiff import build_loss

        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, b, point)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                losses = build_loss(batch_problem.tree, env, _dtype_of(tf, env, b))
                if mean:
                    value = tf.reduce_mean(losses)
            out.show("losses", losses)
            out.show(f"grad_{w}", tape.gradient(value if mean else losses, env[w]))

        return run

    rows = batch_problem.rows
    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"losses holds one loss per row ({rows} of them). Asked for the gradient of a "
            f"vector, the tape returns the gradient of its sum: {rows} times the gradient of "
            f"the mean that training minimises, so the step is {rows} times too large. "
            f"(tape.jacobian gives one gradient per row.)"
        ),
        fix="Reduce to the scalar you minimise first: loss = tf.reduce_mean(losses).",
        expected=_gradient_check(b, f"grad_{w}", w, point),
    )


def _unconnected_source(s: _Setting) -> _Spec:
    import sympy

    w, point = s.w, s.point
    bias = s.fresh("b") if "b" not in s.point else s.fresh("bias")
    loss = _loss_text(s)

    def code(zero: bool) -> str:
        lines = _header(s) + _definitions(s, {**point, bias: 0.0})
        lines += _tape_lines(s, [w, bias], [f"loss = {loss}"])
        option = ", unconnected_gradients=tf.UnconnectedGradients.ZERO" if zero else ""
        lines.append(f"grad_{w}, grad_{bias} = tape.gradient(loss, [{w}, {bias}]{option})")
        return _script(
            lines + _prints((f"grad_{w}", f"grad_{w}"), (f"grad_{bias}", f"grad_{bias}"))
        )

    def live(zero: bool) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, {**point, bias: 0.0})
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                tape.watch(env[bias])
                value = _live_loss(tf, s, env)
            option = tf.UnconnectedGradients.ZERO if zero else tf.UnconnectedGradients.NONE
            grads = tape.gradient(value, [env[w], env[bias]], unconnected_gradients=option)
            out.show(f"grad_{w}", grads[0])
            out.show(f"grad_{bias}", grads[1])

        return run

    def expected(fixed: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        first = _gradient_check(s, f"grad_{w}", w, point)(fixed)
        zero = sympy.diff(s.problem.loss, sympy.Symbol(bias, real=True))
        value = float(zero)
        text = f"∂L/∂{bias} = {_pretty(value)}: the loss does not use {bias}"
        agreement = _agreement(f"grad_{bias}", fixed, value, 0.0)
        return first[0] + (Expected(f"grad_{bias}", value, text),), first[1] + (agreement,)

    return _Spec(
        point,
        code(False),
        live(False),
        code(True),
        live(True),
        why=(
            f"The loss does not use {bias}: no recorded operation connects them. TensorFlow "
            f"says so with None rather than 0, so that a source forgotten by mistake is "
            f"noticed; the derivative itself is 0."
        ),
        fix=(
            "Ask for zeros where nothing connects: "
            "tape.gradient(..., unconnected_gradients=tf.UnconnectedGradients.ZERO) "
            "(or use the source in the loss, if leaving it out was the mistake)."
        ),
        expected=expected,
    )


def _non_differentiable_op(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    rounded, cast = s.fresh(f"{w}_round"), s.fresh(f"{w}_cast")
    round_tree = _rename(s.problem.tree, w, rounded)
    cast_tree = _rename(s.problem.tree, w, cast)
    kind = "tf.float64" if s.dtype == "float64" else "tf.float32"

    def code(broken: bool) -> str:
        lines = _header(s) + _definitions(s, point)
        if broken:
            opener = "with tf.GradientTape(persistent=True) as tape:"
            body = [
                f"{rounded} = tf.round({w})",
                f"loss_round = {_loss_text(s, round_tree)}",
                f"{cast} = tf.cast(tf.cast({w}, tf.int32), {kind})",
                f"loss_cast = {_loss_text(s, cast_tree)}",
            ]
            lines += _tape_lines(s, [w], body, opener)
            lines.append(f"grad_round = tape.gradient(loss_round, {w})")
            lines.append(f"grad_cast = tape.gradient(loss_cast, {w})")
            return _script(
                lines + _prints(("grad_round", "grad_round"), ("grad_cast", "grad_cast"))
            )
        lines += _tape_lines(s, [w], [f"loss = {_loss_text(s)}"])
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        lines += _prints((f"grad_{w}", f"grad_{w}"), (f"rounded_{w}", f"tf.round({w})"))
        return _script(lines)

    def broken(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, point)
        dtype = _tf_dtype(tf, s.dtype)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(env[w])
            env[rounded] = tf.round(env[w])
            loss_round = _live_loss(tf, s, env, round_tree)
            env[cast] = tf.cast(tf.cast(env[w], tf.int32), dtype)
            loss_cast = _live_loss(tf, s, env, cast_tree)
        out.show("grad_round", tape.gradient(loss_round, env[w]))
        out.show("grad_cast", tape.gradient(loss_cast, env[w]))

    def fixed(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, point)
        with tf.GradientTape() as tape:
            tape.watch(env[w])
            value = _live_loss(tf, s, env)
        out.show(f"grad_{w}", tape.gradient(value, env[w]))
        out.show(f"rounded_{w}", tf.round(env[w]))

    def expected(outcome: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        exp, agree = _gradient_check(s, f"grad_{w}", w, point)(outcome)
        flat = "0 wherever it exists: round and int() are flat between their jumps"
        none = (Expected("grad_round", None, flat), Expected("grad_cast", None, flat))
        return none + exp, agree

    return _Spec(
        point,
        code(True),
        broken,
        code(False),
        fixed,
        why=(
            "round, a cast to an integer type and argmax have no registered gradient: "
            "they are flat between their jumps (derivative 0) and jump where they are not "
            "flat, so the tape returns None. Even a 0 would not teach the descent anything."
        ),
        fix=(
            f"Keep non-differentiable steps out of what the gradient flows through: compute "
            f"the loss from {w} itself, and round only the value you report."
        ),
        expected=expected,
    )


def _mixed_dtypes(s: _Setting) -> _Spec:
    w, point = s.w, s.point
    others = [*s.problem.data, *s.others]
    if not others:
        raise _NotApplicable(f"has no symbol besides {s.w} to hold another dtype")
    mixed = {n: "float64" for n in others} | {w: "float32"}
    wide = {n: "float64" for n in [*others, w]}
    loss = _loss_text(s)

    def code(dtypes: Mapping[str, str]) -> str:
        lines = _header(s) + _definitions(s, point, dtypes)
        lines += _tape_lines(s, [w], [f"loss = {loss}"])
        lines.append(f"grad_{w} = tape.gradient(loss, {w})")
        return _script(lines + _prints((f"grad_{w}", f"grad_{w}")))

    def live(dtypes: Mapping[str, str]) -> Callable[[Any, _Recorder], None]:
        def run(tf: Any, out: _Recorder) -> None:
            env = _env(tf, s, point, dtypes)
            with tf.GradientTape() as tape:
                tape.watch(env[w])
                value = _live_loss(tf, s, env)
            out.show(f"grad_{w}", tape.gradient(value, env[w]))

        return run

    return _Spec(
        point,
        code(mixed),
        live(mixed),
        code(wide),
        live(wide),
        why=(
            f"{w} is float32 and {', '.join(others)} float64. NumPy would quietly widen the "
            f"float32 number; TensorFlow never converts dtypes by itself, so the first "
            f"operation that meets both refuses to run."
        ),
        fix=(
            "Give every tensor the same dtype: dtype=tf.float64 everywhere (as here), or "
            "tf.cast one of them."
        ),
        expected=_gradient_check(s, f"grad_{w}", w, point, "float64"),
    )


def _zero_of_loss(s: _Setting) -> float:
    """A value of ``w`` where the loss is exactly 0 in the dtype, the nearest to its start."""
    import sympy

    from ._timeout import within_time_limit
    from .expression import make_symbol

    if s.problem.data:
        raise _NotApplicable("is a mean over data rows, which is zero only by accident")
    symbol = make_symbol(s.w)
    held = {k: v for k, v in _exact_point(s.point).items() if k != symbol}
    polynomial = s.problem.loss.subs(held)
    if not polynomial.is_polynomial(symbol):
        raise _NotApplicable(f"is not a polynomial in {s.w}, so its zero is not exact")

    def roots() -> list[Any]:
        return sympy.Poly(polynomial, symbol).real_roots()

    found = within_time_limit(roots, what="finding where the loss is 0")
    exact = [r for r in found if r.is_Rational and float(r) == float(_in_dtype(float(r), s.dtype))]
    if not exact:
        raise _NotApplicable(f"is never exactly 0 at a {s.dtype} value of {s.w}")
    start = s.point[s.w]
    return float(min(exact, key=lambda r: abs(float(r) - start)))


def _in_dtype(value: float, dtype: str) -> float:
    import numpy as np

    return float(np.array(value, dtype=dtype))


def _is_square(tree: Node) -> Node | None:
    """The base of ``tree`` when it is ``base ** 2``."""
    squared = isinstance(tree, Binary) and tree.op == "**" and isinstance(tree.right, Num)
    if squared and tree.right.text in ("2", "2.0"):  # type: ignore[union-attr]
        return tree.left  # type: ignore[union-attr]
    return None


def _sqrt_at_zero(s: _Setting) -> _Spec:
    import sympy

    from .expression import make_symbol

    w = s.w
    kink = _zero_of_loss(s)
    at_kink = {**s.point, w: kink}
    start = s.point[w]
    loss = _loss_text(s)
    base = _is_square(s.problem.tree)
    kink_label = f"grad_root ({w} = {_literal(kink)})"
    start_label = f"grad_root ({w} = {_literal(start)})"

    def broken_code() -> str:
        lines = _header(s) + _definitions(s, at_kink)
        body = [f"loss = {loss}", "root = tf.sqrt(loss)"]
        if base is not None:
            from .render.code import expression

            body.append(f"distance = tf.abs({expression(base)})")
        lines += _tape_lines(s, [w], body, "with tf.GradientTape(persistent=True) as tape:")
        lines.append(f"grad_root = tape.gradient(root, {w})")
        prints = [("loss", "loss"), ("grad_root", "grad_root")]
        if base is not None:
            lines.append(f"grad_abs = tape.gradient(distance, {w})")
            prints.append(("grad_abs", "grad_abs"))
        return _script(lines + _prints(*prints))

    def broken(tf: Any, out: _Recorder) -> None:
        from .autodiff import build_loss

        env = _env(tf, s, at_kink)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(env[w])
            value = _live_loss(tf, s, env)
            root = tf.sqrt(value)
            if base is not None:
                distance = tf.abs(build_loss(base, env, _dtype_of(tf, env, s)))
        out.show("loss", value)
        out.show("grad_root", tape.gradient(root, env[w]))
        if base is not None:
            out.show("grad_abs", tape.gradient(distance, env[w]))

    held = {n: v for n, v in s.point.items() if n != w}

    def fixed_code() -> str:
        lines = _header(s) + _definitions(s, held)
        lines += ["", "", f"def root_gradient({w}):"]
        body = [
            f"loss = {loss}",
            "positive = loss > 0",
            "safe = tf.where(positive, loss, tf.ones_like(loss))",
            "root = tf.where(positive, tf.sqrt(safe), tf.zeros_like(loss))",
        ]
        lines += ["    " + line for line in _tape_lines(s, [w], body)]
        lines += [f"    return tape.gradient(root, {w})", "", ""]
        for label, value in ((kink_label, kink), (start_label, start)):
            made = f"tf.convert_to_tensor({_literal(value)}{_dtype_arg(s.dtype)})"
            lines.append(f'print("{label} =", root_gradient({made}))')
        return _script(lines)

    def fixed(tf: Any, out: _Recorder) -> None:
        env = _env(tf, s, held)

        def root_gradient(value: float) -> Any:
            local = {**env, **_env(tf, s, {w: value})}
            with tf.GradientTape() as tape:
                tape.watch(local[w])
                loss_value = _live_loss(tf, s, local)
                positive = loss_value > 0
                safe = tf.where(positive, loss_value, tf.ones_like(loss_value))
                root = tf.where(positive, tf.sqrt(safe), tf.zeros_like(loss_value))
            return tape.gradient(root, local[w])

        out.show(kink_label, root_gradient(kink))
        out.show(start_label, root_gradient(start))

    def expected(outcome: Outcome) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
        symbol = make_symbol(w)
        derivative = sympy.diff(sympy.sqrt(s.problem.loss), symbol)
        held_exact = {k: v for k, v in _exact_point(s.point).items() if k != symbol}
        near = derivative.subs(held_exact)
        x0 = sympy.Rational(Fraction(kink))
        sides = [sympy.limit(near, symbol, x0, dir=d) for d in ("-", "+")]
        sides_text = " and ".join(_pretty(float(v)) if v.is_finite else str(v) for v in sides)
        if sides[0] == sides[1] and sides[0].is_finite:
            kink_value: float | None = float(sides[0])
            kink_text = f"∂√L/∂{w} = {_pretty(kink_value)} (both sides agree)"
        else:
            kink_value = None
            kink_text = (
                f"undefined: √L has a kink at {w} = {_literal(kink)}, its one-sided "
                f"derivatives are {sides_text}; any value between them is a subgradient"
            )
        start_value = _symbolic(derivative, s.point)
        bound = _closed_form_bound(derivative, s.point, s.dtype)
        items = [
            Expected("grad_root", kink_value, kink_text),
            Expected(kink_label, kink_value, kink_text),
            Expected(start_label, start_value, f"∂√L/∂{w} = {_pretty(start_value)}"),
        ]
        agreements = [_agreement(start_label, outcome, start_value, bound)]
        if kink_value is not None:
            bound_kink = _closed_form_bound(derivative, at_kink, s.dtype)
            agreements.insert(0, _agreement(kink_label, outcome, kink_value, bound_kink))
        if base is not None:
            abs_text = f"the same as √L's, since |r| = √(r²): {kink_text}"
            items.insert(1, Expected("grad_abs", kink_value, abs_text))
        return tuple(items), tuple(agreements)

    return _Spec(
        at_kink,
        broken_code(),
        broken,
        fixed_code(),
        fixed,
        why=(
            f"At {w} = {_literal(kink)} the loss is 0. The tape applies the chain rule with "
            f"numbers: the derivative of sqrt at 0 is 1/(2·0) = inf, times the loss's "
            f"derivative there, 0, gives inf·0 = NaN, and NaN then spreads to every update. "
            f"tf.abs at 0 instead returns sign(0) = 0: one subgradient, chosen by TensorFlow."
        ),
        fix=(
            "Keep 0 away from sqrt on both the forward and the backward pass: take the sqrt "
            "of a safe value where the loss is 0 and select 0 there (tf.where twice), which "
            "gives the subgradient 0 at the kink and the true gradient everywhere else."
        ),
        expected=expected,
    )


_BUILDERS: dict[str, Callable[[_Setting], _Spec]] = {
    "unwatched-tensor": _unwatched_tensor,
    "integer-dtype": _integer_dtype,
    "reassigned-variable": _reassigned_variable,
    "numpy-inside-tape": _numpy_inside_tape,
    "non-persistent-tape": _non_persistent_tape,
    "gradient-outside-outer-tape": _gradient_outside_outer,
    "non-scalar-target": _non_scalar_target,
    "unconnected-source": _unconnected_source,
    "non-differentiable-op": _non_differentiable_op,
    "mixed-dtypes": _mixed_dtypes,
    "sqrt-at-zero": _sqrt_at_zero,
}


def run(name: str, problem: Problem | None = None) -> Lab:
    """Return the pitfall ``name`` applied to ``problem`` (default: the seed's), run live.

    When the problem's loss lacks what the pitfall needs (a second symbol, an
    exact zero), the seed's loss is used and :attr:`Lab.note` says why.
    """
    from .problem import load

    pitfall = find(name)
    problem = problem or load(SEED_PROBLEM)
    note = ""
    try:
        spec = _BUILDERS[name](_setting(problem))
    except _NotApplicable as exc:
        note = f"{problem.id}'s loss {exc}; shown on {SEED_PROBLEM}'s loss instead."
        problem = load(SEED_PROBLEM)
        spec = _BUILDERS[name](_setting(problem))
    broken = _execute(spec.broken)
    fixed = _execute(spec.fixed)
    expected, agreement = spec.expected(fixed)
    return Lab(
        pitfall=pitfall,
        problem=problem,
        note=note,
        point=dict(spec.point),
        broken_code=spec.broken_code,
        broken=broken,
        expected=expected,
        why=spec.why,
        fix=spec.fix,
        fixed_code=spec.fixed_code,
        fixed=fixed,
        agreement=agreement,
    )


def run_all(problem: Problem | None = None) -> tuple[Lab, ...]:
    """Return every pitfall of the catalogue applied to ``problem``, run live."""
    return tuple(run(p.name, problem) for p in PITFALLS)
