"""Text and JSON for ``tutor practice``: questions, replies, hints, the summary."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import sympy

from .._clean import clean
from .._mathtext import minus, unicode
from .._numbers import DIGITS, exact, number
from ..model import Derivation, Problem, Step
from ..practice import MISTAKES, Item, Judgement, Question, Reply, score
from .latex import row_indexed
from .text import closed_form, step_lines

COMMANDS_LINE = (
    "Type your answer, or: hint (the next rule), step (one step of the derivation), "
    "show (all of it), help. Ctrl-D ends the practice."
)


def intro(derivation: Derivation, updates: int) -> str:
    """Return the opening lines: the problem, its loss and values, and what to type."""
    problem = derivation.problem
    loss = unicode(problem.loss)
    known = [f"Values: {_values(problem.values, problem.dtype)}"]
    if problem.constants:
        known.append(f"Constants: {_constants(problem.constants)}")
    if problem.rows:
        loss = f"(1/{problem.rows}) Σᵢ {unicode(row_indexed(problem.loss, tuple(problem.data)))}"
        known += [
            f"Data, row i = 1…{problem.rows}: "
            + "; ".join(
                f"{k}ᵢ = {', '.join(_n(v) for v in col)}" for k, col in problem.data.items()
            )
        ]
    wrt = ", ".join(p.symbol for p in derivation.partials)
    first = "the first update" if updates == 1 else f"the first {updates} updates"
    then = (
        f"then compute {first} of gradient descent on {wrt} (η = {_n(problem.learning_rate)}), "
        f"to {problem.practice_decimals} decimals"
        if updates
        else "no updates to compute"
    )
    return "\n".join(
        [
            f"{problem.id}: {clean(problem.title)}",
            f"Loss: L = {loss}",
            *known,
            f"Derive {_partials(derivation)}; {then}.",
            COMMANDS_LINE,
        ]
    )


def _constants(constants: Mapping[str, float]) -> str:
    """Return ``lam = 0.5 (λ in the loss)``: the name to type, and how the loss shows it."""
    parts = []
    for name, value in constants.items():
        shown = unicode(sympy.Symbol(name))
        written = f" ({shown} in the loss)" if shown != name else ""
        parts.append(f"{name} = {figure(value, 'float64')}{written}")
    return ", ".join(parts)


def _partials(derivation: Derivation) -> str:
    return " and ".join(f"∂L/∂{p.symbol}" for p in derivation.partials)


def _values(values: Mapping[str, float], dtype: str) -> str:
    return ", ".join(f"{k} = {figure(v, dtype)}" for k, v in values.items())


def figure(value: float, dtype: str) -> str:
    """Return ``value`` as the shortest text that reads back as the same ``dtype`` number.

    >>> figure(0.7699999809265137, "float32"), figure(-27.0, "float32")
    ('0.77', '−27')
    """
    text = exact(value, dtype)
    return minus(text[:-2] if text.endswith(".0") else text)


def _n(value: float, digits: int = DIGITS) -> str:
    """Return a number as the text shows it, with a true minus sign."""
    return minus(number(value, digits))


def question(q: Question, derivation: Derivation) -> str:
    """Return the text asking ``q``."""
    problem = derivation.problem
    s = q.symbol
    if q.kind == "derivative":
        per_row = " (the derivative of one row's loss)" if problem.rows else ""
        return f"\n∂L/∂{s}{per_row} = ?"
    shown = {k: v for k, v in q.values.items() if k in problem.values}
    if q.quantity == "gradient":
        return f"\nUpdate {q.step}: at {_values(shown, problem.dtype)}\n∂L/∂{s} = ?"
    rate, g = _n(q.rate), figure(q.gradient, problem.dtype)
    return f"{s} after the update, {s} − η·∂L/∂{s} with η = {rate} and ∂L/∂{s} = {g}: ?"


PROMPT = "> "


def reply(item: Item, answer: Reply, derivation: Derivation) -> str:
    """Return the tutor's reply to one line typed for ``item``."""
    q = item.question
    if answer.kind == "empty":
        return "Type an answer, or hint, step, show, help."
    if answer.kind == "help":
        return COMMANDS_LINE
    if answer.kind == "refused":
        return f"Cannot read that: {answer.message}."
    if answer.kind in ("hint", "step", "show"):
        if q.kind == "derivative":
            return _reveal_derivative(answer, q.symbol, derivation)
        return _reveal_number(answer.kind, q, derivation)
    assert answer.judgement is not None  # a judged reply always holds its judgement
    if q.kind == "derivative":
        return _judged_derivative(answer.judgement, q.symbol, derivation)
    return _judged_number(answer.judgement, q, derivation)


def _judged_derivative(j: Judgement, symbol: str, derivation: Derivation) -> str:
    label = f"∂L/∂{symbol}"
    expected = unicode(j.expected) if isinstance(j.expected, sympy.Expr) else ""
    how = (
        ""
        if j.proof == "sympy"
        else " (equal at every point tried in the [verify] box; SymPy could not prove it)"
    )
    if j.verdict == "correct":
        return f"Correct: {label} = {expected}{how}."
    if j.verdict == "unsimplified":
        return f"Correct, but not simplified{how}: it equals {expected}."
    lines = []
    ce = j.counterexample
    if ce is not None:
        where = _values({k: v for k, v in ce.values.items()}, "float64")
        got = "is not a real number" if ce.answer is None else f"gives {_n(ce.answer, 6)}"
        lines.append(
            f"Not quite: at {where} your answer {got}, but {label} = {_n(ce.expected, 6)}."
        )
    else:
        lines.append(
            f"Not accepted: SymPy cannot show that your answer equals {label}, and no point "
            "of the [verify] box gives both a real value to compare."
        )
    lines.append(_mistake_line(j, symbol))
    return "\n".join(line for line in lines if line)


def _mistake_line(j: Judgement, symbol: str) -> str:
    label = f"∂L/∂{symbol}"
    if j.mistake == "sign":
        return "Sign error: your answer is −1 times the derivative. Check each minus sign."
    if j.mistake == "chain_factor" and j.factor is not None:
        factor = unicode(j.factor)
        return (
            f"Missing chain-rule factor {factor}: your answer is {label} divided by {factor}, "
            f"the derivative of the inner function. Multiply by it."
        )
    if j.mistake == "constant_factor" and j.factor is not None:
        return (
            f"Wrong constant factor: your answer is {unicode(j.factor)} times {label}. "
            "Check the numbers in front (the power rule brings the exponent down)."
        )
    if j.mistake == "other_symbol":
        return (
            f"That is ∂L/∂{j.other}: you differentiated with respect to {j.other}, not {symbol}. "
            f"Hold {j.other} constant and differentiate by {symbol}."
        )
    return "Try again, or type hint."


def _judged_number(j: Judgement, q: Question, derivation: Derivation) -> str:
    problem = derivation.problem
    s = q.symbol
    decimals = problem.practice_decimals
    if j.verdict == "correct":
        name = f"∂L/∂{s}" if q.quantity == "gradient" else s
        value = figure(float(j.expected), problem.dtype)
        rounded = figure(round(float(j.expected), decimals), "float64")
        if rounded == value:
            return f"Correct: {name} = {value}."
        return f"Correct: {name} = {rounded} (the tutor's {problem.dtype} value: {value})."
    if q.quantity == "gradient":
        lines = [f"Not quite: ∂L/∂{s} = {_substituted(q, derivation)}; work it out again."]
        if j.mistake == "sign":
            lines.append("Sign error: your number is the negative of the gradient.")
    else:
        lines = [f"Not quite: {s} − η·∂L/∂{s} = {_update_formula(q, problem)}; "]
        lines[0] += f"work it out to {decimals} decimals."
        if j.mistake == "sign":
            lines.append(
                f"Sign error: you added η·∂L/∂{s}; gradient descent steps against the "
                "gradient, so subtract it."
            )
    return "\n".join(lines)


def _substituted(q: Question, derivation: Derivation) -> str:
    """Return the partial's closed form, then with the question's values put in."""
    problem = derivation.problem
    partial = derivation.partial(q.symbol)
    form = closed_form(partial, problem.rows, tuple(problem.data))
    if problem.rows:
        return f"{form}, over the {problem.rows} rows of data"
    return f"{form} = {unicode(partial.result, q.values)}"


def _update_formula(q: Question, problem: Problem) -> str:
    g = figure(q.gradient, problem.dtype)
    g = f"({g})" if g.startswith("−") else g
    return f"{figure(q.values[q.symbol], problem.dtype)} − {_n(q.rate)}·{g}"


def _reveal_number(kind: str, q: Question, derivation: Derivation) -> str:
    problem = derivation.problem
    s = q.symbol
    if q.quantity == "gradient":
        partial = derivation.partial(s)
        if kind == "hint":
            form = closed_form(partial, problem.rows, tuple(problem.data))
            return f"∂L/∂{s} = {form}: put the values in."
        if kind == "step":
            return f"∂L/∂{s} = {_substituted(q, derivation)}"
        return f"∂L/∂{s} = {figure(q.expected, problem.dtype)}"
    if kind == "hint":
        return f"{s} ← {s} − η·∂L/∂{s}: subtract η times the gradient."
    if kind == "step":
        return f"{s} ← {_update_formula(q, problem)}"
    return f"{s} ← {_update_formula(q, problem)} = {figure(q.expected, problem.dtype)}"


def _reveal_derivative(answer: Reply, symbol: str, derivation: Derivation) -> str:
    if answer.kind == "hint":
        return hint_text(answer.steps[0], symbol)
    if answer.kind == "step":
        step = answer.steps[0]
        return "\n".join(step_lines(Step(step.rule, step.before, step.after, step.text), 0))
    partial = derivation.partial(symbol)
    problem = derivation.problem
    lines = [line for step in partial.steps for line in step_lines(step, 0)]
    lines.append(f"∂L/∂{symbol} = {closed_form(partial, problem.rows, tuple(problem.data))}")
    return "\n".join(lines)


def hint_text(step: Step, symbol: str) -> str:
    """Return the hint for one step: the rule to use, and on what, without the result.

    >>> from tutor.problem import load
    >>> from tutor.derivation import derive
    >>> partial = derive(load("seed-w")).partial("w")
    >>> print(hint_text(partial.steps[0], "w"))
    The outer function is a square, u² with u = wx − y: use the chain rule, ∂/∂w f(u) = f′(u)·∂u/∂w.
    """
    before = step.before
    target = unicode(before.expr) if isinstance(before, sympy.Derivative) else unicode(before)
    if step.rule == "chain" and step.substeps:
        outer = step.substeps[0].before
        u = outer.variables[0] if isinstance(outer, sympy.Derivative) else sympy.Symbol("u")
        inner = next(iter(step.after.atoms(sympy.Derivative))).expr
        f = outer.expr if isinstance(outer, sympy.Derivative) else outer
        return (
            f"The outer function is {_describe(f, u)}, {unicode(f)} with {u} = {unicode(inner)}: "
            f"use the chain rule, ∂/∂{symbol} f({u}) = f′({u})·∂{u}/∂{symbol}."
        )
    s = symbol
    phrases = {
        "sum": f"{target} is a sum: differentiate it term by term (sum rule).",
        "held constant": f"{target} does not depend on {s}: hold it constant; its derivative is 0.",
        "constant": f"{target} is a number: its derivative is 0.",
        "variable": f"∂{s}/∂{s} = 1.",
        "constant multiple": (
            f"In {target}, a factor does not depend on {s}: keep it in front "
            "(constant multiple rule)."
        ),
        "product": f"{target} is a product: use the product rule, (fg)′ = f′g + fg′.",
        "quotient": f"{target} is a quotient: use the quotient rule, (f/g)′ = (f′g − fg′)/g².",
        "power": f"{target} is a power: use the power rule, ∂/∂v vⁿ = n·vⁿ⁻¹.",
        "simplify": (
            "Put the pieces together and simplify: multiply out the numbers, factor what is common."
        ),
        "mean over rows": (
            "The loss is a mean over rows: differentiate one row's loss, then take the mean."
        ),
    }
    return phrases.get(step.rule, f"Use the {step.rule} rule on {target}.")


def _describe(f: sympy.Expr, u: sympy.Symbol) -> str:
    """Return what kind of function ``f`` of ``u`` is, in words: a square, an exponential…"""
    if f.is_Pow and f.base == u:
        names = {2: "a square", 3: "a cube", -1: "a reciprocal", sympy.S.Half: "a square root"}
        return names.get(f.exp, f"a power (exponent {unicode(f.exp)})")
    if f.is_Pow:
        return "an exponential"
    words = {
        "exp": "an exponential",
        "log": "a logarithm",
        "sigmoid": "a sigmoid",
        "softplus": "a softplus",
        "relu": "a relu",
        "Abs": "an absolute value",
        "tanh": "a tanh",
        "sin": "a sine",
        "cos": "a cosine",
        "tan": "a tangent",
        "Max": "a max",
        "Min": "a min",
        "huber": "a Huber loss",
    }
    return words.get(type(f).__name__, f"{type(f).__name__}")


def summary(items: Sequence[Item], status: str) -> str:
    """Return the practice summary: right first time, hints used, mistakes by kind."""
    s = score(items)
    ended = {"completed": "", "ended": " (ended early)", "interrupted": " (interrupted)"}
    mistakes = ", ".join(f"{_mistake_name(k)} {n}" for k, n in sorted(s.mistakes.items()))
    return "\n".join(
        [
            f"\nPractice summary{ended.get(status, '')}:",
            f"  right first time: {s.right_first_time} of {s.items}",
            f"  hints used: {s.hints}",
            f"  mistakes: {mistakes or 'none'}",
        ]
    )


def _mistake_name(kind: str) -> str:
    return MISTAKES.get(kind, "other mistake")


def record(
    problem: Problem, seed: int | None, items: Sequence[Item], status: str
) -> dict[str, Any]:
    """Return the practice record as the JSON object ``{"practice": {...}}``."""
    s = score(items)
    return {
        "practice": {
            "problem": problem.id,
            "seed": seed,
            "values": {k: _num(v) for k, v in problem.values.items()},
            "decimals": problem.practice_decimals,
            "status": status,
            "items": [_item(i) for i in items],
            "score": {
                "items": s.items,
                "answered": s.answered,
                "right_first_time": s.right_first_time,
                "hints": s.hints,
                "mistakes": dict(sorted(s.mistakes.items())),
            },
        }
    }


def as_json(problem: Problem, seed: int | None, items: Sequence[Item], status: str) -> str:
    """Return :func:`record` as one line of strict JSON."""
    return json.dumps(record(problem, seed, items, status), ensure_ascii=False, allow_nan=False)


def _item(item: Item) -> dict[str, Any]:
    q = item.question
    out: dict[str, Any] = {
        "kind": q.kind,
        "symbol": q.symbol,
        "step": q.step,
        "answer": item.answers[0] if item.answers else None,
        "verdict": item.verdicts[0] if item.verdicts else None,
        "mistake": item.mistakes[0] if item.mistakes else None,
        "hints": item.hints,
        "attempts": len(item.answers),
        "solved": item.solved,
        "mistakes": [
            m or "other" for m, v in zip(item.mistakes, item.verdicts, strict=True) if v == "wrong"
        ],
    }
    if q.kind == "update":
        out["values"] = {k: _num(v) for k, v in q.values.items()}
        out[q.quantity or "gradient"] = _num(q.expected)
    return out


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
