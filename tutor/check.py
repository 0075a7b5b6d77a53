"""Check problem files without running them: what ``tutor check`` reports for each.

Checking reads the file, validates every key and parses the loss into SymPy;
it derives nothing and never imports TensorFlow.

>>> print(check_text(read("seed-w")).split(": ", 1)[1])
symbols w, x, y; wrt w; steps 20
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ProblemError
from .problem import Report, read


@dataclass(frozen=True)
class Outcome:
    """The text ``tutor check`` prints for a list of files, and its exit status."""

    text: str
    failed: int
    total: int

    @property
    def status(self) -> int:
        """Return 0 when every file is valid, 2 when any has an error."""
        return 2 if self.failed else 0

    @property
    def verdict(self) -> str:
        """Return the closing line for a run with errors ("" when every file is valid)."""
        if not self.failed:
            return ""
        if self.total == 1:
            return "tutor check: the file has errors"
        verb = "has" if self.failed == 1 else "have"
        return f"tutor check: {self.failed} of {self.total} files {verb} errors"


def check_files(specs: Sequence[str]) -> Outcome:
    """Return the report lines for the problem files (or shipped ids) ``specs``."""
    reports = [typesettable(read(spec)) for spec in specs]
    text = "".join(check_text(report) + "\n" for report in reports)
    failed = sum(1 for report in reports if report.problem is None)
    return Outcome(text=text, failed=failed, total=len(reports))


def typesettable(report: Report) -> Report:
    """Return ``report`` with an error for each prose character a handout cannot typeset.

    The title and summary go into handouts, which pdfLaTeX sets with T1 fonts:
    a character outside them (€, CJK) would print as ``[U+20AC]``.
    """
    problem = report.problem
    if problem is None:
        return report
    from .render.latex import unsupported

    errors = tuple(
        ProblemError(
            f"{key}: the character {ch!r} (U+{ord(ch):04X}) cannot be typeset in a handout; "
            "write it out in words or leave it out (README: 'Characters in prose')",
            path=report.source,
            key=key,
        )
        for key, text in (("title", problem.title), ("summary", problem.summary))
        for ch in unsupported(text)
    )
    return Report(report.source, None, errors) if errors else report


def check_text(report: Report) -> str:
    """Return ``OK path: symbols …; wrt …; steps …`` for a valid file, else one line per error."""
    problem = report.problem
    if problem is None:
        return "\n".join(str(error) for error in report.errors)
    symbols = sorted({*problem.values, *problem.constants, *problem.data})
    parts = [f"symbols {', '.join(symbols)}", f"wrt {', '.join(problem.wrt)}"]
    parts.append(f"steps {problem.steps}")
    if problem.data:
        parts.append(f"{problem.rows} data rows ({', '.join(problem.data)})")
    return f"OK {report.source}: {'; '.join(parts)}"
