"""Write output files atomically and build PDFs safely."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import ToolMissingError, TutorError

#: Seconds a PDF build may take before it is stopped.
TEX_TIMEOUT = 60
#: The Debian packages that build a handout.
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written."""
    path = path.resolve()
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def build_pdf(tex: str, pdf: Path) -> None:
    """Compile ``tex`` with latexmk in a fresh temporary folder; move the PDF to ``pdf``.

    TeX runs with shell escape off, no latexmkrc, paranoid file access (no
    absolute paths, no parent folders, no dot files) and a time limit.
    """
    missing = [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]
    if missing:
        raise ToolMissingError(
            f"building the PDF needs {' and '.join(missing)}, which is not installed; on "
            f"Debian or Ubuntu: apt-get install --no-install-recommends {TEX_PACKAGES}"
        )
    with tempfile.TemporaryDirectory(prefix="tutor-tex-") as folder:
        source = Path(folder) / "handout.tex"
        source.write_text(tex, encoding="utf-8")
        env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
        command = [
            "latexmk",
            "-norc",
            "-pdf",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-pdflatex=pdflatex -no-shell-escape %O %S",
            "handout.tex",
        ]
        try:
            done = subprocess.run(
                command,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=TEX_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise TutorError(
                f"the PDF build took longer than {TEX_TIMEOUT} s and was stopped; "
                "the .tex file is written"
            ) from None
        built = Path(folder) / "handout.pdf"
        if done.returncode != 0 or not built.is_file():
            raise TutorError(
                f"TeX could not build the PDF: {_first_error(Path(folder))}; "
                "the .tex file is written"
            )
        write_atomic(pdf, built.read_bytes())


def _first_error(folder: Path) -> str:
    log = folder / "handout.log"
    if not log.is_file():
        return "no log was written"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!"):
            return " ".join(part.strip() for part in lines[i : i + 3])
    return "see the .tex file"
