"""Load problem files (TOML) into :class:`~tutor.model.Problem`, checking every key.

A problem file is untrusted: nothing in it is evaluated; the loss goes through
:func:`tutor.expression.parse`. Every error names the file, the key (and its
line when it can be found), what is wrong and how to fix it.

:func:`read` and :func:`read_text` collect every error of a file (``tutor
check`` lists them all); :func:`load` and :func:`loads` raise the first one,
noting how many more there are.

A symbol under ``[values]``, ``[constants]`` or ``[data]`` that the loss never
uses is an error, not a warning: it is almost always a typo or a leftover
from editing the loss, and a descent that silently ignores a value teaches
the wrong thing.

>>> problem = load("seed-w")
>>> problem.loss, problem.wrt
((w*x - y)**2, ('w',))
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._timeout import within_time_limit
from .errors import ExpressionError, ProblemError
from .expression import Node, parse, symbol_name_problem, to_real_sympy
from .expression import names as tree_names
from .model import Problem

MAX_STEPS = 1_000_000
MAX_ROWS = 100_000
#: Updates × data rows a run may take: about 30 ns each here, so about 15 s for a
#: least-squares fit at the cap, and well inside five minutes for a heavier loss.
MAX_ROW_STEPS = 500_000_000
MAX_FILE_BYTES = 1_000_000
#: Seconds that building the SymPy loss may take (milliseconds for any loss the parser allows).
LOAD_SECONDS = 5.0

_TOP_KEYS = (
    "title",
    "summary",
    "loss",
    "values",
    "descent",
    "constants",
    "data",
    "verify",
    "practice",
)
_DESCENT_KEYS = ("wrt", "learning_rate", "steps", "tolerance", "variables", "dtype")
_PRACTICE_KEYS = ("decimals",)
#: The decimals ``tutor practice`` may ask numbers to: float32 holds about 7 digits.
MAX_DECIMALS = 6
#: Names people reach for that the file format spells differently.
_KEY_ALIASES = {
    "lr": "learning_rate",
    "eta": "learning_rate",
    "rate": "learning_rate",
    "epochs": "steps",
    "iterations": "steps",
    "n_steps": "steps",
    "tol": "tolerance",
    "params": "wrt",
    "parameters": "wrt",
    "value": "values",
    "start": "values",
    "name": "title",
    "description": "summary",
    "expression": "loss",
}
VARIABLE_MODES = ("tensor", "variable")
DTYPES = ("float32", "float64")
#: The sampling box for symbols a ``[verify]`` table does not list.
DEFAULT_BOX = (-10.0, 10.0)
_SECTIONS = ("values", "constants", "data")


@dataclass(frozen=True)
class Report:
    """What reading one problem file found: the problem when it is valid, else every error."""

    source: str
    problem: Problem | None
    errors: tuple[ProblemError, ...] = ()


def problems_dir() -> Path:
    """Return the folder of shipped problem files (package data, or the source checkout's)."""
    packaged = Path(str(resources.files("tutor"))) / "problems"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "problems"


def shipped_ids() -> list[str]:
    """Return the ids of the shipped problems, sorted."""
    return sorted(p.stem for p in problems_dir().glob("*.toml"))


def resolve(spec: str) -> Path:
    """Return the file ``spec`` names: a path when it exists or ends in .toml, else a shipped id."""
    path = Path(spec)
    try:
        exists = path.exists()
    except OSError as exc:  # a name longer than the file system allows, and its kin
        raise ProblemError(
            f"cannot use this path: {exc.strerror or exc}; give a shorter path or a shipped "
            "problem id (see 'tutor list')",
            path=spec[:80] + ("…" if len(spec) > 80 else ""),
        ) from None
    if exists or spec.endswith(".toml"):
        if not exists:
            raise ProblemError(
                "no such file; check the path, or give a shipped problem id (see 'tutor list')",
                path=spec,
            )
        return path
    ids = shipped_ids()
    if spec in ids:
        return problems_dir() / f"{spec}.toml"
    close = difflib.get_close_matches(spec, ids, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ProblemError(
        f"'{spec}' is neither a file nor a shipped problem.{hint} "
        "Run 'tutor list' to see the shipped problems."
    )


def load(spec: str | Path) -> Problem:
    """Load and validate the problem ``spec`` names (a path or a shipped id).

    Raises :class:`ProblemError` with the first error found, noting how many more there are.
    """
    return _problem_of(read(spec))


def loads(text: str, *, source: str = "<string>", problem_id: str = "problem") -> Problem:
    """Parse problem-file text; ``source`` names it in error messages."""
    return _problem_of(read_text(text, source=source, problem_id=problem_id))


def read(spec: str | Path) -> Report:
    """Return what reading the problem ``spec`` names found: the problem, or every error.

    >>> read("seed-w").errors
    ()
    """
    try:
        path = spec if isinstance(spec, Path) else resolve(spec)
        text = _read_text(path)
    except ProblemError as exc:
        return Report(str(spec), None, (exc,))
    return read_text(text, source=str(path), problem_id=path.stem)


def read_text(text: str, *, source: str = "<string>", problem_id: str = "problem") -> Report:
    """Return what reading problem-file ``text`` found; ``source`` names it in messages."""
    text = text.removeprefix("\ufeff")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Report(source, None, (_toml_error(str(exc), text, source),))
    except RecursionError:
        # tomllib reads nested arrays and inline tables recursively.
        error = ProblemError(
            "not valid TOML for a problem: arrays or tables are nested hundreds deep; "
            "a problem file needs at most one level ([low, high], a data column)",
            path=source,
        )
        return Report(source, None, (error,))
    except ValueError as exc:
        # Python refuses to read an integer of more than 4300 digits (int_max_str_digits).
        error = ProblemError(
            f"not valid TOML for a problem: {' '.join(str(exc).split(';')[0].split())}; "
            "write a number in the float range, e.g. 3.0e15 rather than its digits",
            path=source,
        )
        return Report(source, None, (error,))
    return _Reader(doc, text, source, problem_id).report()


def _read_text(path: Path) -> str:
    """Return the text of the regular file at ``path``, refusing one too large or not UTF-8.

    The file is opened without blocking and checked before it is read, so a
    FIFO or a device (``/dev/zero``) is refused instead of read for ever; at
    most :data:`MAX_FILE_BYTES` + 1 bytes are read, whatever the size claims.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ProblemError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ProblemError(
                "is not a regular file (a folder, a device or a pipe); give a .toml file",
                path=str(path),
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ProblemError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise ProblemError(
            f"the file is larger than {MAX_FILE_BYTES} bytes; a problem file is a few lines",
            path=str(path),
        )
    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProblemError("the file is not UTF-8 text; save it as UTF-8", path=str(path)) from None


def _problem_of(report: Report) -> Problem:
    """Return the report's problem, or raise its first error (noting how many more there are)."""
    if report.problem is not None:
        return report.problem
    first = report.errors[0]
    more = len(report.errors) - 1
    if not more:
        raise first
    noun = "error" if more == 1 else "errors"
    error = ProblemError(f"{first.message} (and {more} more {noun}: 'tutor check' lists all)")
    error.path, error.key, error.line = first.path, first.key, first.line
    raise error


def _toml_error(message: str, text: str, source: str) -> ProblemError:
    """Return the error for text that is not TOML, with its line and a hint for common slips."""
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(found.group(1)) if found else None
    hint = "see the problem-file format in the README"
    column = re.search(r"column (\d+)\)", message)
    lines = text.splitlines()
    bare = _bare_key(lines[line - 1]) if line and line <= len(lines) else None
    if "Invalid value" in message and bare is not None and column:
        detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        return ProblemError(
            f"{bare}: the value is missing after '='; write a value, e.g. {bare} = 0.5 "
            'or, for text, {bare} = "..."'.replace("{bare}", bare),
            path=source,
            line=line,
        )
    if "Invalid value" in message:
        hint = 'text values need quotes, e.g. loss = "(w*x - y)**2"'
    elif "Cannot overwrite" in message or "Cannot declare" in message:
        hint = "a key or table is given twice; keep one"
    detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    return ProblemError(f"not valid TOML: {detail}; {hint}", path=source, line=line)


class _Reader:
    """Reads one parsed TOML document into a Problem, collecting every error on the way."""

    def __init__(self, doc: dict[str, Any], text: str, source: str, problem_id: str) -> None:
        self.doc = doc
        self.source = source
        self.id = problem_id
        self.lines = _key_lines(text)
        self.errors: list[ProblemError] = []
        #: Each table as written (checked to be a table once), keys not yet validated.
        self.raw: dict[str, dict[str, Any]] = {}

    def error(self, key: str, message: str) -> None:
        self.errors.append(
            ProblemError(
                f"{key}: {message}" if key else message,
                path=self.source,
                key=key,
                line=_line_of(self.lines, key),
            )
        )

    def report(self) -> Report:
        self.check_keys(self.doc, _TOP_KEYS, "")
        title = self.string("title", required=True)
        summary = self.string("summary", required=False)
        loss_text = self.string("loss", required=True)
        for section in (*_SECTIONS, "descent", "verify", "practice"):
            self.raw[section] = self.table(section, required=section == "descent")
        values, constants = self.numbers("values"), self.numbers("constants")
        data = self.data()
        names = self.check_names()
        tree = self.loss(loss_text, names)
        used = None if tree is None else tree_names(tree)
        if used is not None:
            self.check_used(names, used)
        settings = self.descent(used)
        verify = self.verify()
        decimals = self.practice()
        loss = None if tree is None else self.sympy_loss(tree, loss_text)
        if tree is None or loss is None or self.errors:
            # In the order of the file; errors with no line (a missing key) come first.
            errors = sorted(self.errors, key=lambda e: e.line or 0)
            return Report(self.source, None, tuple(errors))
        problem = Problem(
            id=self.id,
            title=title,
            summary=summary,
            loss_text=loss_text,
            tree=tree,
            loss=loss,
            values=values,
            constants=constants,
            data=data,
            verify=verify,
            source=self.source,
            practice_decimals=decimals,
            **settings,
        )
        return Report(self.source, problem)

    def descent(self, used: set[str] | None) -> dict[str, Any]:
        """Return the [descent] settings as Problem fields, recording what is wrong with them."""
        descent = self.raw["descent"]
        self.check_keys(descent, _DESCENT_KEYS, "descent")
        settings = {
            "wrt": self.wrt(descent, used),
            "learning_rate": self.positive(descent, "learning_rate", required=True),
            "steps": self.steps(descent),
            "tolerance": self.positive(descent, "tolerance", required=False),
            "variables": self.choice(descent, "variables", VARIABLE_MODES),
            "dtype": self.choice(descent, "dtype", DTYPES),
        }
        rows = max((len(c) for c in self.raw["data"].values() if isinstance(c, list)), default=0)
        why = work_problem(settings["steps"], rows)
        if why:
            self.error("descent.steps", why)
        if settings["learning_rate"] is not None:
            why = rate_problem(settings["learning_rate"], settings["dtype"])
            if why:
                self.error("descent.learning_rate", why)
        for section in _SECTIONS:
            for name, value in self.raw[section].items():
                for item in value if isinstance(value, list) else [value]:
                    why = range_problem(item, settings["dtype"])
                    if why:
                        self.error(f"{section}.{name}", why)
                        break
        return settings

    # -- keys and plain values ------------------------------------------------------

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key in allowed:
                continue
            hint = _key_hint(key, allowed, where)
            inside = f" in [{where}]" if where else ""
            self.error(
                f"{where}.{key}" if where else key,
                f"unknown key.{hint} Allowed{inside}: {', '.join(allowed)}.",
            )

    def string(self, key: str, *, required: bool) -> str:
        if key not in self.doc:
            if required:
                self.error(
                    key,
                    f'missing{_misspelt(key, self.doc)}; add {key} = "..." at the top of the file',
                )
            return ""
        value = self.doc[key]
        if not isinstance(value, str):
            self.error(key, f'must be text in quotes, not {_kind(value)}; write {key} = "..."')
            return ""
        if required and not value.strip():
            self.error(key, f'is empty; write {key} = "..." with some text')
        return value

    def table(self, key: str, *, required: bool) -> dict[str, Any]:
        if key not in self.doc:
            if required:
                self.error(key, f"missing{_misspelt(key, self.doc)}; add a [{key}] table")
            return {}
        value = self.doc[key]
        if not isinstance(value, dict):
            self.error(key, f"must be a table ([{key}] on a line of its own), not {_kind(value)}")
            return {}
        return value

    def numbers(self, section: str) -> dict[str, float]:
        out = {}
        for name, value in self.raw[section].items():
            number = self.finite(f"{section}.{name}", value, f"{name} = 0.5")
            if number is not None:
                out[name] = number
        return out

    def finite(self, key: str, value: Any, example: str) -> float | None:
        """Return ``value`` as a float, or None after recording why it is not a finite number."""
        name = key.rsplit(".", 1)[-1]
        if name in _TOP_KEYS and isinstance(value, str):
            self.error(
                key,
                f"{name} = ... is written after a [table] header, so TOML puts it in that "
                "table; move it to the top of the file, before the first [table]",
            )
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            unquote = "; remove the quotes" if isinstance(value, str) else ""
            self.error(key, f"must be a number, not {_kind(value)}{unquote}; e.g. {example}")
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if not math.isfinite(number):
            self.error(key, f"must be a finite number, not {_shown(value)}; e.g. {example}")
            return None
        return number

    # -- symbols ----------------------------------------------------------------------

    def check_names(self) -> set[str]:
        """Return the usable symbol names, recording those reserved or given in two sections."""
        seen: dict[str, str] = {}
        for section in _SECTIONS:
            for name in self.raw[section]:
                why = symbol_name_problem(name)
                if why:
                    self.error(f"{section}.{name}", why)
                elif name in seen:
                    self.error(
                        f"{section}.{name}",
                        f"'{name}' is given under both [{seen[name]}] and [{section}]; "
                        "keep it in one of them",
                    )
                else:
                    seen[name] = section
        return set(seen)

    def loss(self, text: str, symbols: set[str]) -> Node | None:
        if not text:
            return None
        try:
            return parse(text, symbols)
        except ExpressionError as exc:
            self.error("loss", exc.message)
            return None

    def sympy_loss(self, tree: Node, text: str) -> Any:
        try:
            return within_time_limit(
                to_real_sympy, tree, text, what="building the loss", seconds=LOAD_SECONDS
            )
        except ExpressionError as exc:
            self.error("loss", exc.message)
            return None

    def check_used(self, names: set[str], used: set[str]) -> None:
        """Record each symbol with a value (and a valid name) that the loss never uses."""
        listed = ", ".join(sorted(used)) or "no symbols"
        for section in _SECTIONS:
            for name in self.raw[section]:
                if name in names and name not in used:
                    self.error(
                        f"{section}.{name}",
                        f"the loss never uses '{name}' (it uses {listed}); "
                        "remove it, or use it in the loss",
                    )

    @property
    def has_descent(self) -> bool:
        """Whether the file has a [descent] table (else its keys are not reported one by one)."""
        return isinstance(self.doc.get("descent"), dict)

    def section_of(self, name: str) -> str:
        """Return the section that gives ``name`` a value, or "" when none does."""
        return next((s for s in _SECTIONS if name in self.raw[s]), "")

    # -- [descent] --------------------------------------------------------------------

    def wrt(self, descent: dict[str, Any], used: set[str] | None) -> tuple[str, ...]:
        key = "descent.wrt"
        if "wrt" not in descent:
            if self.has_descent:
                self.error(key, 'missing; list the symbols to descend, e.g. wrt = ["w"]')
            return ()
        wrt = descent["wrt"]
        wrt = [wrt] if isinstance(wrt, str) else wrt
        if not isinstance(wrt, list) or not wrt or not all(isinstance(s, str) for s in wrt):
            self.error(key, 'must be a non-empty list of symbol names in quotes, e.g. ["w"]')
            return ()
        if len(set(wrt)) != len(wrt):
            twice = sorted({s for s in wrt if wrt.count(s) > 1})
            self.error(key, f"lists {', '.join(twice)} more than once; list each symbol once")
        for name in dict.fromkeys(wrt):
            self.wrt_symbol(name, used)
        return tuple(dict.fromkeys(wrt))

    def wrt_symbol(self, name: str, used: set[str] | None) -> None:
        key = "descent.wrt"
        section = self.section_of(name)
        if section == "data":
            self.error(
                key,
                f"'{name}' is a data column under [data]; columns are fixed, never descended. "
                "Descend a symbol under [values]",
            )
        elif section == "constants":
            self.error(
                key,
                f"'{name}' is under [constants], which are never descended; "
                "move it to [values] to descend it",
            )
        elif not section:
            hint = _near(name, sorted(self.raw["values"]))
            self.error(
                key,
                f"'{name}' has no starting value under [values].{hint} "
                f"Add {name} = 0.0 under [values], or descend another symbol",
            )
        elif used is not None and name not in used:
            self.error(
                key,
                f"'{name}' does not appear in the loss; descending it would change nothing. "
                "Remove it from wrt",
            )

    def positive(self, table: dict[str, Any], key: str, *, required: bool) -> Any:
        full = f"descent.{key}"
        if key not in table:
            if required and self.has_descent:
                self.error(
                    full,
                    f"missing{_misspelt(key, table)}; add {key} = 0.01 (a positive number) "
                    "to [descent]",
                )
            return None
        value = self.finite(full, table[key], f"{key} = 0.01")
        if value is not None and value <= 0:
            what = "a step against the gradient needs η > 0" if key == "learning_rate" else ""
            self.error(
                full,
                f"must be positive, not {table[key]}; {what + ', ' if what else ''}"
                f"e.g. {key} = {0.01 if key == 'learning_rate' else 1e-6}",
            )
            return None
        return value

    def steps(self, descent: dict[str, Any]) -> int:
        key = "descent.steps"
        if "steps" not in descent:
            if self.has_descent:
                self.error(
                    key,
                    f"missing{_misspelt('steps', descent)}; add steps = 20 (a whole number) "
                    "to [descent]",
                )
            return 0
        value = descent["steps"]
        if isinstance(value, float) and value.is_integer():
            self.error(key, f"must be a whole number, not {value}; write steps = {int(value)}")
        elif isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be a whole number, not {_kind(value)}; e.g. steps = 20")
        elif not 0 <= value <= MAX_STEPS:
            self.error(
                key, f"must be between 0 and {MAX_STEPS}, not {_shown(value)}; e.g. steps = 20"
            )
        else:
            return value
        return 0

    def choice(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
        value = table.get(key, allowed[0])
        if value in allowed:
            return str(value)
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        self.error(
            f"descent.{key}",
            f"{value!r} is not one of {', '.join(map(repr, allowed))}.{hint} "
            f'Write e.g. {key} = "{allowed[0]}"',
        )
        return allowed[0]

    # -- [practice] -------------------------------------------------------------------

    def practice(self) -> int:
        """Return ``[practice] decimals`` (default 2), recording what is wrong with it."""
        table = self.raw["practice"]
        self.check_keys(table, _PRACTICE_KEYS, "practice")
        if "decimals" not in table:
            return 2
        value = table["decimals"]
        key = "practice.decimals"
        if isinstance(value, float) and value.is_integer():
            self.error(key, f"must be a whole number, not {value}; write decimals = {int(value)}")
        elif isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be a whole number, not {_kind(value)}; e.g. decimals = 2")
        elif not 0 <= value <= MAX_DECIMALS:
            self.error(
                key,
                f"must be between 0 and {MAX_DECIMALS}, not {value} (float32 holds about "
                "7 digits); e.g. decimals = 2",
            )
        else:
            return value
        return 2

    # -- [data] and [verify] ----------------------------------------------------------

    def data(self) -> dict[str, tuple[float, ...]]:
        columns: dict[str, tuple[float, ...]] = {}
        for name, value in self.raw["data"].items():
            column = self.column(f"data.{name}", value)
            if column is not None:
                columns[name] = column
        lengths = {name: len(col) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{n} has {k}" for n, k in lengths.items())
            self.error(
                "data",
                f"columns have unequal lengths ({listed}); give every column "
                "the same number of rows",
            )
        return columns

    def column(self, key: str, value: Any) -> tuple[float, ...] | None:
        if not isinstance(value, list) or not value:
            self.error(key, "must be a non-empty list of numbers, e.g. [1.0, 2.0, 3.0]")
            return None
        if len(value) > MAX_ROWS:
            self.error(key, f"has {len(value)} rows; the limit is {MAX_ROWS}. Use fewer rows")
            return None
        numbers = []
        for i, item in enumerate(value):
            number = self.finite(f"{key}[{i}]", item, "[1.0, 2.0, 3.0]")
            if number is None:
                return None  # one message per column is enough to find the slip
            numbers.append(number)
        return tuple(numbers)

    def verify(self) -> dict[str, tuple[float, float]]:
        boxes = {}
        for name, value in self.raw["verify"].items():
            box = self.box(name, value)
            if box is not None:
                boxes[name] = box
        return boxes

    def box(self, name: str, value: Any) -> tuple[float, float] | None:
        key = f"verify.{name}"
        section = self.section_of(name)
        if section != "values":
            values = sorted(self.raw["values"])
            why = {
                "data": "a data column, which is fixed, never sampled",
                "constants": "a constant, which is never sampled",
            }.get(section, "not a symbol under [values]")
            hint = _near(name, values)
            self.error(key, f"'{name}' is {why}.{hint} Boxes are for symbols under [values]")
            return None
        if not isinstance(value, list) or len(value) != 2:
            self.error(key, "must be a box [low, high], e.g. [-10.0, 10.0]")
            return None
        low, high = (self.finite(key, v, f"{name} = [-10.0, 10.0]") for v in value)
        if low is None or high is None:
            return None
        if low > high:
            self.error(key, f"low {low:g} is above high {high:g}; write [{high:g}, {low:g}]")
            return None
        return (low, high)


def work_problem(steps: int, rows: int) -> str | None:
    """Return why ``steps`` updates over ``rows`` data rows are too much work, or None.

    >>> work_problem(20_000, 100_000).split("; ")[1]
    'use at most 5000 steps for 100000 rows'
    >>> work_problem(1_000_000, 0) is None
    True
    """
    if steps * max(rows, 1) <= MAX_ROW_STEPS:
        return None
    return (
        f"steps × rows = {steps * rows} is above the limit {MAX_ROW_STEPS}; "
        f"use at most {MAX_ROW_STEPS // rows} steps for {rows} rows"
    )


def range_problem(value: Any, dtype: str) -> str | None:
    """Return why ``value`` cannot be held in ``dtype`` (it would become ±inf), or None.

    >>> range_problem(1e155, "float32")
    "1e+155 is beyond float32's range (±3.4e+38); use dtype float64 or rescale the problem"
    >>> range_problem(1e155, "float64") is None
    True
    """
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    limit = float(np.finfo(dtype).max)
    try:
        number = float(value)
    except OverflowError:
        return None  # reported as not finite
    if math.isfinite(number) and abs(number) > limit:
        fix = "use dtype float64 or rescale" if dtype == "float32" else "rescale"
        return f"{number:g} is beyond {dtype}'s range (±{limit:.2g}); {fix} the problem"
    return None


def rate_problem(rate: float, dtype: str) -> str | None:
    """Return why the learning rate ``rate`` cannot drive a descent in ``dtype``, or None.

    A rate below the dtype's smallest number rounds to 0 (or to a subnormal,
    which TensorFlow on the CPU flushes to 0): every update would leave the
    values where they are.

    >>> rate_problem(1e-320, "float32")
    'rounds to 0 in float32, so no update would move; use a rate of at least 1.18e-38'
    >>> rate_problem(0.01, "float32") is None
    True
    """
    import numpy as np

    tiny = float(np.finfo(dtype).tiny)
    if rate < tiny:
        return f"rounds to 0 in {dtype}, so no update would move; use a rate of at least {tiny:.3g}"
    return None


def _shown(value: Any) -> str:
    """Return ``value`` as a message shows it: a giant integer by its length, not its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return str(value)


def _key_hint(key: str, allowed: tuple[str, ...], where: str) -> str:
    """Return a "Did you mean" hint for an unknown key, naming the table it may belong to."""
    for candidates, table in ((allowed, where), (_DESCENT_KEYS, "descent"), (_TOP_KEYS, "")):
        alias = _KEY_ALIASES.get(key)
        close = [alias] if alias in candidates else difflib.get_close_matches(key, candidates, n=1)
        if not close:
            continue
        if table == where:
            return f" Did you mean '{close[0]}'?"
        if table:
            return f" Did you mean '{close[0]}'? It belongs under [{table}]."
        return f" Did you mean '{close[0]}'? It belongs at the top, before any [table]."
    return ""


def _bare_key(line: str) -> str | None:
    """Return the key of a TOML line that assigns nothing (``lam =``), else None."""
    found = re.fullmatch(r"\s*([A-Za-z0-9_.\-\"' ]+?)\s*=\s*(#.*)?", line)
    return found.group(1).strip() if found else None


def _misspelt(key: str, table: dict[str, Any]) -> str:
    """Return a note naming a key of ``table`` that is probably ``key`` misspelt, or ""."""
    for written in table:
        if written == key:
            continue
        if _KEY_ALIASES.get(written) == key or difflib.get_close_matches(written, [key], n=1):
            return f" (the file has '{written}': did you mean '{key}'?)"
    return ""


def _near(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"


_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(
    r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _key_lines(text: str) -> dict[str, int]:
    """Return the 1-based line where each key is set: ``loss``, ``values``, ``descent.steps``.

    Lines inside multi-line strings (a long summary) are skipped, so a summary
    that mentions "steps = 20" does not hide the real key.
    """
    lines: dict[str, int] = {}
    table = ""
    quote = ""
    for number, line in enumerate(text.splitlines(), 1):
        if quote:
            if line.count(quote) % 2 == 1:
                quote = ""
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            key = _dotted(assign.group(1))
            lines.setdefault(f"{table}.{key}" if table else key, number)
        for mark in ('"""', "'''"):
            if line.count(mark) % 2 == 1:
                quote = mark
    return lines


def _dotted(key: str) -> str:
    """Return a TOML key with its quotes and the spaces around its dots removed."""
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


def _line_of(lines: dict[str, int], key: str) -> int | None:
    """Return the line of ``key`` (``data.x[3]`` is found at ``data.x``), or of its table."""
    parts = re.sub(r"\[\d+\]$", "", key).split(".")
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None
