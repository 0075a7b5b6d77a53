"""JSON for programs: JSON Lines for descents, one object for derivations.

The output is strict JSON: a non-finite number is written as the string
``"inf"``, ``"-inf"`` or ``"nan"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .._mathtext import unicode
from ..model import Derivation, Step, Trajectory, Update
from . import latex


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _nums(values: Mapping[str, float]) -> dict[str, float | str]:
    return {k: _num(v) for k, v in values.items()}


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


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


def trajectory(traj: Trajectory) -> str:
    """Return JSON Lines: one object per update, then ``{"summary": {...}}``."""
    lines = [_dump(update(u)) for u in traj.updates]
    start = traj.start
    summary = {
        "problem": traj.problem.id,
        "status": traj.status,
        "reason": traj.reason,
        "steps": len(traj.updates),
        "learning_rate": traj.learning_rate,
        "dtype": traj.problem.dtype,
        "variables": traj.problem.variables,
        "final_loss": None if traj.final_loss is None else _num(traj.final_loss),
        "final_values": _nums({**traj.updates[-1].values, **traj.updates[-1].updated})
        if traj.updates
        else _nums(start.values),
        "start": {
            "values": _nums(start.values),
            "loss": _num(start.loss),
            "gradient": {
                s: {"symbolic": _num(start.symbolic[s]), "autodiff": _num(start.autodiff[s])}
                for s in start.autodiff
            },
        },
    }
    summary["analysis"] = analysis(traj.derivation)
    lines.append(_dump({"summary": summary}))
    return "\n".join(lines) + "\n"


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
    if a.applies:
        out.update(
            fixed_point=None if a.fixed_point is None else _nums(a.fixed_point),
            lr_bound=a.lr_bound,
            lr_bound_formula=None if a.lr_bound_formula is None else str(a.lr_bound_formula),
            contraction=a.contraction,
            suggested_lr=a.suggested_lr,
            steps_to_tolerance=a.steps_to_tolerance,
        )
    return out


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
    """Return ``{"partials": {sym: {"result", "latex", "steps"}}}`` as one JSON document."""
    rows = deriv.problem.rows
    partials = {
        p.symbol: {
            "result": str(p.result),
            "latex": latex.partial_result(p, deriv.problem),
            "mean_over_rows": rows,
            "steps": [_step(s) for s in p.steps],
        }
        for p in deriv.partials
    }
    return (
        _dump({"problem": deriv.problem.id, "loss": str(deriv.problem.loss), "partials": partials})
        + "\n"
    )
