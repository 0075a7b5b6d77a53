"""Plain text for the terminal and pipes: derivations, descents, the notebook's lines."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import sympy

from .._clean import clean
from .._mathtext import checking_digits, minus, plain_name, unicode, written
from .._numbers import DIGITS, number, side_by_side
from ..analysis import DEFAULT_TOLERANCE, describe_class, describe_curvature, describe_rate
from ..model import Columns, Derivation, Partial, Problem, Step, Trajectory, Update
from . import latex

#: A minus sign before a number in prose (ASCII in the text the analysis writes).
_NUMBER_MINUS = re.compile(r"(?<![\w.=])-(?=\d|inf\b)")


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


def seed_lines(columns: Columns) -> str:
    """Return the notebook's line of every update in ``columns``."""
    return "".join(seed_line(u, columns.wrt) + "\n" for u in columns.updates())


def partial_label(symbol: str) -> str:
    """Return ``∂L/∂w`` for ``symbol``, the name as every medium writes it (∂L/∂λ)."""
    return f"∂L/∂{plain_name(symbol)}"


def num(value: float, digits: int = DIGITS) -> str:
    """Return a number as the text shows it: ``number`` with a true minus sign (−27)."""
    return minus(number(value, digits))


def prose(text: str) -> str:
    """Return a sentence with a true minus sign before each number in it (w = −1.6)."""
    return _NUMBER_MINUS.sub("−", text)


def equation(*sides: str) -> str:
    """Return the sides joined by ``=``, none repeated next to itself (never ``2 = 2``)."""
    return " = ".join(latex.distinct([side for side in sides if side]))


def mean(summand: str, rows: int, add: bool) -> str:
    """Return ``(1/n) Σᵢ summand``, a sum in brackets so the mean covers all of it."""
    return f"(1/{rows}) Σᵢ {f'[{summand}]' if add else summand}"


def closed_form(partial: Partial, rows: int, data: tuple[str, ...] = ()) -> str:
    """Return the partial's closed form, as a mean over rows when there is data."""
    if not rows:
        return unicode(partial.result)
    body = unicode(latex.row_indexed(partial.result, data))
    return mean(body, rows, isinstance(partial.result, sympy.Add))


def step_lines(step: Step, depth: int = 1) -> list[str]:
    """Return the lines of a step tree: ``[rule] before = after`` and its sentence."""
    pad = "  " * depth
    lines = [f"{pad}[{step.rule}] {unicode(step.before)} = {unicode(step.after)}"]
    if step.text:
        lines.append(f"{pad}  {clean(step.text)}")
    for sub in step.substeps:
        lines.extend(step_lines(sub, depth + 1))
    return lines


def analysis_lines(deriv: Derivation) -> list[str]:
    """Return what theory says about the descent: the Hessian's class, fixed point, bound on η."""
    a = deriv.analysis
    if a is None:
        return []
    problem = deriv.problem
    names = tuple(p.symbol for p in deriv.partials)
    if not a.applies:
        lines = [f"Convergence: {prose(a.reason)}."]
        if a.outcome:
            lines.append(f"  {prose(describe_rate(a, problem))}.")
        if a.start is not None:
            lines.append(f"  curvature at the start: {prose(describe_curvature(a.start, names))}")
        return lines
    lines = [f"Convergence ({prose(a.reason)}):"]
    if len(names) == 1 and not problem.rows:
        s = plain_name(names[0])
        second = equation(f"∂²L/∂{s}²", unicode(a.hessian[0, 0]), num(a.eigenvalues[0]))
        lines.append(f"  {second}: {prose(describe_class(a))}")
    else:
        shown = ", ".join(num(v) for v in a.eigenvalues)
        hessian = unicode(latex.row_indexed(a.hessian, tuple(problem.data)))
        averaged = f"(1/{problem.rows}) Σᵢ " if problem.rows else ""
        lines.append(f"  Hessian H = {averaged}{hessian}; eigenvalues {shown}")
        if problem.rows:
            lines.append(f"  mean over the {problem.rows} rows: H = {_matrix(a)}")
        lines.append(f"  H is {prose(describe_class(a))}")
    if a.fixed_point is not None:
        for name in names:
            formula = a.fixed_point_formula[name] if a.fixed_point_formula else None
            shown = unicode(formula) if formula is not None and formula.free_symbols else ""
            label = "the minimiser nearest the start" if a.flat else "fixed point"
            point = equation(f"{plain_name(name)}*", shown, num(a.fixed_point[name]))
            lines.append(f"  {label}: {point}")
    if a.fixed_point is not None and len(names) == 1 and a.iteration is not None:
        s = plain_name(names[0])
        factor = f"1 − {unicode(sympy.Symbol('eta') * a.hessian[0, 0])}"
        lines.append(
            f"  iteration: {s}ₖ − {s}* = ({factor})ᵏ ({s}₀ − {s}*), factor {num(a.iteration[0][0])}"
        )
    elif a.fixed_point is not None:
        lines.append(f"  iteration: θₖ − θ* = (I − ηH)ᵏ (θ₀ − θ*), |factor| ≤ {num(a.contraction)}")
    if a.condition is not None:
        slow = min(v for v in a.eigenvalues if v > 0)
        lines.append(
            f"  condition number κ = λ_max/λ_min = {num(a.condition)}: along the direction "
            f"of λ_min = {num(slow)} the distance shrinks slowest, by "
            f"|1 − ηλ_min| = {num(abs(1 - a.rate * slow))} per update"
        )
    if a.lr_bound is not None:
        formula = unicode(a.lr_bound_formula) if a.lr_bound_formula is not None else "2/λ_max"
        bound = equation(formula, num(a.lr_bound))
        lines.append(f"  stable for η < {bound}; {prose(describe_rate(a, problem))}")
    else:
        lines.append(f"  {prose(describe_rate(a, problem))}")
    lines += _tolerance_lines(a, problem)
    return lines


def _matrix(a: Any) -> str:
    """Return the mean Hessian's numbers as [[…], […]]."""
    size = len(a.eigenvalues)
    rows = [", ".join(num(a.matrix[i][j]) for j in range(size)) for i in range(size)]
    return "[" + ", ".join(f"[{r}]" for r in rows) + "]"


def _tolerance_lines(a: Any, problem: Any) -> list[str]:
    if a.steps_to_tolerance is None:
        return []
    if a.tolerance_kind == "gradient":
        return [
            f"  every |∂L/∂s| < {minus(f'{problem.tolerance:g}')} (the run's tolerance) after "
            f"{updates(a.steps_to_tolerance)}, by the closed form"
        ]
    return [
        f"  within {minus(f'{DEFAULT_TOLERANCE:g}')} of the fixed point after "
        f"{updates(a.steps_to_tolerance)}"
    ]


def updates(count: int) -> str:
    """Return ``1 update`` or ``n updates``.

    >>> updates(1), updates(20)
    ('1 update', '20 updates')
    """
    return f"{count} update{'' if count == 1 else 's'}"


def overridden_line(problem: Problem) -> str:
    """Return ``overridden: x = 4 (file: 3)`` for the values changed since the file ("" if none).

    The file's own prose may still speak of its values; this says which ones the run replaced.
    """
    if not problem.overridden:
        return ""
    current = {**problem.constants, **problem.values}
    return "overridden: " + ", ".join(
        f"{n} = {num(current[n])} (file: {num(v)})" for n, v in problem.overridden.items()
    )


def loss_line(problem: Problem) -> str:
    """Return ``L = …``: the loss as its file writes it, a mean over the rows with data."""
    loss = written(problem.tree, frozenset(problem.data))
    if not problem.rows:
        return f"L = {loss}"
    from ..expression import Binary

    add = isinstance(problem.tree, Binary) and problem.tree.op in "+-"
    return "L = " + mean(loss, problem.rows, add or loss.startswith("−"))


def derivation(deriv: Derivation) -> str:
    """Return the derivation of every partial as plain text."""
    problem = deriv.problem
    lines = [f"{problem.id}: {clean(problem.title)}"]
    if problem.summary.strip():
        lines += ["", *(clean(problem.summary).strip().splitlines())]
    if problem.overridden:
        lines += ["", overridden_line(problem)]
    lines += ["", f"Loss: {loss_line(problem)}"]
    for partial in deriv.partials:
        lines += ["", f"{partial_label(partial.symbol)}:"]
        for step in partial.steps:
            lines.extend(step_lines(step))
        closed = closed_form(partial, problem.rows, tuple(problem.data))
        lines.append(f"  {partial_label(partial.symbol)} = {closed}")
        lines.append(
            f"  LaTeX: {latex.partial_symbol(partial.symbol)} = "
            f"{latex.partial_result(partial, problem)}"
        )
    analysis = analysis_lines(deriv)
    if analysis:
        lines += ["", *analysis]
    return "\n".join(lines) + "\n"


def _gradient_lines(
    traj: Trajectory, partial: Partial, values: dict[str, float], symbolic: float, autodiff: float
) -> list[str]:
    rows = traj.problem.rows
    chain = [closed_form(partial, rows, tuple(traj.problem.data))]
    if partial.result.free_symbols and not rows:
        digits = checking_digits(partial.result, values, number(symbolic))
        chain.append(unicode(partial.result, values, digits))
    sympy_shown, tf_shown = side_by_side(symbolic, autodiff, traj.problem.dtype)
    return [
        f"  {equation(partial_label(partial.symbol), *chain, num(symbolic))}",
        f"    SymPy {minus(sympy_shown)}   TF {minus(tf_shown)}   "
        f"TF − SymPy {num(autodiff - symbolic, 3)}",
        f"    LaTeX: {latex.gradient_line(partial, traj.problem, values, symbolic)}",
    ]


def start_block(traj: Trajectory) -> list[str]:
    """Return the loss and both gradients at the starting values (shown when no update runs)."""
    start = traj.start
    shown = ", ".join(f"{plain_name(k)} = {num(v)}" for k, v in start.values.items())
    lines = [f"At the start ({shown}): L = {num(start.loss)}"]
    values = {**traj.problem.constants, **start.values}
    for partial in traj.derivation.partials:
        s = partial.symbol
        lines += _gradient_lines(traj, partial, values, start.symbolic[s], start.autodiff[s])
    return lines


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Any, width: int = 60) -> str:
    """Return the losses as a row of bars (log scale), at most ``width`` wide.

    >>> sparkline([4.0, 2.0, 1.0])
    '█▅▁'
    """
    losses = np.asarray(values, dtype=np.float64)
    finite = losses[np.isfinite(losses) & (losses > 0)]
    if not finite.size:
        return ""
    floor = float(finite.min())
    if len(losses) > width:
        losses = losses[[i * len(losses) // width for i in range(width)]]
    logs = [math.log10(max(v, floor)) if math.isfinite(v) else math.inf for v in losses.tolist()]
    low, high = min(v for v in logs if math.isfinite(v)), max(v for v in logs if math.isfinite(v))
    span = (high - low) or 1.0
    return "".join(
        _BARS[-1] if not math.isfinite(v) else _BARS[round((v - low) / span * (len(_BARS) - 1))]
        for v in logs
    )


def last_values(traj: Trajectory) -> dict[str, float]:
    """Return the descended values after the last update (the start's when none was taken)."""
    columns = traj.columns
    if not len(columns):
        return {n: traj.start.values[n] for n in traj.problem.wrt}
    return dict(zip(columns.wrt, columns.updated[-1].tolist(), strict=True))


def distance_to_minimiser(traj: Trajectory) -> float | None:
    """Return |θ_last − θ*| when the analysis found the fixed point θ*, else None."""
    a = traj.derivation.analysis
    if a is None or a.fixed_point is None or not traj.steps:
        return None
    last = last_values(traj)
    return math.dist([last[n] for n in a.fixed_point], list(a.fixed_point.values()))


def end_curvature(traj: Trajectory) -> str:
    """Return the curvature at the final values of a run on a non-quadratic loss ("" if none)."""
    if traj.end_curvature is None:
        return ""
    names = tuple(p.symbol for p in traj.derivation.partials)
    last = {**traj.start.values, **last_values(traj)}
    at = ", ".join(f"{plain_name(n)} = {num(last[n])}" for n in names)
    return f"Curvature at the end ({at}): {prose(describe_curvature(traj.end_curvature, names))}"


def summary(traj: Trajectory) -> str:
    """Return the closing line of a run: outcome, updates, the loss at the final values,
    the distance to θ*."""
    n = traj.steps
    final = "" if traj.final_loss is None else f", final loss {num(traj.final_loss)}"
    distance = distance_to_minimiser(traj)
    if distance is not None and math.isfinite(distance):
        final += f", distance to the fixed point {num(distance)}"
    return f"{traj.status}: {updates(n)}{final} ({prose(traj.reason)})"


def interrupted(problem: Problem, last: tuple[Columns, int] | None) -> str:
    """Return the line that ends a run stopped by Ctrl-C: how far it got and where.

    ``last`` is the last piece of updates computed and the number of its first update.
    """
    if last is None or not len(last[0]):
        return "interrupted: no update was computed (stopped by Ctrl-C)"
    columns, first = last
    count = first + len(columns) - 1
    after = ", ".join(
        f"{plain_name(n)} = {num(v)}"
        for n, v in zip(columns.wrt, columns.updated[-1].tolist(), strict=True)
    )
    return (
        f"interrupted: {updates(count)}, loss {num(columns.loss[-1])} "
        f"before the last, {after} after it (stopped by Ctrl-C after update {count})"
    )


def descent_heading(problem: Problem, wrt: tuple[str, ...]) -> str:
    """Return the line that opens a run: the symbols descended, η, dtype, style, steps."""
    return (
        f"Gradient descent on {', '.join(plain_name(s) for s in wrt)}: "
        f"η = {num(problem.learning_rate)}, {problem.dtype}, {problem.variables} mode, "
        f"up to {updates(problem.steps)}"
    )


def closing(traj: Trajectory) -> list[str]:
    """Return what follows the updates: the loss as a sparkline, the end's curvature, the
    summary, each paragraph preceded by a blank line."""
    lines = []
    spark = sparkline(traj.columns.loss)
    if spark:
        lines += ["", f"Loss by update: {spark}"]
    end = end_curvature(traj)
    if end:
        lines += ["", end]
    return [*lines, "", summary(traj)]


def trajectory(traj: Trajectory, show_derivation: bool = True) -> str:
    """Return a whole run as plain text: derivation, the closed forms, each update with its
    numbers substituted, the summary."""
    from .stream import RunText

    lines = [derivation(traj.derivation).rstrip("\n")] if show_derivation else []
    wrt = tuple(p.symbol for p in traj.derivation.partials)
    run = RunText(traj.derivation)
    lines += ["", descent_heading(traj.problem, wrt), *run.header()]
    if not traj.steps:
        lines += ["", *start_block(traj)]
    text = "\n".join(lines) + "\n"
    blocks = "".join("\n" + block for block in run.blocks(traj.columns, 1))
    return text + blocks + "\n".join(closing(traj)) + "\n"
