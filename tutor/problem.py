"""Load problem files (TOML) into :class:`~tutor.model.Problem`, checking every key.

A problem file is untrusted: nothing in it is evaluated; the loss goes through
:func:`tutor.expression.parse`. Every error names the file, the key (and its
line when it can be found), what is wrong and how to fix it.

>>> problem = load("seed-w")
>>> problem.loss, problem.wrt
((w*x - y)**2, ('w',))
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ExpressionError, ProblemError
from .expression import names as tree_names
from .expression import parse, symbol_name_problem, to_sympy
from .model import Problem

MAX_STEPS = 1_000_000
MAX_ROWS = 100_000
MAX_FILE_BYTES = 1_000_000

_TOP_KEYS = ("title", "summary", "loss", "values", "descent", "constants", "data", "verify")
_DESCENT_KEYS = ("wrt", "learning_rate", "steps", "tolerance", "variables", "dtype")
VARIABLE_MODES = ("tensor", "variable")
DTYPES = ("float32", "float64")
#: The sampling box for symbols a ``[verify]`` table does not list.
DEFAULT_BOX = (-10.0, 10.0)


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
    if path.is_file() or spec.endswith(".toml"):
        if not path.is_file():
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
    """Load and validate the problem ``spec`` names (a path or a shipped id)."""
    path = spec if isinstance(spec, Path) else resolve(spec)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProblemError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ProblemError(f"the file is larger than {MAX_FILE_BYTES} bytes", path=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError("the file is not UTF-8 text; save it as UTF-8", path=str(path)) from None
    return loads(text, source=str(path), problem_id=path.stem)


def loads(text: str, *, source: str = "<string>", problem_id: str = "problem") -> Problem:
    """Parse problem-file text; ``source`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(
            f"not valid TOML: {exc}; see the problem-file format in the README", path=source
        ) from None
    return _Reader(doc, text, source, problem_id).problem()


class _Reader:
    """Reads one parsed TOML document into a Problem, raising on the first error."""

    def __init__(self, doc: dict[str, Any], text: str, source: str, problem_id: str) -> None:
        self.doc = doc
        self.text = text
        self.source = source
        self.id = problem_id

    def fail(self, key: str, message: str) -> ProblemError:
        return ProblemError(
            f"{key}: {message}" if key else message,
            path=self.source,
            key=key,
            line=_line_of(self.text, key),
        )

    def problem(self) -> Problem:
        self.check_keys(self.doc, _TOP_KEYS, "")
        title = self.string("title", required=True)
        summary = self.string("summary", required=False)
        loss_text = self.string("loss", required=True)
        constants = self.numbers("constants")
        values = self.numbers("values")
        data = self.data()
        descent = self.table("descent", required=True)
        self.check_keys(descent, _DESCENT_KEYS, "descent")
        for name in [*values, *constants, *data]:
            why = symbol_name_problem(name)
            if why:
                raise self.fail(f"{self.section_of(name)}.{name}", why)
        self.check_disjoint(values, constants, data)
        symbols = set(values) | set(constants) | set(data)
        try:
            tree = parse(loss_text, symbols)
        except ExpressionError as exc:
            raise self.fail("loss", exc.message) from None
        used = tree_names(tree)
        wrt = self.wrt(descent, values, used)
        return Problem(
            id=self.id,
            title=title,
            summary=summary,
            loss_text=loss_text,
            tree=tree,
            loss=to_sympy(tree),
            values=values,
            wrt=wrt,
            learning_rate=self.positive(descent, "learning_rate", required=True),
            steps=self.steps(descent),
            tolerance=self.positive(descent, "tolerance", required=False),
            variables=self.choice(descent, "variables", VARIABLE_MODES),
            dtype=self.choice(descent, "dtype", DTYPES),
            constants=constants,
            data=data,
            verify=self.verify(symbols),
            source=self.source,
        )

    def section_of(self, name: str) -> str:
        for section in ("values", "constants", "data"):
            if name in self.doc.get(section, {}):
                return section
        return "values"

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                full = f"{where}.{key}" if where else key
                raise self.fail(
                    full,
                    f"unknown key.{hint} Allowed{' in [' + where + ']' if where else ''}: "
                    f"{', '.join(allowed)}.",
                )

    def string(self, key: str, *, required: bool) -> str:
        if key not in self.doc:
            if required:
                raise self.fail(key, f'missing; add {key} = "..." at the top of the file')
            return ""
        value = self.doc[key]
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string in quotes, not {_kind(value)}")
        return value

    def table(self, key: str, *, required: bool) -> dict[str, Any]:
        if key not in self.doc:
            if required:
                raise self.fail(key, f"missing; add a [{key}] table")
            return {}
        value = self.doc[key]
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), not {_kind(value)}")
        return value

    def numbers(self, key: str) -> dict[str, float]:
        out = {}
        for name, value in self.table(key, required=False).items():
            out[name] = self.finite(f"{key}.{name}", value)
        return out

    def finite(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(key, f"must be a finite number, not {value}")
        return number

    def data(self) -> dict[str, tuple[float, ...]]:
        columns: dict[str, tuple[float, ...]] = {}
        for name, value in self.table("data", required=False).items():
            key = f"data.{name}"
            if not isinstance(value, list) or not value:
                raise self.fail(key, "must be a non-empty list of numbers, e.g. [1.0, 2.0, 3.0]")
            if len(value) > MAX_ROWS:
                raise self.fail(key, f"has {len(value)} rows; the limit is {MAX_ROWS}")
            columns[name] = tuple(self.finite(f"{key}[{i}]", v) for i, v in enumerate(value))
        lengths = {name: len(col) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{n} has {k}" for n, k in lengths.items())
            raise self.fail(
                "data",
                f"columns have unequal lengths ({listed}); give every column "
                "the same number of rows",
            )
        return columns

    def check_disjoint(self, *tables: dict[str, Any]) -> None:
        seen: dict[str, str] = {}
        for section, table in zip(("values", "constants", "data"), tables, strict=True):
            for name in table:
                if name in seen:
                    raise self.fail(
                        f"{section}.{name}",
                        f"'{name}' is given under both [{seen[name]}] and [{section}]; keep one",
                    )
                seen[name] = section

    def wrt(
        self, descent: dict[str, Any], values: dict[str, float], used: set[str]
    ) -> tuple[str, ...]:
        if "wrt" not in descent:
            raise self.fail("descent.wrt", 'missing; list the symbols to descend, e.g. wrt = ["w"]')
        wrt = descent["wrt"]
        if isinstance(wrt, str):
            wrt = [wrt]
        if not isinstance(wrt, list) or not wrt or not all(isinstance(s, str) for s in wrt):
            raise self.fail("descent.wrt", 'must be a non-empty list of symbol names, e.g. ["w"]')
        if len(set(wrt)) != len(wrt):
            raise self.fail("descent.wrt", "lists a symbol twice")
        for name in wrt:
            if name not in values:
                where = (
                    self.section_of(name)
                    if name in self.doc.get("constants", {}) or name in self.doc.get("data", {})
                    else ""
                )
                if where:
                    raise self.fail(
                        "descent.wrt",
                        f"'{name}' is under [{where}], which are never "
                        "descended; move it to [values]",
                    )
                close = difflib.get_close_matches(name, sorted(values), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise self.fail(
                    "descent.wrt", f"'{name}' has no starting value under [values].{hint}"
                )
            if name not in used:
                raise self.fail(
                    "descent.wrt",
                    f"'{name}' does not appear in the loss; descending it would change nothing",
                )
        return tuple(wrt)

    def positive(self, table: dict[str, Any], key: str, *, required: bool) -> Any:
        full = f"descent.{key}"
        if key not in table:
            if required:
                raise self.fail(full, f"missing; add {key} = 0.01 (a positive number) to [descent]")
            return None
        value = self.finite(full, table[key])
        if value <= 0:
            raise self.fail(full, f"must be positive, not {table[key]}")
        return value

    def steps(self, descent: dict[str, Any]) -> int:
        value = descent.get("steps")
        if value is None:
            raise self.fail(
                "descent.steps", "missing; add steps = 20 (a whole number) to [descent]"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail("descent.steps", f"must be a whole number, not {_kind(value)}")
        if value < 0 or value > MAX_STEPS:
            raise self.fail("descent.steps", f"must be between 0 and {MAX_STEPS}, not {value}")
        return value

    def choice(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
        value = table.get(key, allowed[0])
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise self.fail(
                f"descent.{key}",
                f"{value!r} is not one of {', '.join(map(repr, allowed))}.{hint}",
            )
        return str(value)

    def verify(self, symbols: set[str]) -> dict[str, tuple[float, float]]:
        boxes = {}
        for name, value in self.table("verify", required=False).items():
            key = f"verify.{name}"
            if name not in symbols:
                raise self.fail(key, f"'{name}' is not a symbol of the problem")
            if not isinstance(value, list) or len(value) != 2:
                raise self.fail(key, "must be a box [low, high], e.g. [-10.0, 10.0]")
            low, high = (self.finite(key, v) for v in value)
            if low > high:
                raise self.fail(key, f"low {low} is above high {high}; write [{high}, {low}]")
            boxes[name] = (low, high)
        return boxes


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value!r}"


def _line_of(text: str, key: str) -> int | None:
    """Return the 1-based line where ``key`` (``section.name`` or ``name``) is set, if found."""
    if not key:
        return None
    parts = key.split(".")
    section, name = (parts[0], re.sub(r"\[\d+\]$", "", parts[1])) if len(parts) > 1 else ("", key)
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]", line)
        if header:
            current = header.group(1)
            if not name and current == section:
                return number
            if section == "" and current == key:
                return number
            continue
        if current == section and re.match(rf"\s*{re.escape(name)}\s*=", line):
            return number
    return None
