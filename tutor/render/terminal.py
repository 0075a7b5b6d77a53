"""Rich renderables for a colour terminal; the same content as :mod:`.text`, laid out."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .._numbers import clean, side_by_side
from ..model import Derivation, Trajectory
from . import text


def derivation(deriv: Derivation) -> RenderableType:
    """Return the derivation in a panel titled with the problem (no markup is interpreted)."""
    body = text.derivation(deriv).split("\n", 1)[1].strip("\n")
    title = Text(f"{deriv.problem.id}: {clean(deriv.problem.title)}", style="bold")
    return Panel(Text(body), title=title, title_align="left")


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


def trajectory(traj: Trajectory, show_derivation: bool = True) -> RenderableType:
    """Return the run: derivation panel, each update's substituted lines, a table, the summary."""
    parts: list[RenderableType] = [derivation(traj.derivation)] if show_derivation else []
    if not traj.updates:
        parts.append(Text("\n".join(text.start_block(traj)), style="cyan"))
    for update in traj.updates:
        block = text.update_block(traj, update)
        parts.append(Text(block[0], style="bold") + Text("\n" + "\n".join(block[1:])))
    if traj.updates:
        parts.append(_table(traj))
    end = text.end_curvature(traj)
    if end:
        parts.append(Text(end))
    style = {"diverged": "bold red", "diverging": "yellow"}.get(traj.status, "bold green")
    parts.append(Text(text.summary(traj), style=style))
    return Group(*parts)
