"""Rich renderables for a colour terminal; the same content as :mod:`.text`, laid out."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .._clean import clean
from .._numbers import side_by_side
from ..model import Derivation, Trajectory
from . import text


def derivation(deriv: Derivation, detail: str = "full") -> RenderableType:
    """Return the derivation in a panel titled with the problem (no markup is interpreted).

    The summary's paragraphs are re-flowed to the panel's width: a file's
    summary is hard-wrapped for the file, not for the terminal.
    """
    body = text.derivation(deriv, detail).split("\n", 1)[1].strip("\n")
    title = Text(f"{deriv.problem.id}: {clean(deriv.problem.title)}", style="bold")
    paragraphs = prose(deriv.problem.summary)
    if paragraphs:
        # The plain rendering holds the summary as the file wraps it, before the loss.
        body = body[body.index("Loss: ") :]
        parts: list[RenderableType] = [Text(p + "\n") for p in paragraphs]
        return Panel(Group(*parts, Text(body)), title=title, title_align="left")
    return Panel(Text(body), title=title, title_align="left")


def prose(summary: str) -> list[str]:
    """Return a hard-wrapped text's paragraphs, each on one line (blank lines separate them).

    >>> prose("One line\\nand its rest.\\n\\nA second paragraph.")
    ['One line and its rest.', 'A second paragraph.']
    """
    blocks = clean(summary).strip().split("\n\n")
    return [" ".join(block.split()) for block in blocks if block.strip()]


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


def _table(traj: Trajectory) -> Table:
    table = Table(title="Updates", title_justify="left", show_edge=False)
    table.add_column("k", justify="right")
    table.add_column("loss", justify="right")
    for p in traj.derivation.partials:
        s = p.symbol
        table.add_column(s, justify="right")
        table.add_column(f"∂L/∂{s} SymPy", justify="right")
        table.add_column(f"∂L/∂{s} TF", justify="right")
        table.add_column(f"{s} after", justify="right", style="bold")
    for u in traj.updates:
        row = [str(u.step), f"{u.loss:.2f}"]
        for p in traj.derivation.partials:
            s = p.symbol
            row += [
                f"{u.values[s]:.2f}",
                *side_by_side(u.symbolic[s], u.autodiff[s], traj.problem.dtype),
                f"{u.updated[s]:.2f}",
            ]
        table.add_row(*row)
    return table


def trajectory(
    traj: Trajectory, show_derivation: bool = True, detail: str = "full"
) -> RenderableType:
    """Return the run: derivation panel, each update's substituted lines, a table, the summary."""
    parts: list[RenderableType] = [derivation(traj.derivation, detail)] if show_derivation else []
    if not traj.updates:
        parts.append(Text("\n".join(text.start_block(traj)), style="cyan"))
    for update in traj.updates:
        block = text.update_block(traj, update)
        parts.append(lines(block, style="bold"))
    if traj.updates:
        parts.append(_table(traj))
    end = text.end_curvature(traj)
    if end:
        parts.append(Text(end))
    style = {"diverged": "bold red", "diverging": "yellow"}.get(traj.status, "bold green")
    parts.append(Text(text.summary(traj), style=style))
    return Group(*parts)
