"""The ``tutor`` command line: the only module that prints or writes files."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.text import Text

from . import __version__
from .errors import TutorError, UsageError
from .model import Columns, Problem
from .problem import DTYPES, MAX_STEPS, VARIABLE_MODES, load, shipped_ids
from .symbolic import derive, unknown_symbol_message

_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _use_rich() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _ReaderGone(Exception):
    """Standard output's reader went away (``| head``).

    Not an OSError, so that click passes it on instead of exiting with 1.
    """


def _write(text: str) -> None:
    try:
        click.echo(text, nl=False)
    except BrokenPipeError as exc:
        raise _ReaderGone from exc


def _print_rich(renderable: Any) -> None:
    from rich.console import Console

    try:
        Console(highlight=False).print(renderable)
    except BrokenPipeError as exc:
        raise _ReaderGone from exc


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
    from ._numbers import clean

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
        for name, value in sets.items():
            if name in values:
                values[name] = value
            elif name in constants:
                constants[name] = value
            else:
                known = ", ".join(sorted([*values, *constants]))
                raise UsageError(
                    f"--set {name}=…: '{name}' is not a symbol with a value in {problem.id} "
                    f"(known: {known}); data columns cannot be set"
                )
        changes.update(values=values, constants=constants)
    options: tuple[tuple[str, object], ...] = (
        ("learning_rate", lr),
        ("steps", steps),
        ("variables", variables),
        ("dtype", dtype),
    )
    for key, option in options:
        if option is not None:
            changes[key] = option
    return dataclasses.replace(problem, **changes)


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
def show(problem: str, wrt: tuple[str, ...], fmt: str | None) -> None:
    """Show the derivation of every partial of PROBLEM's loss."""
    loaded = _apply_overrides(load(problem), wrt, None, None, {}, None, None)
    derivation = derive(loaded)
    fmt = fmt or ("rich" if _use_rich() else "plain")
    from .render import jsonl, latex, terminal, text

    if fmt == "rich":
        _print_rich(terminal.derivation(derivation))
    elif fmt == "plain":
        _write(text.derivation(derivation))
    elif fmt == "latex":
        _write(latex.derivation(derivation) + "\n")
    else:
        _write(jsonl.derivation(derivation))


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
    help="tensor: convert_to_tensor + tape.watch; variable: tf.Variable + assign_sub.",
)
@click.option("--dtype", type=click.Choice(DTYPES), help="Floating-point type. Default: float32.")
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
    "--format",
    "fmt",
    type=click.Choice(_FORMATS_STEP),
    help="Output format; 'seed' prints the notebook's line per update. "
    "Default: rich on a terminal, plain when piped.",
)
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
    fmt: str | None,
) -> None:
    """Run gradient descent on PROBLEM, each update beside its derivation."""
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
    loaded = _apply_overrides(load(problem), wrt, lr, steps, sets, variables, dtype)
    derivation = derive(loaded)
    from .autodiff import TensorFlowBackend
    from .descent import descend

    fmt = fmt or ("rich" if _use_rich() else "plain")
    from .render import jsonl, latex, terminal, text

    if show_code:
        from .render.code import update_code

        _write(update_code(loaded) + "\n")
    if fmt == "json":
        # Each piece of a long run is written while the next is computed.
        def write(columns: Columns, first: int) -> None:
            _write("".join(line + "\n" for line in jsonl.updates(columns, first)))

        traj = descend(derivation, TensorFlowBackend(), on_updates=write)
        _write(jsonl.summary(traj) + "\n")
    else:
        traj = descend(derivation, TensorFlowBackend())
    if interactive:
        _step_through(traj, rich=fmt == "rich")
    elif fmt == "rich":
        _print_rich(terminal.trajectory(traj))
    elif fmt == "plain":
        _write(text.trajectory(traj))
    elif fmt == "seed":
        _write(text.seed(traj))
    elif fmt == "latex":
        _write(latex.trajectory(traj))
    if traj.status == "diverged":
        click.echo(f"tutor step: the descent diverged: {traj.reason}.", err=True)
        sys.exit(1)


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
@click.option("--seed", type=int, default=0, metavar="S", help="Seed of the variants' numbers.")
@click.option("--answers", is_flag=True, help="Add an answer key for the variants.")
@click.option(
    "--template",
    metavar="FILE",
    help="A Jinja2 LaTeX template to use instead of "
    "the shipped one (copy tutor/templates/handout.tex.j2 to start).",
)
def handout(
    problems: tuple[str, ...],
    output: str | None,
    pdf: bool,
    variants: int,
    seed: int,
    answers: bool,
    template: str | None,
) -> None:
    """Write a LaTeX handout of PROBLEM(s); with --pdf, build the PDF too."""
    from pathlib import Path

    from ._files import build_pdf, write_atomic
    from .render.handout import render, template_source

    if answers and not variants:
        raise UsageError(
            "--answers goes with --variants N: the worked handout already shows every answer"
        )
    loaded = [load(p) for p in problems]
    source = template_source(template)
    target = Path(output or f"{loaded[0].id}.tex")
    if target.suffix != ".tex":
        raise UsageError(f"-o {target}: give a file name ending in .tex")
    if not target.resolve().parent.is_dir():
        raise UsageError(f"-o {target}: the folder {target.parent} does not exist")
    from .autodiff import TensorFlowBackend
    from .handout import build

    document = build(loaded, TensorFlowBackend(), variants=variants, seed=seed, answers=answers)
    tex = render(document, source)
    write_atomic(target, tex.encode("utf-8"))
    _write(f"wrote {target}\n")
    if pdf:
        build_pdf(tex, target.with_suffix(".pdf"))
        _write(f"wrote {target.with_suffix('.pdf')}\n")


_PROMPT = "[Enter] next update   [a] all the rest   [q] quit "


def _step_through(traj: Any, rich: bool) -> None:
    """Show the derivation, then one update per key press."""
    from .render import terminal, text

    show = _print_rich if rich else (lambda t: _write(t + "\n"))
    show(terminal.derivation(traj.derivation) if rich else text.derivation(traj.derivation))
    if not traj.updates:
        show(Text("\n".join(text.start_block(traj))) if rich else "\n".join(text.start_block(traj)))
    run_all = False
    for index, update in enumerate(traj.updates):
        block = "\n".join(text.update_block(traj, update))
        show(Text(block) if rich else block)
        if run_all or index == len(traj.updates) - 1:
            continue
        key = _ask()
        if key == "q":
            _write("Stopped.\n")
            return
        run_all = key == "a"
    _write(text.summary(traj) + "\n")


def _ask() -> str:
    """Return "next", "a" or "q" from the keyboard, ignoring other keys."""
    while True:
        _write(_PROMPT)
        key = click.getchar()
        _write("\r" + " " * len(_PROMPT) + "\r")
        if key in ("\r", "\n", " "):
            return "next"
        if key.lower() in ("a", "q"):
            return key.lower()
        if key in ("\x03", "\x04"):
            return "q"


@cli.command(short_help="Validate problem files without running them.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
def check(files: tuple[str, ...]) -> None:
    """Check problem files (or shipped ids) without running them: OK, or every error."""
    from .check import check_files

    outcome = check_files(files)
    _write(outcome.text)
    if outcome.status:
        click.echo(outcome.verdict, err=True)
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
    from .verify import render, verify

    loaded = [load(p) for p in problems or shipped_ids()]
    styles = VARIABLE_MODES if variables == "both" else (variables,)
    reports = verify(
        loaded, examples=examples, size=batch, dtype=dtype, variables=styles, seed=seed
    )
    _write(render(reports))
    if not all(r.passed for r in reports):
        click.echo("tutor verify: TensorFlow and SymPy disagree beyond the bound", err=True)
        sys.exit(1)


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
        click.echo(
            f"tutor pitfalls: the fixed code of {', '.join(failed)} does not give SymPy's "
            "gradient within the rounding bound",
            err=True,
        )
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failed check, 2 bad input, 3 tool)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="tutor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "tutor"
        hint = f" (see '{command} --help')" if "--help" not in exc.format_message() else ""
        click.echo(f"{command}: error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.Abort:
        click.echo("tutor: aborted", err=True)
        return 130
    except TutorError as exc:
        click.echo(f"tutor: error: {exc.message}", err=True)
        return exc.exit_status
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
