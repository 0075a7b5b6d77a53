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

This module holds the catalogue (:data:`PITFALLS`, listed without
TensorFlow), what a run records, and the live runner; the pitfalls
themselves are in :mod:`tutor._pitfall_cases`, built from the parts in
:mod:`tutor._pitfall_kit`. :func:`run` imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
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


def run(name: str, problem: Problem | None = None) -> Lab:
    """Return the pitfall ``name`` applied to ``problem`` (default: the seed's), run live.

    When the problem's loss lacks what the pitfall needs (a second symbol, an
    exact zero), the seed's loss is used and :attr:`Lab.note` says why.
    """
    pitfall = find(name)
    problem, note, spec = prepare(name, problem)
    broken = _execute(spec.broken)
    fixed = _execute(spec.fixed)
    # SymPy's side differentiates a loss that was parsed and derived within the
    # parser's and the derivation's limits; it runs here, beside the live results.
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


def prepare(name: str, problem: Problem | None = None) -> tuple[Problem, str, Any]:
    """Return the problem the pitfall ``name`` is shown on, the note saying why, and its spec."""
    from ._pitfall_cases import BUILDERS
    from ._pitfall_kit import _NotApplicable as NotApplicable
    from ._pitfall_kit import _setting as setting
    from .problem import load

    problem = problem or load(SEED_PROBLEM)
    try:
        return problem, "", BUILDERS[name](setting(problem))
    except NotApplicable as exc:
        note = f"{problem.id}'s loss {exc}; shown on {SEED_PROBLEM}'s loss instead."
        seed = load(SEED_PROBLEM)
        return seed, note, BUILDERS[name](setting(seed))


def run_all(problem: Problem | None = None) -> tuple[Lab, ...]:
    """Return every pitfall of the catalogue applied to ``problem``, run live."""
    return tuple(run(p.name, problem) for p in PITFALLS)
