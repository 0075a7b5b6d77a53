"""Rich renderables for a colour terminal; the same content as :mod:`.text`, laid out."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .._clean import clean
from .._mathtext import minus, plain_name
from .._numbers import side_by_side
from ..model import Derivation, Trajectory, Update
from . import text


def derivation(deriv: Derivation, detail: str = "full", latex_below: bool = True) -> RenderableType:
    """Return the derivation in a panel titled with the problem (no markup is interpreted).

    The summary's paragraphs are re-flowed to the panel's width: a file's
    summary is hard-wrapped for the file, not for the terminal. The closed forms'
    LaTeX lines go below the panel, unwrapped, so that a copy from the terminal
    gives each formula whole (``latex_below=False`` leaves them out, for a run
    that prints them above its updates).
    """
    body = text.derivation(deriv, detail).split("\n", 1)[1].strip("\n")
    kept = body.split("\n")
    latex = [line.strip() for line in kept if line.lstrip().startswith("LaTeX:")]
    body = "\n".join(line for line in kept if not line.lstrip().startswith("LaTeX:"))
    title = Text(f"{deriv.problem.id}: {clean(deriv.problem.title)}", style="bold")
    paragraphs = prose(deriv.problem.summary)
    parts: list[RenderableType] = []
    if paragraphs:
        # The plain rendering holds the summary as the file wraps it, before the loss.
        body = body[body.index("Loss: ") :]
        parts = [Text(p + "\n") for p in paragraphs]
    panel = Panel(Group(*parts, indented(body)), title=title, title_align="left")
    if not latex or not latex_below:
        return panel
    return Group(panel, lines(latex))


def indented(body: str) -> Group:
    """Return lines whose wrapped continuations keep the line's own indentation, so that a
    long line of a nested step still reads as part of that step."""
    out: list[RenderableType] = []
    for line in body.split("\n"):
        rest = line.lstrip(" ")
        pad = len(line) - len(rest)
        out.append(Padding(Text(rest), (0, 0, 0, pad)) if pad else Text(rest))
    return Group(*out)


def prose(summary: str) -> list[str]:
    """Return a hard-wrapped text's paragraphs, each on one line (blank lines separate them).

    >>> prose("One line\\nand its rest.\\n\\nA second paragraph.")
    ['One line and its rest.', 'A second paragraph.']
    """
    blocks = clean(summary).strip().split("\n\n")
    return [" ".join(block.split()) for block in blocks if block.strip()]


def code_panel(code: str) -> Panel:
    """Return the script of ``--show-code`` (its first line the label) highlighted in a panel."""
    from rich.syntax import Syntax

    label, _, script = code.partition("\n")
    title = Text(label.lstrip("# ").rstrip(":"), style="bold")
    syntax = Syntax(script.rstrip("\n"), "python", theme="ansi_dark", word_wrap=True)
    return Panel(syntax, title=title, title_align="left")


def lines(block: list[str], style: str = "") -> Group:
    """Return lines to print one under the other; LaTeX lines are never wrapped, so that
    a copy from the terminal gives the whole formula. The first line takes ``style``."""
    out = []
    for i, line in enumerate(block):
        latex = line.lstrip().startswith("LaTeX:")
        out.append(
            Text(
                line,
                style=style if i == 0 else "",
                no_wrap=latex,
                overflow="ignore" if latex else "fold",
            )
        )
    return Group(*out)


def updates(blocks: list[str]) -> RenderableType:
    """Return update blocks (as :class:`tutor.render.stream.RunText` writes them) to print,
    each after a blank line, its first line in bold; a block that opens with a blank line
    (:func:`tutor.render.stream.gap`) is shown dimmed.

    The lines are not wrapped: the terminal soft-wraps a long one, so that a copy
    gives it whole (the LaTeX ones above all). They go to rich as styled segments,
    with no layout to compute, so that printing a long run costs what computing it
    does (about 2 µs an update, against 80 µs as one text per update).
    """
    return _Blocks(tuple(blocks))


class _Blocks:
    """Update blocks as rich segments: each line as it is, the first in bold."""

    def __init__(self, blocks: tuple[str, ...]) -> None:
        self.blocks = blocks

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = Segment.line()
        for block in self.blocks:
            if block.startswith("\n"):
                yield line
                yield Segment(block.strip("\n"), _DIM)
                yield line
                continue
            head, _, rest = block.rstrip("\n").partition("\n")
            yield line
            yield Segment(head, _BOLD)
            yield line
            if rest:
                yield Segment(rest)
                yield line


_BOLD = Style(bold=True)
_DIM = Style(dim=True)


def table(traj: Trajectory, shown: Sequence[Update]) -> RenderableType:
    """Return a table of the ``shown`` updates of a run, one row each.

    On a screen too narrow for every column, the gradients' columns are left out
    (each update above shows them); a number is never cut short."""
    return _Fitted(_table(traj, shown, gradients=True), _table(traj, shown, gradients=False))


class _Fitted:
    """The full table when the screen is wide enough for it, else the narrow one."""

    def __init__(self, full: Table, narrow: Table) -> None:
        self.full, self.narrow = full, narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.measure import Measurement

        # Measured as if the screen had no edge: rich would otherwise squeeze the columns.
        wide = Measurement.get(console, options.update(max_width=10_000), self.full).maximum
        yield self.full if wide <= options.max_width else self.narrow


def _table(traj: Trajectory, shown: Sequence[Update], gradients: bool) -> Table:
    table = Table(title="Updates", title_justify="left", show_edge=False)
    # Folded rather than cut: rich's default ellipsis would drop a number's exponent.
    table.add_column("k", justify="right", overflow="fold")
    table.add_column("loss", justify="right", overflow="fold")
    for p in traj.derivation.partials:
        s = plain_name(p.symbol)
        table.add_column(s, justify="right", overflow="fold")
        if gradients:
            table.add_column(f"∂L/∂{s} SymPy", justify="right", overflow="fold")
            table.add_column(f"∂L/∂{s} TF", justify="right", overflow="fold")
        table.add_column(f"{s} after", justify="right", style="bold", overflow="fold")
    for u in shown:
        row = [str(u.step), text.num(u.loss)]
        for p in traj.derivation.partials:
            s = p.symbol
            both = side_by_side(u.symbolic[s], u.autodiff[s], traj.problem.dtype)
            row += [
                minus(f"{u.values[s]:.2f}"),
                *(map(minus, both) if gradients else ()),
                minus(f"{u.updated[s]:.2f}"),
            ]
        table.add_row(*row)
    return table


def closing(traj: Trajectory, shown: Sequence[Update]) -> Group:
    """Return what follows the updates: the table of those ``shown``, the curvature at the
    end, and the summary in the colour of the outcome."""
    parts: list[RenderableType] = [table(traj, shown)] if shown else []
    end = text.end_curvature(traj)
    if end:
        parts.append(Text(end))
    style = {"diverged": "bold red", "diverging": "yellow"}.get(traj.status, "bold green")
    parts.append(Text(text.summary(traj), style=style))
    return Group(*parts)


def trajectory(
    traj: Trajectory, show_derivation: bool = True, detail: str = "full"
) -> RenderableType:
    """Return the run: derivation panel (``brief`` or ``full``), the closed forms, each
    update's numbers substituted, a table, the summary."""
    from .stream import RunText

    parts: list[RenderableType] = (
        [derivation(traj.derivation, detail, latex_below=False)] if show_derivation else []
    )
    run = RunText(traj.derivation)
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    parts.append(lines([text.descent_heading(traj.problem, wrt), *run.header()]))
    if not traj.steps:
        parts.append(Text("\n" + "\n".join(text.start_block(traj)), style="cyan"))
    parts.append(updates(run.blocks(traj.columns, 1)))
    parts += [Text(""), closing(traj, traj.updates)]
    return Group(*parts)
