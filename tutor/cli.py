"""The ``tutor`` command line: the only module that prints or writes files."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import click
from rich.text import Text

from . import __version__
from ._clean import clean
from ._timeout import budget, within_time_limit
from .derivation import derive, unknown_symbol_message
from .errors import TutorError, UsageError
from .model import Columns, Derivation, Problem, Trajectory
from .problem import (
    DTYPES,
    MAX_STEPS,
    VARIABLE_MODES,
    load,
    range_problem,
    rate_problem,
    shipped_ids,
    work_problem,
)

_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _use_rich() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _ReaderGone(Exception):
    """Standard output's reader went away (``| head``).

    Not an OSError, so that click passes it on instead of exiting with 1.
    """


class _OutputFailed(Exception):
    """Standard output could not be written (a full disk, a closed terminal)."""


def _write(text: str) -> None:
    """Write ``text`` to standard output, cleaned of anything a terminal would obey."""
    _write_raw(clean(text))


def _write_raw(text: str) -> None:
    try:
        fd = _stdout_fd()
        if fd is None:  # captured output (a test runner, a notebook)
            click.echo(text, nl=False)
            return
        sys.stdout.flush()
        _write_all(fd, text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
    except BrokenPipeError as exc:
        raise _ReaderGone from exc
    except OSError as exc:
        raise _OutputFailed(exc.strerror or str(exc)) from None


def _wait_for_tensorflow() -> None:
    """Import TensorFlow, stopping at once (quietly) if standard output's reader goes away.

    A reader that has read what it wanted (``| head``) need not wait seconds for an
    import whose results it will never read.
    """
    from .autodiff import import_in_background

    importing = import_in_background()
    while importing.is_alive():
        importing.join(0.05)
        if _reader_gone():
            raise _ReaderGone


def _reader_gone() -> bool:
    """Return whether standard output is a pipe or terminal that nobody reads any more."""
    import select

    fd = _stdout_fd()
    if fd is None or not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # errors only: a closed reader shows as POLLERR, a gone terminal POLLHUP
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def _stdout_fd() -> int | None:
    """Return standard output's file descriptor, or None when it has none."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``.

    Python's buffered stdout drops the rest of a large write when a signal
    (Ctrl-C, with its handler installed) interrupts it part way into a pipe;
    ``os.write`` reports the part written, and the loop writes the remainder.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: The longest error line printed; longer ones (a file with thousands of bad keys) are cut.
MAX_MESSAGE = 1000


def _error(text: str) -> None:
    """Print one cleaned line on standard error, cut to :data:`MAX_MESSAGE` characters."""
    line = " ".join(clean(text).split())
    if len(line) > MAX_MESSAGE:
        line = line[: MAX_MESSAGE - 1] + "…"
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: stderr closed
        click.echo(line, err=True)


def _print_rich(renderable: Any) -> None:
    from rich.console import Console

    try:
        # crop off: a LaTeX line longer than the terminal is soft-wrapped by the terminal,
        # so that copying it gives the whole formula.
        Console(highlight=False).print(renderable, crop=False)
    except BrokenPipeError as exc:
        raise _ReaderGone from exc
    except OSError as exc:
        raise _OutputFailed(exc.strerror or str(exc)) from None


@click.group(context_settings=_SETTINGS)
@click.version_option(__version__, "--version", prog_name="tutor")
def cli() -> None:
    """Derive gradients step by step with SymPy, compute them with TensorFlow's
    GradientTape, and watch gradient descent use them.

    PROBLEM is a problem file (a path, or any name ending in .toml) or the id
    of a shipped problem (see 'tutor list').

    \b
    Examples:
      tutor list
      tutor show seed-w
      tutor step seed-w --format seed
      tutor step seed-x --lr 0.05 --steps 10 --set x=1
      tutor practice seed-w
      tutor pitfalls integer-dtype
    """


@cli.command("list", short_help="List the shipped problems.")
def list_problems() -> None:
    """List the shipped problems with their titles."""
    ids = shipped_ids()
    width = max(map(len, ids), default=0)
    lines = []
    for problem_id in ids:
        problem = load(problem_id)
        lines.append(f"{problem_id:<{width}}  {_one_line(problem.title)}")
    _write("\n".join(lines) + "\n")


def _one_line(text: str) -> str:
    return " ".join(clean(text).split())


def _positive_rate(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(
            f"{value:g} is not a usable learning rate; give a positive number, e.g. --lr 0.01"
        )
    return value


def _parse_set(ctx: click.Context, param: click.Parameter, items: Sequence[str]) -> Any:
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value):
            raise click.BadParameter(
                f"'{item}' is not SYM=VALUE with a finite number; write e.g. --set w=0.5"
            )
        out[name] = value
    return out


_FORMATS_SHOW = ("rich", "plain", "latex", "json")
_FORMATS_STEP = ("rich", "plain", "seed", "latex", "json")


def _apply_overrides(
    problem: Problem,
    wrt: Sequence[str],
    lr: float | None,
    steps: int | None,
    sets: dict[str, float],
    variables: str | None,
    dtype: str | None,
) -> Problem:
    changes: dict[str, Any] = {}
    if wrt:
        for name in wrt:
            if name not in problem.values:
                raise UsageError(unknown_symbol_message(problem, name))
        changes["wrt"] = tuple(dict.fromkeys(wrt))
    if sets:
        values, constants = dict(problem.values), dict(problem.constants)
        overridden = dict(problem.overridden)
        for name, value in sets.items():
            if name in values:
                overridden.setdefault(name, values[name])
                values[name] = value
            elif name in constants:
                overridden.setdefault(name, constants[name])
                constants[name] = value
            else:
                known = ", ".join(sorted([*values, *constants]))
                raise UsageError(
                    f"--set {name}=…: '{name}' is not a symbol with a value in {problem.id} "
                    f"(known: {known}); data columns cannot be set"
                )
        changes.update(values=values, constants=constants, overridden=overridden)
    options: tuple[tuple[str, object], ...] = (
        ("learning_rate", lr),
        ("steps", steps),
        ("variables", variables),
        ("dtype", dtype),
    )
    for key, option in options:
        if option is not None:
            changes[key] = option
    changed = dataclasses.replace(problem, **changes)
    why = rate_problem(changed.learning_rate, changed.dtype)
    if why:
        raise UsageError(f"the learning rate {changed.learning_rate:g} {why}")
    why = work_problem(changed.steps, changed.rows)
    if why:
        raise UsageError(f"--steps {changed.steps}: {why}")
    for name, value in {**changed.values, **changed.constants}.items():
        why = range_problem(value, changed.dtype)
        if why:
            flag = f"--set {name}=…" if name in sets else f"{name} (from the file)"
            raise UsageError(f"{flag}: {why.replace('dtype', '--dtype')}")
    return changed


_DETAIL_OPTION = click.option(
    "--detail",
    type=click.Choice(("brief", "full")),
    help="brief: one line per rule that does work, then the algebra's moves; full: every "
    "rule with its sentence. Default: brief on a terminal (rich), full when piped, in "
    "LaTeX, JSON and handouts.",
)


def _detail(detail: str | None, fmt: str) -> str:
    """Return the derivation's detail: the one asked for, else brief on a terminal only."""
    return detail or ("brief" if fmt == "rich" else "full")


@cli.command(short_help="Derive the partials rule by rule.")
@click.argument("problem")
@click.option(
    "--wrt",
    "wrt",
    multiple=True,
    metavar="SYM",
    help="Differentiate with respect to SYM (repeat for several). Default: the file's wrt.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS_SHOW),
    help="Output format. Default: rich on a terminal, plain when piped or NO_COLOR is set.",
)
@_DETAIL_OPTION
def show(problem: str, wrt: tuple[str, ...], fmt: str | None, detail: str | None) -> None:
    """Show the derivation of every partial of PROBLEM's loss."""
    from ._rehearsal import show_output

    loaded = _apply_overrides(load(problem), wrt, None, None, {}, None, None)
    derivation = derive(loaded)
    fmt = fmt or ("rich" if _use_rich() else "plain")
    detail = _detail(detail, fmt)
    output = within_time_limit(show_output, derivation, fmt, detail, what="writing the derivation")
    if fmt == "rich":
        _print_rich(output)
    else:
        _write(output)


@cli.command(short_help="Run gradient descent, update by update.")
@click.argument("problem")
@click.option(
    "--wrt",
    "wrt",
    multiple=True,
    metavar="SYM",
    help="Descend SYM (repeat for several). Default: the file's wrt.",
)
@click.option(
    "--lr",
    type=float,
    callback=_positive_rate,
    metavar="ETA",
    help="Learning rate η > 0. Default: the file's learning_rate.",
)
@click.option(
    "--steps",
    type=click.IntRange(0, MAX_STEPS),
    metavar="N",
    help=f"Number of updates, 0 to {MAX_STEPS}. Default: the file's steps.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    callback=_parse_set,
    metavar="SYM=VALUE",
    help="Start SYM at VALUE instead of the file's value (repeatable).",
)
@click.option(
    "--variables",
    type=click.Choice(VARIABLE_MODES),
    help="tensor: convert_to_tensor + tape.watch; variable: tf.Variable + assign_sub. "
    "Default: the file's variables (tensor when it names none).",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    help="Floating-point type. Default: the file's dtype (float32 when it names none).",
)
@click.option(
    "--interactive",
    is_flag=True,
    help="Show one update per key: Enter for the next, a for all the rest, q to quit.",
)
@click.option(
    "--show-code",
    is_flag=True,
    help="Also print the TensorFlow code of one update, in the notebook's style.",
)
@click.option(
    "--backprop",
    is_flag=True,
    help="Also show the backward pass of the first update as a computation graph "
    "(see 'tutor graph').",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="On a terminal, show every update of a long run (by default: the first ones, "
    "every k-th, the last ones). Piped output always has every update.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS_STEP),
    help="Output format; 'seed' prints the notebook's line per update. "
    "Default: rich on a terminal, plain when piped.",
)
@_DETAIL_OPTION
def step(
    problem: str,
    wrt: tuple[str, ...],
    lr: float | None,
    steps: int | None,
    sets: dict[str, float],
    variables: str | None,
    dtype: str | None,
    interactive: bool,
    show_code: bool,
    backprop: bool,
    show_all: bool,
    fmt: str | None,
    detail: str | None,
) -> None:
    """Run gradient descent on PROBLEM, each update beside its derivation.

    Updates are printed as they are computed. On a terminal, a run of more
    updates than the screen has lines shows a progress bar and a digest: the
    first updates, every k-th, the last ones (--all: every update). Piped, every
    update is printed. Ctrl-C stops the run and prints what was computed (exit 130).
    """
    if backprop and fmt not in (None, "rich", "plain"):
        raise UsageError(
            f"--backprop shows the graph as text; it does not go with --format {fmt}. "
            f"Use 'tutor graph PROBLEM --format {fmt if fmt in ('latex', 'json') else 'dot'}' "
            "for the graph alone"
        )
    if interactive and fmt not in (None, "rich", "plain"):
        raise UsageError(
            f"--interactive shows updates one by one; it does not go with --format "
            f"{fmt}. Drop one of them."
        )
    if interactive and not sys.stdin.isatty():
        raise UsageError(
            "--interactive needs a terminal to read keys from; standard input is "
            "not one. Run without --interactive to print every update."
        )
    if show_all and fmt not in (None, "rich", "plain"):
        raise UsageError(
            f"--all shows every update on a terminal; --format {fmt} prints every one "
            "already. Drop --all."
        )
    from ._rehearsal import rehearse_step

    loaded = _apply_overrides(load(problem), wrt, lr, steps, sets, variables, dtype)
    derivation = derive(loaded)
    fmt = fmt or ("rich" if _use_rich() else "plain")
    detail = _detail(detail, fmt)
    within_time_limit(
        rehearse_step,
        derivation,
        fmt,
        interactive,
        show_code,
        backprop,
        detail,
        what="printing the run",
    )
    from .autodiff import TensorFlowBackend
    from .descent import descend
    from .render import latex, terminal, text

    code = ""
    if show_code:
        from .render.code import labelled_code

        code = labelled_code(loaded)
        if fmt not in ("rich", "plain"):
            _write(code + "\n")
    # The derivation needs SymPy only: it is printed first, and TensorFlow is imported
    # after it while the student reads it. Not before: the import holds Python's lock
    # for long stretches as it loads its libraries, which made printing 20× slower.
    # The code of --show-code comes after the derivation it turns into TensorFlow.
    if fmt == "rich":
        # The closed forms' LaTeX is printed above the updates: not twice.
        _print_rich(terminal.derivation(derivation, detail, latex_below=False))
        if code:
            _print_rich(terminal.code_panel(code))
    elif fmt == "plain":
        _write(text.derivation(derivation, detail))
        if code:
            _write("\n" + code.rstrip("\n") + "\n")
    _wait_for_tensorflow()
    if fmt == "json":
        traj = _json_run(derivation, TensorFlowBackend())
    elif interactive:
        traj = descend(derivation, TensorFlowBackend())
        _step_through(traj, rich=fmt == "rich")
    elif fmt == "latex":
        traj = descend(derivation, TensorFlowBackend())
        _write(latex.trajectory(traj))
    else:
        traj = _streamed_run(derivation, TensorFlowBackend(), fmt, show_all)
    if backprop:
        from .render import graph as render_graph

        built = _graph_at(loaded, 0, 0, True)
        _write("\nThe backward pass of update 1, node by node:\n")
        if fmt == "rich":
            _print_rich(render_graph.rich(built))
        else:
            _write(render_graph.text(built))
    if traj.status == "diverged":
        _error(f"tutor step: the descent diverged: {traj.reason}.")
        sys.exit(1)


def _budget_per_loss(losses: int) -> Any:
    """Return a time budget for the symbolic work on ``losses`` losses (problems or variants)."""
    from ._timeout import COMMAND_SECONDS

    losses = max(losses, 1)
    spent_on = "one command" if losses == 1 else f"{losses} losses ({COMMAND_SECONDS:g} s each)"
    return budget(COMMAND_SECONDS * losses, spent_on)


@cli.command(short_help="Write a LaTeX handout (and PDF).")
@click.argument("problems", nargs=-1, required=True, metavar="PROBLEM...")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Where to write the .tex (default: the first problem's id + .tex).",
)
@click.option("--pdf", is_flag=True, help="Also build the PDF with latexmk beside the .tex.")
@click.option(
    "--variants",
    type=click.IntRange(0, 500),
    default=0,
    metavar="N",
    help="Write N exercise variants per problem instead of the worked handout.",
)
@click.option(
    "--seed", type=int, metavar="S", help="Seed of the variants' numbers (with --variants; 0)."
)
@click.option("--answers", is_flag=True, help="Add an answer key for the variants.")
@click.option(
    "--template",
    metavar="FILE",
    help="A Jinja2 LaTeX template to use instead of "
    "the shipped one (copy tutor/templates/handout.tex.j2 to start).",
)
@click.option(
    "--graph",
    "graph",
    is_flag=True,
    help="Add each problem's computation graph (the backward pass, node by node).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("latex", "json")),
    default="latex",
    show_default=True,
    help="json: the variants' answer key as JSON Lines (needs --variants), "
    "to standard output or to -o FILE.jsonl.",
)
def handout(
    problems: tuple[str, ...],
    output: str | None,
    pdf: bool,
    variants: int,
    seed: int | None,
    answers: bool,
    template: str | None,
    graph: bool,
    fmt: str,
) -> None:
    """Write a LaTeX handout of PROBLEM(s); with --pdf, build the PDF too.

    With --answers the key is also written alone to FILE-key.tex (and its PDF),
    so that the students' sheets can be printed without it.
    """
    from pathlib import Path

    from ._files import build_pdf, check_target, write_atomic
    from .render.handout import render, template_source

    if answers and not variants:
        raise UsageError(
            "--answers goes with --variants N: the worked handout already shows every answer"
        )
    if seed is not None and not variants:
        raise UsageError(
            "--seed goes with --variants N: the worked handout uses the file's own numbers"
        )
    seed = seed or 0
    if graph and variants:
        raise UsageError(
            "--graph adds a section to the worked handout; it does not go with --variants"
        )
    if fmt == "json":
        _handout_key(problems, output, pdf, variants, seed, template)
        return
    loaded = [load(p) for p in problems]
    source = template_source(template)
    if output == "":
        raise UsageError("-o '': give the name of a file ending in .tex")
    target = Path(f"{loaded[0].id}.tex" if output is None else output)
    if target.suffix != ".tex":
        raise UsageError(f"-o {target}: give a file name ending in .tex")
    check_target(target)
    if pdf:
        check_target(target.with_suffix(".pdf"))
    from ._rehearsal import rehearse_handout

    # One variant shows the work of each: the rest are the same loss with other numbers.
    within_time_limit(
        rehearse_handout,
        loaded,
        min(variants, 1),
        seed,
        answers,
        graph,
        source,
        fmt,
        what="writing the handout",
    )
    from .autodiff import TensorFlowBackend
    from .handout import build

    with _budget_per_loss(len(loaded) * max(variants, 1)):
        document = build(
            loaded, TensorFlowBackend(), variants=variants, seed=seed, answers=answers, graph=graph
        )
        tex = render(document, source)
        key_target = target.with_name(f"{target.stem}-key.tex")
        key = render(document, source, key_only=True) if answers else None
    write_atomic(target, tex.encode("utf-8"))
    _write(f"wrote {target}\n")
    if key is not None:
        write_atomic(key_target, key.encode("utf-8"))
        _write(f"wrote {key_target}\n")
    if pdf:
        build_pdf(tex, target.with_suffix(".pdf"))
        _write(f"wrote {target.with_suffix('.pdf')}\n")
        if key is not None:
            build_pdf(key, key_target.with_suffix(".pdf"))
            _write(f"wrote {key_target.with_suffix('.pdf')}\n")


def _handout_key(
    problems: tuple[str, ...],
    output: str | None,
    pdf: bool,
    variants: int,
    seed: int,
    template: str | None,
) -> None:
    """Print (or write to -o FILE.jsonl) the answer key of the variants as JSON Lines."""
    from pathlib import Path

    if not variants:
        raise UsageError(
            "--format json prints the answer key of the variants; add --variants N (and --seed S)"
        )
    for flag, given in (("--pdf", pdf), ("--template", template is not None)):
        if given:
            raise UsageError(f"--format json writes JSON Lines; {flag} is for the LaTeX handout")
    if output == "":
        raise UsageError("-o '': give the name of a file ending in .jsonl, or no -o for the screen")
    target = None if output is None else Path(output)
    if target is not None and target.suffix != ".jsonl":
        raise UsageError(f"-o {target}: give a file name ending in .jsonl with --format json")
    if target is not None:
        from ._files import check_target

        check_target(target)
    loaded = [load(p) for p in problems]
    from ._rehearsal import rehearse_handout

    within_time_limit(
        rehearse_handout,
        loaded,
        min(variants, 1),
        seed,
        True,
        False,
        "",
        "json",
        what="writing the answer key",
    )
    from .autodiff import TensorFlowBackend
    from .handout import build
    from .render.jsonl import answer_key

    with _budget_per_loss(len(loaded) * variants):
        document = build(loaded, TensorFlowBackend(), variants=variants, seed=seed, answers=True)
        lines = answer_key(document.exercises)
    if target is None:
        _write(lines)
        return
    from ._files import write_atomic

    write_atomic(target, lines.encode("utf-8"))
    _write(f"wrote {target}\n")


def _json_run(derivation: Derivation, backend: Any) -> Trajectory:
    """Write a run as JSON Lines, each piece as soon as it is computed; return the run.

    Once an update is written, the lines end with a summary whatever happens:
    on an error its status is ``error``, on Ctrl-C ``interrupted``, each with
    the reason, and the error then goes on to its one line on standard error.
    """
    from .descent import descend
    from .render import jsonl

    written = 0

    def write(columns: Columns, first: int) -> None:
        nonlocal written
        _write("".join(line + "\n" for line in jsonl.updates(columns, first)))
        written = first + len(columns) - 1
        if pressed.is_set():  # Ctrl-C acts here, between whole lines
            raise KeyboardInterrupt

    def stop(status: str, reason: str) -> None:
        if written:
            _write(jsonl.stopped(derivation.problem.id, status, reason, written) + "\n")

    try:
        with _ctrl_c_deferred() as pressed:
            traj = descend(derivation, backend, on_updates=write)
        _write(jsonl.summary(traj) + "\n")
    except KeyboardInterrupt:
        stop("interrupted", f"stopped by Ctrl-C after update {written}")
        raise
    except (_ReaderGone, _OutputFailed):
        raise
    except Exception as exc:
        stop("error", " ".join(str(exc).split()) or type(exc).__name__)
        raise
    return traj


#: The most updates a rich run lists in its closing table.
TABLE_ROWS = 200


def _streamed_run(derivation: Derivation, backend: Any, fmt: str, show_all: bool) -> Trajectory:
    """Print a run in ``fmt`` (rich, plain or seed) as it is computed; return the run.

    The derivation is printed already. Each piece of updates is written as soon
    as it is computed, so memory holds a piece of text, never the run's. On a
    terminal a run longer than the screen shows a digest (unless ``show_all``)
    and, in rich, a progress bar. Ctrl-C stops at the next piece, prints what was
    computed and exits with 130.
    """
    from .descent import descend

    printer = _RunPrinter(derivation, fmt, show_all)
    printer.heading()
    try:
        with _ctrl_c_deferred() as pressed, printer.progress_shown():
            printer.pressed = pressed
            traj = descend(derivation, backend, on_updates=printer.piece)
            printer.tail()
    except KeyboardInterrupt:
        printer.tail()
        printer.interrupted()
        sys.exit(130)
    printer.closing(traj)
    return traj


class _RunPrinter:
    """Writes a run's pieces as they come: every update, or a terminal's digest of them."""

    def __init__(self, derivation: Derivation, fmt: str, show_all: bool) -> None:
        import shutil

        from .render import stream

        self.derivation, self.fmt = derivation, fmt
        self.run = stream.RunText(derivation)
        steps = derivation.problem.steps
        long = sys.stdout.isatty() and steps > shutil.get_terminal_size().lines
        self.digest = stream.Digest.of(steps) if long and not show_all and fmt != "seed" else None
        self.console = _console() if fmt == "rich" else None
        self.progress = _progress(self.console, steps) if fmt == "rich" and long else None
        self.pressed = threading.Event()
        self.shown_until = 0  # the last update written
        self.table: list[Any] = []  # the updates a rich run's closing table lists
        self.kept: tuple[Columns, int] | None = None  # the last updates, for the digest's end
        self.last: tuple[Columns, int] | None = None  # the last piece and its first update

    def show(self, renderable: Any) -> None:
        """Print a rich renderable, unwrapped lines as they are (a LaTeX line stays whole)."""
        try:
            self.console.print(renderable, crop=False)  # type: ignore[union-attr]
        except BrokenPipeError as exc:
            raise _ReaderGone from exc
        except OSError as exc:
            raise _OutputFailed(exc.strerror or str(exc)) from None

    def heading(self) -> None:
        """Write the run's first line and the closed forms its updates substitute into."""
        from .render import terminal, text

        if self.fmt == "seed":
            return
        wrt = tuple(p.symbol for p in self.derivation.partials)
        lines = [text.descent_heading(self.derivation.problem, wrt), *self.run.header()]
        if self.console is not None:
            self.show(terminal.lines(lines))
        else:
            _write("\n" + "\n".join(lines) + "\n")

    @contextlib.contextmanager
    def progress_shown(self) -> Iterator[None]:
        """Show the progress bar (when there is one) while the block runs."""
        if self.progress is None:
            yield
            return
        self.progress.start()
        try:
            yield
        finally:
            self.progress.stop()

    def piece(self, columns: Columns, first: int) -> None:
        """Write a piece of updates (those the digest shows); ``first`` is its first update."""
        from .render import stream, text

        self.last = (columns, first)
        if self.fmt == "seed":
            _write(text.seed_lines(columns))
        elif self.digest is None:
            self.updates(columns, first, list(range(len(columns))))
        else:
            self.updates(columns, first, self.digest.rows(first, len(columns)))
            self.kept = stream.last_rows(self.kept, columns, first, self.digest.tail)
        if self.progress is not None:
            self.progress.update(self.progress.task_ids[0], completed=first + len(columns) - 1)
        if self.pressed.is_set():  # Ctrl-C acts here, between whole updates
            raise KeyboardInterrupt

    def updates(self, columns: Columns, first: int, rows: list[int]) -> None:
        """Write the chosen rows of a piece, after a line for any updates left out."""
        from .render import stream, terminal

        if not rows:
            return
        out = []
        for row, block in zip(rows, self.run.blocks(columns, first, rows), strict=True):
            if first + row > self.shown_until + 1:
                out.append(stream.gap(self.shown_until, first + row))
            out.append(block)
            self.shown_until = first + row
        if self.console is None:
            _write("".join(b if b.startswith("\n") else "\n" + b for b in out))
            return
        if len(self.table) <= TABLE_ROWS:
            self.table.extend(stream.updates_of(columns, first, rows))
        self.show(terminal.updates(out))

    def tail(self) -> None:
        """Write the digest's last updates of a run that has stopped, those not yet written."""
        if self.kept is None:
            return
        columns, first = self.kept
        self.kept = None
        rows = [i for i in range(len(columns)) if first + i > self.shown_until]
        self.updates(columns, first, rows)

    def interrupted(self) -> None:
        """Write the line that says how far a run stopped by Ctrl-C got."""
        from .render import text

        end = text.interrupted(self.derivation.problem, self.last)
        if self.console is not None:
            self.show(Text("\n" + end, style="yellow"))
        elif self.fmt == "seed":
            _error(end)  # standard output keeps the notebook's lines only
        else:
            _write("\n" + end + "\n")

    def closing(self, traj: Trajectory) -> None:
        """Write what follows the updates: the start's gradient when none was taken, the
        table (rich), the loss by update (plain), the summary."""
        from .render import terminal, text

        if self.fmt == "seed":
            return
        start = ["", *text.start_block(traj)] if not traj.steps else []
        if self.console is None:
            _write("".join(line + "\n" for line in [*start, *text.closing(traj)]))
            return
        if start:
            self.show(Text("\n".join(start), style="cyan"))
        self.show(Text(""))
        self.show(terminal.closing(traj, self.table if len(self.table) <= TABLE_ROWS else []))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _progress(console: Any, total: int, what: str = "updates") -> Any:
    """Return a rich progress bar of ``total`` ``what`` that vanishes when it stops."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    progress.add_task("", total=total)
    return progress


@cli.command("notebook", short_help="Write a Jupyter notebook of the descent.")
@click.argument("problem")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="FILE.ipynb",
    help="Where to write the notebook (a file name ending in .ipynb).",
)
@click.option(
    "--variables",
    type=click.Choice(VARIABLE_MODES),
    help="tensor: convert_to_tensor + tape.watch; variable: tf.Variable + assign_sub.",
)
def notebook_command(problem: str, output: str, variables: str | None) -> None:
    """Write a notebook of PROBLEM in the teaching notebook's style: the derivation in
    LaTeX, the tensors, one update with tf.GradientTape, the descent printing the
    lines 'tutor step --format seed' prints, and tutor's comparison with SymPy.

    The notebook needs TensorFlow and tutor where it runs; writing it needs
    nbformat (pip install 'tutor[notebook]').
    """
    from pathlib import Path

    from ._files import check_target, write_atomic
    from ._rehearsal import notebook_text
    from .problem import resolve

    target = Path(output)
    if target.suffix != ".ipynb":
        raise UsageError(f"-o {target}: give the name of a file ending in .ipynb")
    check_target(target)  # a folder, a link, a name too long: each refused with its reason
    loaded = _apply_overrides(load(problem), (), None, None, {}, variables, None)
    source = resolve(problem).read_text(encoding="utf-8")
    from .render.notebook import _nbformat

    _nbformat()  # here, so that a missing nbformat is told before any work
    text = within_time_limit(notebook_text, loaded, source, what="writing the notebook")
    write_atomic(target, text.encode("utf-8"))
    _write(f"wrote {target}\n")


_PROMPT = "[Enter] next update   [a] all the rest   [q] quit "


def _step_through(traj: Any, rich: bool) -> None:
    """Show the closed forms, then one update per key press (the derivation is shown)."""
    from .render import terminal, text
    from .render.stream import RunText

    show = _print_rich if rich else (lambda t: _write(t + "\n"))
    run = RunText(traj.derivation)
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    heading = [text.descent_heading(traj.problem, wrt), *run.header()]
    show(terminal.lines(["", *heading]) if rich else "\n" + "\n".join(heading))
    if not traj.steps:
        start = ["", *text.start_block(traj)]
        show(Text("\n".join(start)) if rich else "\n".join(start))
    run_all = False
    for index in range(traj.steps):
        block = run.blocks(traj.columns, 1, [index])
        show(terminal.updates(block) if rich else "\n" + block[0].rstrip("\n"))
        if run_all or index == traj.steps - 1:
            continue
        try:
            key = _ask()
        except (click.Abort, KeyboardInterrupt):  # Ctrl-C at the prompt
            _write(f"\ninterrupted after update {index + 1} of {traj.steps} (stopped by Ctrl-C)\n")
            _write(text.summary(traj) + "\n")
            sys.exit(130)
        if key == "q":
            _write("Stopped.\n")
            return
        run_all = key == "a"
    end = text.end_curvature(traj)
    _write((end + "\n" if end else "") + text.summary(traj) + "\n")


#: Keys read but not yet acted on: keys typed quickly arrive in one read.
_TYPED_AHEAD: list[str] = []


def _key() -> str:
    """Return the next key pressed, in order, one at a time."""
    while not _TYPED_AHEAD:
        _TYPED_AHEAD.extend(click.getchar())
    return _TYPED_AHEAD.pop(0)


def _ask() -> str:
    """Return "next", "a" or "q" from the keyboard, ignoring other keys."""
    while True:
        _write_raw(_PROMPT)
        key = _key()
        _write_raw("\r" + " " * len(_PROMPT) + "\r")
        if key in ("\r", "\n", " "):
            return "next"
        if key.lower() in ("a", "q"):
            return key.lower()
        if key in ("\x03", "\x04"):
            return "q"


_FORMATS_GRAPH = ("rich", "plain", "latex", "json", "dot")


@cli.command(short_help="Show the loss as a computation graph, backward pass included.")
@click.argument("problem")
@click.option(
    "--at",
    "at",
    type=click.IntRange(0, MAX_STEPS),
    default=0,
    metavar="STEP",
    help="Show the graph after STEP updates of the descent (default 0: the starting values).",
)
@click.option(
    "--row",
    type=click.IntRange(1, None),
    default=1,
    metavar="I",
    help="With [data]: the row whose graph is shown (1-based, default 1).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    callback=_parse_set,
    metavar="SYM=VALUE",
    help="Start SYM at VALUE instead of the file's value (repeatable).",
)
@click.option("--dtype", type=click.Choice(DTYPES), help="Floating-point type. Default: float32.")
@click.option(
    "--no-tf",
    "no_tf",
    is_flag=True,
    help="SymPy's side only: do not import TensorFlow (with --at 0).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS_GRAPH),
    help="Output format. Default: rich on a terminal, plain when piped or NO_COLOR is set.",
)
def graph(
    problem: str,
    at: int,
    row: int,
    sets: dict[str, float],
    dtype: str | None,
    no_tf: bool,
    fmt: str | None,
) -> None:
    """Show PROBLEM's loss as a computation graph: each node's value, local derivative
    and gradient ∂L/∂node, from SymPy's closed forms and from TensorFlow's tape.

    Exit status 1 when TensorFlow's and SymPy's gradients disagree beyond the
    verification bound at some node.
    """
    loaded = _apply_overrides(load(problem), (), None, None, sets, None, dtype)
    if no_tf and at:
        raise UsageError(
            f"--at {at} needs TensorFlow, whose gradient drives the descent; "
            "drop --no-tf or use --at 0"
        )
    if not loaded.data and row != 1:
        raise UsageError(
            f"--row {row}: {loaded.id} has no [data] rows; drop --row (it picks a data row)"
        )
    if loaded.data and row > loaded.rows:
        raise UsageError(
            f"--row {row}: {loaded.id} has {loaded.rows} data rows; give 1 to {loaded.rows}"
        )
    fmt = fmt or ("rich" if _use_rich() else "plain")
    from ._rehearsal import rehearse_graph

    row = row if loaded.data else 1
    within_time_limit(rehearse_graph, loaded, row - 1, fmt, what="building the computation graph")
    built = _graph_at(loaded, at, row - 1, not no_tf)
    from .render import graph as render

    if fmt == "rich":
        _print_rich(render.rich(built))
    elif fmt == "plain":
        _write(render.text(built))
    elif fmt == "latex":
        _write(render.latex(built))
    elif fmt == "json":
        _write(render.to_json(built))
    else:
        _write(render.dot(built))
    if built.failures:
        _error("tutor graph: TensorFlow and SymPy disagree beyond the bound: " + built.failures[0])
        sys.exit(1)


def _graph_at(problem: Problem, at: int, row: int, autodiff: bool) -> Any:
    """Return the computation graph at the values before update ``at`` + 1 of the descent."""
    from .graph import build

    derivation = derive(problem)
    values = dict(problem.values)
    if at:
        from .autodiff import TensorFlowBackend
        from .errors import DescentError

        taken = 0
        with contextlib.closing(TensorFlowBackend().stream(problem, problem.values, at)) as run:
            for piece in run:
                if taken + len(piece) >= at:
                    after: list[float] = piece.updated[at - taken - 1].tolist()
                    values.update(dict(zip(piece.wrt, after, strict=True)))
                    break
                taken += len(piece)
        if not all(math.isfinite(v) for v in values.values()):
            shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            raise DescentError(
                f"--at {at}: the descent reached non-finite values by then ({shown}); "
                "choose a smaller --at or learning rate"
            )
    return build(
        problem,
        values,
        at=at,
        row=row if problem.data else 0,
        autodiff=autodiff,
        derivation=derivation,
    )


@cli.command(short_help="Validate problem files without running them.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
def check(files: tuple[str, ...]) -> None:
    """Check problem files (or shipped ids) without running them: OK, or every error."""
    from .check import check_files

    outcome = check_files(files)
    _write(outcome.text)
    if outcome.status:
        _error(outcome.verdict)
        sys.exit(outcome.status)


@cli.command("verify")
@click.argument("problems", nargs=-1, metavar="[PROBLEM]...")
@click.option(
    "--examples",
    type=int,
    metavar="N",
    help="Points Hypothesis tries per partial (default 100; shrinks a disagreement).",
)
@click.option(
    "--batch",
    type=int,
    metavar="N",
    help="Compare at N uniform points instead: NumPy float64 against one TF batch.",
)
@click.option("--dtype", type=click.Choice(DTYPES), help="Default: each problem's own dtype.")
@click.option(
    "--variables",
    type=click.Choice((*VARIABLE_MODES, "both")),
    default="both",
    show_default=True,
    help="tensor: tape.watch; variable: tf.Variable.",
)
@click.option("--seed", type=int, metavar="S", help="Seed of the points (default: random, shown).")
def verify_command(
    problems: tuple[str, ...],
    examples: int | None,
    batch: int | None,
    dtype: str | None,
    variables: str,
    seed: int | None,
) -> None:
    """Check on random points that SymPy's gradient and TF's GradientTape agree.

    With no PROBLEM, every shipped problem. Each partial passes when
    |TF − SymPy| ≤ γ_k·S + floor at every point; kinks, singular points and
    overflow are reported, not counted. Exit status 1 when they disagree.
    """
    from ._rehearsal import rehearse_verify
    from .render import verify as shown
    from .verify import verify

    loaded = [load(p) for p in problems or shipped_ids()]
    styles = VARIABLE_MODES if variables == "both" else (variables,)
    modes = (batch is not None) + (examples is not None or batch is None)
    total = sum(len(p.wrt) for p in loaded) * len(styles) * modes
    # Each partial's report is printed as soon as it is made: that is the progress
    # when piped; on a terminal rich's bar counts the partials too.
    progress = _progress(_console(), total, "partials") if _use_rich() else None
    opened: list[str] = []

    def report(r: Any) -> None:
        # The legend comes with the first report, once the arguments have been checked.
        lines = [shown.LEGEND, ""] if not opened else []
        if not opened or opened[-1] != r.problem:
            lines.append(shown.heading(r))
        opened.append(r.problem)
        block = "\n".join([*lines, *shown.partial_lines(r)])
        if progress is None:
            _write(block + "\n")
            return
        progress.console.print(Text(block), soft_wrap=True)  # long lines whole, as piped
        progress.update(progress.task_ids[0], advance=1, description=f"{r.problem} ∂L/∂{r.symbol}")

    with _budget_per_loss(len(loaded)):
        within_time_limit(rehearse_verify, loaded, what="deriving the gradients and their bounds")
        if progress is not None:
            progress.start()
        try:
            reports = verify(
                loaded,
                examples=examples,
                size=batch,
                dtype=dtype,
                variables=styles,
                seed=seed,
                on_report=report,
            )
        finally:
            if progress is not None:
                progress.stop()
    _write(shown.verdict(reports) + "\n")
    if not all(r.passed for r in reports):
        _error("tutor verify: TensorFlow and SymPy disagree beyond the bound")
        sys.exit(1)


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[threading.Event]:
    """Turn Ctrl-C into an event the block checks where it is safe to stop.

    A KeyboardInterrupt raised wherever the main thread happens to be can cut
    a line of output in half; the block raises it itself, between lines. Off
    the main thread (where no handler can be set) Ctrl-C acts as usual.
    """
    pressed = threading.Event()
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.set())
    except ValueError:
        yield pressed
        return
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


class _Terminated(Exception):
    """The process was asked to stop (SIGTERM); raised so that cleanups run."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


@contextlib.contextmanager
def _terminable() -> Iterator[None]:
    """Turn SIGTERM into an exception while the command runs, so that temporary
    folders are removed and child processes killed as on any other error."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (a notebook, a test runner's worker)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command("practice", short_help="Practise: derive and update, the tutor checks.")
@click.argument("problem")
@click.option(
    "--wrt",
    "wrt",
    multiple=True,
    metavar="SYM",
    help="Ask for ∂L/∂SYM (repeat for several). Default: the file's wrt.",
)
@click.option(
    "--updates",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    metavar="N",
    help="Updates of gradient descent to compute by hand after the derivative, 0 to 100.",
)
@click.option(
    "--seed",
    type=int,
    metavar="S",
    help="Draw fresh numbers in the problem's [verify] box (as handout variants do).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: the questions go to standard error and the practice record, one JSON "
    "object, to standard output.",
)
def practice_command(
    problem: str, wrt: tuple[str, ...], updates: int, seed: int | None, fmt: str
) -> None:
    """Practise PROBLEM: type ∂L/∂w, then the first updates; each answer is checked.

    Answers are read as loss expressions are ('**' for powers, '2*w' for
    products, 'log' for ln); numbers may be written as arithmetic. Type hint,
    step or show for help (each is counted). Ctrl-D ends early, Ctrl-C
    interrupts (exit 130); both print the summary.
    """
    loaded = _apply_overrides(load(problem), wrt, None, updates, {}, None, None)
    if seed is not None:
        from .variants import draw

        loaded = draw(loaded, count=1, seed=seed)[0].problem
    derivation = derive(loaded)
    from ._rehearsal import rehearse_practice

    within_time_limit(rehearse_practice, derivation, updates, what="preparing the questions")
    say = _say_to(err=fmt == "json")
    items: list[Any] = []
    status = "completed"
    try:
        _practise(derivation, updates, items, say)
    except EOFError:
        status = "ended"
    except KeyboardInterrupt:
        status = "interrupted"
    from .render import practice as render

    say(render.summary(items, status) + "\n")
    if fmt == "json":
        _write(render.as_json(loaded, seed, items, status) + "\n")
    if status == "interrupted":
        sys.exit(130)


def _say_to(err: bool) -> Any:
    """Return the function that writes the dialogue: to standard error when JSON is on stdout."""
    if not err:
        return _write

    def say(text: str) -> None:
        click.echo(text, nl=False, err=True)

    return say


def _practise(derivation: Any, updates: int, items: list[Any], say: Any) -> None:
    """Ask every question in turn, appending each item as it is answered (raises on Ctrl-D/C)."""
    from . import practice
    from .render import practice as render

    say(_plain(render.intro(derivation, updates)) + "\n")
    for question in practice.derivative_questions(derivation):
        _ask_item(practice.Item(question), derivation, items, say)
    if not updates:
        return
    from .autodiff import TensorFlowBackend
    from .descent import descend

    traj = descend(derivation, TensorFlowBackend())
    for question in practice.update_questions(traj):
        _ask_item(practice.Item(question), derivation, items, say)
    if traj.status == "diverged":
        say(f"The descent stopped: {traj.reason}.\n")


def _ask_item(item: Any, derivation: Any, items: list[Any], say: Any) -> None:
    """Ask one question until it is answered right; the item is kept in ``items`` as it changes."""
    from . import practice
    from .render import practice as render

    items.append(item)
    say(render.question(item.question, derivation) + "\n")
    while not item.solved:
        say(render.PROMPT)
        line = sys.stdin.readline()
        if not line:
            say("\n")
            raise EOFError
        if not sys.stdin.isatty():
            # Answers read from a file or a pipe are shown, so the transcript reads as a dialogue.
            say(_plain(line.rstrip("\n")) + "\n")
        with budget():  # each answer is checked within a budget of its own
            item, reply = practice.respond(item, line, derivation)
        items[-1] = item
        say(_plain(render.reply(item, reply, derivation)) + "\n")


def _plain(text: str) -> str:
    """Return text safe for a terminal: control characters (ESC) removed, lines kept."""
    return clean(text)


_FORMATS_PITFALLS = ("rich", "plain", "json", "latex")


@cli.command(short_help="The GradientTape pitfall lab: each classic None, shown and fixed.")
@click.argument("name", required=False)
@click.argument("problem", required=False)
@click.option(
    "--problem",
    "problem_option",
    metavar="PROBLEM",
    help="The problem whose loss the pitfall is applied to (same as the PROBLEM argument). "
    "Default: seed-w.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS_PITFALLS),
    help="Output format; latex is a standalone document. "
    "Default: rich on a terminal, plain when piped.",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write the LaTeX document to FILE (.tex) instead of printing it.",
)
@click.option("--pdf", is_flag=True, help="Also build the PDF beside the -o FILE.")
def pitfalls(
    name: str | None,
    problem: str | None,
    problem_option: str | None,
    fmt: str | None,
    output: str | None,
    pdf: bool,
) -> None:
    """Show a GradientTape pitfall on PROBLEM's loss, run live, beside SymPy's gradient.

    Without NAME, list the pitfalls (no TensorFlow needed); NAME 'all' runs every
    one. Each shows the code in the notebook's style, what TensorFlow returns,
    raises or warns when it runs now, SymPy's gradient, why they differ, and the
    fixed code with its result. --format latex (or -o FILE.tex) writes all of it as
    a standalone document; --pdf builds it. Exit status 1 when a fixed result does
    not agree with SymPy.

    \b
    Examples:
      tutor pitfalls
      tutor pitfalls integer-dtype
      tutor pitfalls unwatched-tensor least-squares
      tutor pitfalls all -o pitfalls.tex --pdf
    """
    from pathlib import Path

    from . import pitfalls as lab
    from .render import pitfalls as show

    if problem and problem_option and problem != problem_option:
        raise UsageError(
            f"the problem is given twice ({problem} and --problem {problem_option}); give one"
        )
    spec = problem or problem_option
    if output is not None:
        if fmt not in (None, "latex"):
            raise UsageError(f"-o writes the LaTeX document; it does not go with --format {fmt}")
        fmt = "latex"
        target = Path(output)
        if target.suffix != ".tex":
            raise UsageError(f"-o {target}: give a file name ending in .tex")
        if not target.resolve().parent.is_dir():
            raise UsageError(f"-o {target}: the folder {target.parent} does not exist")
    elif pdf:
        raise UsageError("--pdf builds the PDF beside -o FILE.tex; add -o FILE.tex")
    fmt = fmt or ("rich" if _use_rich() else "plain")
    if name is None and fmt != "latex":
        if spec is not None:
            load(spec)  # a wrong problem is reported even when only listing
        _write(show.listing_json(lab.PITFALLS) if fmt == "json" else show.listing(lab.PITFALLS))
        return
    names = [p.name for p in lab.PITFALLS] if name in (None, "all") else [lab.find(name).name]
    loaded = load(spec) if spec is not None else None
    from ._rehearsal import rehearse_pitfalls

    within_time_limit(rehearse_pitfalls, names, loaded, what="working out SymPy's gradients")
    labs = [lab.run(n, loaded) for n in names]
    if fmt == "latex":
        tex = show.document(labs)
        if output is None:
            _write(tex)
        else:
            from ._files import build_pdf, write_atomic

            write_atomic(target, tex.encode("utf-8"))
            _write(f"wrote {target}\n")
            if pdf:
                build_pdf(tex, target.with_suffix(".pdf"))
                _write(f"wrote {target.with_suffix('.pdf')}\n")
    elif fmt == "json":
        _write("".join(show.lab_json(one) for one in labs))
    elif fmt == "rich":
        for one in labs:
            _print_rich(show.lab_rich(one))
    else:
        _write(show.labs_text(labs))
    failed = [one.pitfall.name for one in labs if not one.agrees]
    if failed:
        _error(
            f"tutor pitfalls: the fixed code of {', '.join(failed)} does not give SymPy's "
            "gradient within the rounding bound"
        )
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failed check, 2 bad input, 3 tool)."""
    if sys.stdout is None:  # started with standard output closed ('>&-')
        _error("tutor: error: standard output is closed; give the command somewhere to write")
        return 2
    try:
        return _main(argv)
    except _OutputFailed as exc:  # help or a usage message that could not be written
        _error(
            f"tutor: error: cannot write to standard output: {exc}; free space or fix the target"
        )
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT):
            raise
        why = exc.strerror or str(exc)
        _error(
            f"tutor: error: cannot write to standard output: {why}; free space or fix the target"
        )
        return 2


_FREE = "free space or fix the target"


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with _terminable(), budget():
            cli.main(args=args, prog_name="tutor", standalone_mode=False)
    except _Terminated:
        _error("tutor: terminated")
        return 143
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        # A bare 'tutor' (or 'tutor handout') is a request for help, not a mistake.
        _write((exc.ctx.get_help() if exc.ctx else cli.get_help(click.Context(cli))) + "\n")
        return 0
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "tutor"
        hint = f" (see '{command} --help')" if "--help" not in exc.format_message() else ""
        _error(f"{command}: error: {exc.format_message()}{hint}")
        return 2
    except click.Abort:
        _error("tutor: aborted")
        return 130
    except TutorError as exc:
        _error(f"tutor: error: {exc.message}")
        return exc.exit_status
    except _OutputFailed as exc:
        _error(
            f"tutor: error: cannot write to standard output: {exc}; free space or fix the target"
        )
        return 2
    except (_ReaderGone, BrokenPipeError):
        # The reader went away (e.g. '| head'): stop quietly with 0, as cat does,
        # and point standard output at nothing so that no final flush fails.
        with contextlib.suppress(OSError, ValueError):  # captured output has no file
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run() -> None:
    """Entry point of the ``tutor`` script."""
    sys.exit(main())
