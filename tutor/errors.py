"""The errors tutor raises, one hierarchy; each carries an exit status for the CLI."""

from __future__ import annotations


class TutorError(Exception):
    """Base of every error meant for a person: its message says what, where and how to fix."""

    exit_status = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProblemError(TutorError):
    """A problem file (or a shipped problem id) is missing, malformed or inconsistent."""

    def __init__(self, message: str, *, path: str = "", key: str = "", line: int | None = None):
        where = path
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key
        self.line = line


class ExpressionError(TutorError):
    """A loss expression uses syntax, a name or a size the safe parser refuses."""

    def __init__(self, message: str, *, expression: str = "", name: str = "") -> None:
        super().__init__(message)
        self.expression = expression
        self.name = name


class UsageError(TutorError):
    """A command-line option has a value the command cannot use."""


class DescentError(TutorError):
    """The descent reached non-finite values; exit status 1."""

    exit_status = 1


class ToolMissingError(TutorError):
    """A program the command needs (TeX for --pdf) is not installed; exit status 3."""

    exit_status = 3


class OutputError(TutorError):
    """An output file cannot be written where it was asked for (exit status 2)."""
