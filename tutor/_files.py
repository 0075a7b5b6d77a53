"""Write output files atomically and build PDFs safely.

An output target is refused, before anything is computed, when it is a
symbolic link (tutor never writes through a link: the file it names could be
anything, anywhere), a folder, a device or a pipe, or when its folder is
missing or not writable. A file that is written replaces the target by a
rename, so it is never half-written, and keeps the mode the target had (or,
for a new file, the mode the umask gives).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from .errors import OutputError, ToolMissingError, TutorError

#: Seconds a PDF build may take before it is stopped.
TEX_TIMEOUT = 60
#: The Debian packages that build a handout.
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"


def check_target(path: Path) -> None:
    """Raise :class:`OutputError` unless a file can be written at ``path``.

    >>> check_target(Path("/dev/null"))
    Traceback (most recent call last):
    ...
    tutor.errors.OutputError: /dev/null: is a device or a pipe, not a regular file; give a file name
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a name too long, a folder not searchable
        raise _refused(path, exc) from None
    if mode is not None and stat.S_ISLNK(mode):
        raise OutputError(
            f"{path}: is a symbolic link; tutor does not write through links, "
            "give the path of the file itself"
        )
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{path}: is a folder; give a file name inside it")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"{path}: is a device or a pipe, not a regular file; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {folder} is not writable; choose another")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written.

    Raises :class:`OutputError` when the target is refused (see :func:`check_target`)
    or the write fails (a full disk, a read-only file system); nothing is left behind.
    """
    check_target(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(temp, path)
    except OSError as exc:
        raise _refused(path, exc) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _refused(path: Path, exc: OSError) -> OutputError:
    name = str(path) if len(str(path)) <= 80 else str(path)[:77] + "..."
    return OutputError(f"{name}: cannot write the file ({exc.strerror}); choose another path")


def _umask() -> int:
    """Return the process's umask without changing it (Linux), else by setting it back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def build_pdf(tex: str, pdf: Path) -> None:
    """Compile ``tex`` with latexmk in a fresh temporary folder; move the PDF to ``pdf``.

    TeX runs with shell escape off, no latexmkrc, paranoid file access (no
    absolute paths, no parent folders, no dot files) and a time limit, in a
    process group of its own that is killed whole at the limit (pdflatex
    included, not only latexmk). When the build fails, a PDF left at ``pdf`` by
    an earlier build is removed: it would not match the new .tex.
    """
    missing = [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]
    if missing:
        raise ToolMissingError(
            f"building the PDF needs {' and '.join(missing)}, which is not installed; on "
            f"Debian or Ubuntu: apt-get install --no-install-recommends {TEX_PACKAGES}"
        )
    check_target(pdf)
    try:
        built = _run_tex(tex)
    except TutorError:
        _remove_stale(pdf)
        raise
    write_atomic(pdf, built)


def _run_tex(tex: str) -> bytes:
    """Return the PDF that latexmk builds from ``tex``; raise :class:`TutorError` if none."""
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
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=TEX_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TutorError(
                f"the PDF build took longer than {TEX_TIMEOUT} s and was stopped; "
                "the .tex file is written"
            ) from None
        finally:
            _kill_group(process)
        built = Path(folder) / "handout.pdf"
        if returncode != 0 or not built.is_file():
            raise TutorError(
                f"TeX could not build the PDF: {_first_error(Path(folder))}; "
                "the .tex file is written"
            )
        return built.read_bytes()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill every process of ``process``'s group (latexmk and the TeX it started) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _remove_stale(pdf: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(pdf).st_mode):
            pdf.unlink()


def _first_error(folder: Path) -> str:
    log = folder / "handout.log"
    if not log.is_file():
        return "no log was written"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!"):
            return " ".join(part.strip() for part in lines[i : i + 3])
    return "see the .tex file"
