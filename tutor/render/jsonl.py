"""JSON for programs: JSON Lines for descents, one object for derivations.

The output is strict JSON: a non-finite number is written as the string
``"inf"``, ``"-inf"`` or ``"nan"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._clean import escape_for_json
from .._mathtext import unicode
from ..analysis import describe_rate
from ..descent import final_values
from ..model import Columns, Derivation, Step, Trajectory, Update, same_bits
from . import latex


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value + 0.0  # -0.0 + 0.0 is 0.0: a reader never sees "-0.0"
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _nums(values: Mapping[str, float]) -> dict[str, float | str]:
    return {k: _num(v) for k, v in values.items()}


def _dump(obj: Any) -> str:
    return escape_for_json(json.dumps(obj, ensure_ascii=False, allow_nan=False))


def update(u: Update) -> dict[str, Any]:
    """Return the JSON object of one update."""
    return {
        "step": u.step,
        "loss": _num(u.loss),
        "values": _nums(u.values),
        "gradient": {
            s: {"symbolic": _num(u.symbolic[s]), "autodiff": _num(u.autodiff[s])}
            for s in u.autodiff
        },
        "updated": _nums(u.updated),
    }


def updates(columns: Columns, first: int = 1) -> list[str]:
    """Return the JSON line of every update, written straight from the columns.

    ``first`` is the number of the first row's update.

    Each line is the ``_dump`` of :func:`update`, byte for byte: a float is
    written by ``float.__repr__`` as :mod:`json` writes it, once per column
    when the column is constant, and the new values are the next row's old
    ones. A line with a non-finite number is written by the slower route.
    """
    names, wrt, count = columns.names, columns.wrt, len(columns)
    if not count:
        return []

    def key(name: str) -> str:
        return _dump(name).replace("%", "%%")

    template = (
        '{"step": %s, "loss": %s, "values": {'
        + ", ".join(f"{key(n)}: %s" for n in names)
        + '}, "gradient": {'
        + ", ".join(f'{key(n)}: {{"symbolic": %s, "autodiff": %s}}' for n in wrt)
        + '}, "updated": {'
        + ", ".join(f"{key(n)}: %s" for n in wrt)
        + "}}"
    )
    values = {n: _reprs(columns.values[:, j]) for j, n in enumerate(names)}
    updated = []
    for j, n in enumerate(wrt):
        new = columns.updated[:, j]
        old = columns.values[1:, names.index(n)]
        if same_bits(new[:-1], old):
            updated.append(values[n][1:] + [_repr(float(new[-1]))])
        else:
            updated.append(_reprs(new))
    gradients = []
    for j in range(len(wrt)):
        gradients += [_reprs(columns.symbolic[:, j]), _reprs(columns.autodiff[:, j])]
    fields = zip(
        range(first, first + count),
        _reprs(columns.loss),
        *values.values(),
        *gradients,
        *updated,
        strict=True,
    )
    lines = list(map(template.__mod__, fields))
    finite = np.isfinite(columns.loss)
    for table in (columns.values, columns.symbolic, columns.autodiff, columns.updated):
        finite &= np.isfinite(table).all(axis=1)
    if not finite.all():
        slow = columns.updates(first)
        for i in np.flatnonzero(~finite).tolist():
            lines[i] = _dump(update(slow[i]))
    return lines


def _reprs(column: Any) -> list[str]:
    """Return ``float.__repr__`` of every number in ``column``, computed once if all are equal."""
    if same_bits(column, np.broadcast_to(column[:1], column.shape)):
        return [_repr(float(column[0]))] * len(column)
    return list(map(_repr, column.tolist()))


def _repr(value: float) -> str:
    """Return the JSON text of a float as :func:`_num` gives it (0.0 for -0.0)."""
    return float.__repr__(value + 0.0)


def trajectory(traj: Trajectory) -> str:
    """Return JSON Lines: one object per update, then ``{"summary": {...}}``."""
    return "".join(line + "\n" for line in [*updates(traj.columns), summary(traj)])


def summary(traj: Trajectory) -> str:
    """Return the last line of :func:`trajectory`: how the run went, where it started and ended."""
    columns = traj.columns
    start = traj.start
    final = final_values(start.values, columns)
    current = {**traj.problem.constants, **traj.problem.values}
    out = {
        "problem": traj.problem.id,
        "status": traj.status,
        "reason": traj.reason,
        "steps": len(columns),
        "learning_rate": traj.learning_rate,
        "dtype": traj.problem.dtype,
        "variables": traj.problem.variables,
        "final_loss": None if traj.final_loss is None else _num(traj.final_loss),
        "final_values": _nums(final),
        "overridden": {
            n: {"value": _num(current[n]), "file": _num(v)}
            for n, v in traj.problem.overridden.items()
        },
        "start": {
            "values": _nums(start.values),
            "loss": _num(start.loss),
            "gradient": {
                s: {"symbolic": _num(start.symbolic[s]), "autodiff": _num(start.autodiff[s])}
                for s in start.autodiff
            },
        },
        "analysis": analysis(traj.derivation),
        "curvature_at_end": None if traj.end_curvature is None else curvature(traj.end_curvature),
    }
    return _dump({"summary": out})


def stopped(problem_id: str, status: str, reason: str, steps: int) -> str:
    """Return the summary line of a run cut short by an error or an interrupt.

    JSON Lines that began always end with a summary, so that a reader can tell
    a finished run from one that stopped.

    >>> stopped("seed-w", "error", "disk full", 3)
    '{"summary": {"problem": "seed-w", "status": "error", "reason": "disk full", "steps": 3}}'
    """
    out = {"problem": problem_id, "status": status, "reason": reason, "steps": steps}
    return _dump({"summary": out})


def analysis(deriv: Derivation) -> dict[str, Any] | None:
    """Return the convergence analysis as JSON (None when there is none)."""
    a = deriv.analysis
    if a is None:
        return None
    out: dict[str, Any] = {
        "applies": a.applies,
        "reason": a.reason,
        "eigenvalues": [_num(v) for v in a.eigenvalues],
    }
    if a.kind:
        out.update(
            hessian_class=a.kind,
            outcome=a.outcome,
            learning_rate_in_dtype=a.rate,
            description=describe_rate(a, deriv.problem),
        )
    if a.matrix is not None:
        out["hessian"] = [[_num(v) for v in row] for row in a.matrix]
        if deriv.problem.rows:
            out["hessian_is_mean_over_rows"] = deriv.problem.rows
    if a.applies:
        out.update(
            fixed_point=None if a.fixed_point is None else _nums(a.fixed_point),
            lr_bound=a.lr_bound,
            lr_bound_formula=None if a.lr_bound_formula is None else str(a.lr_bound_formula),
            contraction=a.contraction,
            condition_number=a.condition,
            suggested_lr=a.suggested_lr,
            steps_to_tolerance=a.steps_to_tolerance,
            steps_to_tolerance_measures=a.tolerance_kind or None,
        )
    if a.start is not None:
        out["curvature_at_start"] = curvature(a.start)
    return out


def curvature(c: Any) -> dict[str, Any]:
    """Return a :class:`tutor.analysis.Curvature` as JSON."""
    return {
        "eigenvalues": [_num(v) for v in c.eigenvalues],
        "hessian_class": c.kind or None,
        "lr_bound": c.lr_bound,
        "kink_here": c.kink or None,
        "kinks": list(c.kinks),
    }


def _step(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": step.rule,
        "text": step.text,
        "latex": f"{latex.math(step.before)} = {latex.math(step.after)}",
        "before": str(step.before),
        "after": str(step.after),
        "unicode": f"{unicode(step.before)} = {unicode(step.after)}",
    }
    if step.substeps:
        out["substeps"] = [_step(s) for s in step.substeps]
    return out


def derivation(deriv: Derivation) -> str:
    """Return ``{"partials": {sym: {"result", "latex", "steps"}}, "analysis": {...}}`` as JSON.

    With data rows, ``result`` is the per-row partial (in the columns' names)
    and ``latex`` the mean over the rows, as they always were; ``per_row`` and
    ``mean`` give both forms of each, labelled.
    """
    problem = deriv.problem
    rows = problem.rows
    partials = {}
    for p in deriv.partials:
        entry: dict[str, Any] = {
            "result": str(p.result),
            "latex": latex.partial_result(p, problem),
            "mean_over_rows": rows,
            "steps": [_step(s) for s in p.steps],
        }
        if rows:
            indexed = latex.row_indexed(p.result, tuple(problem.data))
            entry["per_row"] = {"result": str(indexed), "latex": latex.math(indexed)}
            entry["mean"] = {"result": _mean_text(p.result, problem), "latex": entry["latex"]}
        partials[p.symbol] = entry
    document = {
        "problem": problem.id,
        "loss": str(problem.loss),
        "partials": partials,
        "analysis": analysis(deriv),
    }
    if rows:
        document["loss_mean"] = _mean_text(problem.loss, problem)
    return _dump(document) + "\n"


def _mean_text(expr: Any, problem: Any) -> str:
    """Return ``Sum(f(x_i), (i, 1, n))/n``: the mean over the rows of a per-row expression."""
    indexed = latex.row_indexed(expr, tuple(problem.data))
    return f"Sum({indexed}, (i, 1, {problem.rows}))/{problem.rows}"


#: The version of the answer key's JSON, so that importers can check what they read.
KEY_FORMAT = "tutor-key/1"


def answer_key(exercises: Any) -> str:
    """Return one JSON line per variant: its starting values, rate and first updates.

    ``exercises`` are :class:`tutor.handout.Exercise` objects with a key; each
    update has the keys of ``tutor step --format json``, and ``values`` are the
    starting values as that first update holds them.
    """
    lines = []
    for e in exercises:
        problem = e.variant.problem
        updates = [update(u) for u in e.key.updates]
        # The values as the run holds them (rounded to its dtype), as step's first update shows.
        start = updates[0]["values"] if updates else _nums(e.key.start.values)
        lines.append(
            _dump(
                {
                    "format": KEY_FORMAT,
                    "problem": problem.id,
                    "variant": e.variant.number,
                    "seed": e.variant.seed,
                    "values": start,
                    "learning_rate": problem.learning_rate,
                    "dtype": problem.dtype,
                    "updates": updates,
                }
            )
        )
    return "".join(line + "\n" for line in lines)
