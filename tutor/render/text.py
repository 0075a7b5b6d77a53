"""Plain text for the terminal and pipes: derivations, descents, the notebook's lines."""

from __future__ import annotations

from ..model import Derivation, Partial, Step, Trajectory, Update
from . import latex
from ._numbers import clean, exact, number
from ._unicode import unicode


def seed_line(update: Update, wrt: tuple[str, ...]) -> str:
    """Return the notebook's line for one update: the loss before it, the values after it.

    >>> u = Update(1, {"w": 0.5}, 20.25, {}, {}, {"w": 0.7699999809265137})
    >>> seed_line(u, ("w",))
    'Loss = 20.25,  w = 00.77 '
    """
    parts = [f"Loss = {update.loss:05.2f}"]
    parts += [f"{name} = {update.updated[name]:05.2f}" for name in wrt]
    return ",  ".join(parts) + " "


def seed(traj: Trajectory) -> str:
    """Return the notebook's output for a whole run, one line per update."""
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    return "".join(seed_line(u, wrt) + "\n" for u in traj.updates)


def partial_label(symbol: str) -> str:
    return f"∂L/∂{symbol}"


def closed_form(partial: Partial, rows: int) -> str:
    """Return the partial's closed form, as a mean over rows when there is data."""
    body = unicode(partial.result)
    return f"(1/{rows}) Σᵢ {body}" if rows else body


def step_lines(step: Step, depth: int = 1) -> list[str]:
    """Return the lines of a step tree: ``[rule] before = after`` and its sentence."""
    pad = "  " * depth
    lines = [f"{pad}[{step.rule}] {unicode(step.before)} = {unicode(step.after)}"]
    if step.text:
        lines.append(f"{pad}  {clean(step.text)}")
    for sub in step.substeps:
        lines.extend(step_lines(sub, depth + 1))
    return lines


def derivation(deriv: Derivation) -> str:
    """Return the derivation of every partial as plain text."""
    problem = deriv.problem
    lines = [f"{problem.id}: {clean(problem.title)}"]
    if problem.summary.strip():
        lines += ["", *(clean(problem.summary).strip().splitlines())]
    loss = unicode(problem.loss)
    lines += ["", f"Loss: L = {f'(1/{problem.rows}) Σᵢ {loss}' if problem.rows else loss}"]
    for partial in deriv.partials:
        lines += ["", f"{partial_label(partial.symbol)}:"]
        for step in partial.steps:
            lines.extend(step_lines(step))
        lines.append(f"  {partial_label(partial.symbol)} = {closed_form(partial, problem.rows)}")
        lines.append(
            f"  LaTeX: {latex.partial_symbol(partial.symbol)} = "
            f"{latex.partial_result(partial, problem.rows)}"
        )
    return "\n".join(lines) + "\n"


def _gradient_lines(
    traj: Trajectory, partial: Partial, values: dict[str, float], symbolic: float, autodiff: float
) -> list[str]:
    rows = traj.problem.rows
    chain = [closed_form(partial, rows)]
    if partial.result.free_symbols and not rows:
        chain.append(unicode(partial.result, values))
    chain = [c for c in chain if c != number(symbolic)]
    return [
        f"  {partial_label(partial.symbol)} = {' = '.join([*chain, number(symbolic)])}",
        f"    SymPy {exact(symbolic)}   TF {exact(autodiff, traj.problem.dtype)}   "
        f"difference {number(autodiff - symbolic, 3)}",
        f"    LaTeX: {latex.gradient_line(partial, None, values, symbolic, rows)}",
    ]


def update_block(traj: Trajectory, update: Update) -> list[str]:
    """Return the lines of one update: each gradient substituted, then each new value."""
    lines = [f"Update {update.step}: L = {number(update.loss)}"]
    values = {**traj.problem.constants, **update.values}
    for partial in traj.derivation.partials:
        s = partial.symbol
        lines += _gradient_lines(traj, partial, values, update.symbolic[s], update.autodiff[s])
        g = number(update.autodiff[s])
        g = f"({g})" if g.startswith("-") else g
        lines.append(
            f"  {s} ← {number(update.values[s])} − {number(traj.learning_rate)}·{g}"
            f" = {number(update.updated[s])}"
        )
        lines.append(f"    LaTeX: {latex.update_line(s, update, traj.learning_rate)}")
    return lines


def start_block(traj: Trajectory) -> list[str]:
    """Return the loss and both gradients at the starting values (shown when no update runs)."""
    start = traj.start
    shown = ", ".join(f"{k} = {number(v)}" for k, v in start.values.items())
    lines = [f"At the start ({shown}): L = {number(start.loss)}"]
    values = {**traj.problem.constants, **start.values}
    for partial in traj.derivation.partials:
        s = partial.symbol
        lines += _gradient_lines(traj, partial, values, start.symbolic[s], start.autodiff[s])
    return lines


def summary(traj: Trajectory) -> str:
    """Return the closing line of a run."""
    n = len(traj.updates)
    final = "" if traj.final_loss is None else f", last loss {number(traj.final_loss)}"
    return f"{traj.status}: {n} update{'' if n == 1 else 's'}{final} ({traj.reason})"


def trajectory(traj: Trajectory, show_derivation: bool = True) -> str:
    """Return a whole run as plain text: derivation, each update, the summary."""
    problem = traj.problem
    lines = [derivation(traj.derivation).rstrip("\n")] if show_derivation else []
    rate = number(traj.learning_rate)
    wrt = ", ".join(p.symbol for p in traj.derivation.partials)
    lines += [
        "",
        f"Gradient descent on {wrt}: η = {rate}, {problem.dtype}, "
        f"{problem.variables} mode, up to {problem.steps} updates",
        "",
    ]
    if not traj.updates:
        lines += start_block(traj)
    for update in traj.updates:
        lines += ["", *update_block(traj, update)]
    lines += ["", summary(traj)]
    return "\n".join(lines) + "\n"
