"""The parts pitfalls are made of: the setting, the printed code and its live twin, SymPy's side.

Each printed line has a live counterpart built from the same parsed tree: the text with
:func:`tutor.render.code.expression`, the tensors with :func:`tutor.autodiff.build_loss`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .expression import Binary, Call, Name, Node, Unary
from .model import Problem
from .pitfalls import Agreement, Expected, Outcome, _Recorder

# ---------------------------------------------------------------------------------------
# The setting a pitfall works in: the problem, its first wrt symbol, its point.


class _NotApplicable(Exception):
    """The problem's loss lacks what the pitfall needs (the message says what)."""


@dataclass(frozen=True)
class _Setting:
    problem: Problem
    w: str
    point: dict[str, float]
    dtype: str = "float32"

    @property
    def others(self) -> list[str]:
        """The valued symbols other than ``w``, in the file's order."""
        return [n for n in self.point if n != self.w]

    def fresh(self, stem: str) -> str:
        """Return a variable name from ``stem`` that no symbol of the problem uses."""
        taken = {*self.point, *self.problem.data, "tf", "tape", "loss", "math", "huber"}
        name = stem
        while name in taken:
            name += "_"
        return name


#: Names the printed code uses for itself; a problem symbol with one of them would clash.
_RESERVED = frozenset(
    {"tf", "math", "huber", "print", "range", "tape", "outer", "inner", "step", "loss"}
    | {"losses", "loss_round", "loss_cast", "positive", "safe", "root", "distance"}
    | {"root_gradient"}
)
_RESERVED_PREFIXES = ("grad_", "d2loss_", "rounded_")


def _setting(problem: Problem) -> _Setting:
    names = {*problem.values, *problem.constants, *problem.data}
    clash = sorted(n for n in names if n in _RESERVED or n.startswith(_RESERVED_PREFIXES))
    if clash:
        raise _NotApplicable(
            f"names a symbol {clash[0]!r}, a name the printed code uses for itself"
        )
    point = {**problem.constants, **problem.values}
    return _Setting(problem, problem.wrt[0], point, problem.dtype)


def _tf_dtype(tf: Any, dtype: str) -> Any:
    return tf.float64 if dtype == "float64" else tf.float32


def _dtype_arg(dtype: str) -> str:
    return "" if dtype == "float32" else ", dtype=tf.float64"


def _literal(value: float) -> str:
    return repr(float(value))


# --- code text ---------------------------------------------------------------------------


def _header(s: _Setting, tree: Node | None = None) -> list[str]:
    """The imports a script needs (``math`` for pi and e, a huber helper)."""
    from .functions import REGISTRY
    from .render.code import _uses

    tree = tree or s.problem.tree
    imports = "import math\n\n" if _uses(tree, "pi") or _uses(tree, "E") else ""
    lines = [f"{imports}import tensorflow as tf"]
    for record in REGISTRY.values():
        if record.helper and _uses(tree, record.name):
            lines.append(record.helper.rstrip("\n"))
    return [*lines, ""]


def _definitions(
    s: _Setting,
    values: Mapping[str, float | int],
    dtype: Mapping[str, str] | None = None,
    make: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per data column and valued symbol, as the notebook's cell 5 writes them."""
    dtype = dtype or {}
    make = make or {}
    lines = []
    for name, column in s.problem.data.items():
        lines.append(
            f"{name} = tf.constant({list(column)!r}{_dtype_arg(dtype.get(name, s.dtype))})"
        )
    for name, value in values.items():
        text = repr(value) if isinstance(value, int) else _literal(value)
        kind = make.get(name, "tf.convert_to_tensor")
        lines.append(f"{name} = {kind}({text}{_dtype_arg(dtype.get(name, s.dtype))})")
    return lines


def _loss_text(s: _Setting, tree: Node | None = None, mean: bool = True) -> str:
    from .render.code import expression

    text = expression(tree or s.problem.tree)
    return f"tf.reduce_mean({text})" if s.problem.data and mean else text


def _prints(*labels: tuple[str, str], indent: str = "") -> list[str]:
    return [f'{indent}print("{label} =", {variable})' for label, variable in labels]


def _script(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


# --- live counterparts -------------------------------------------------------------------


def _env(
    tf: Any,
    s: _Setting,
    values: Mapping[str, float | int],
    dtype: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The tensors :func:`_definitions` makes, made live."""
    import numpy as np

    dtype = dtype or {}
    env: dict[str, Any] = {}
    for name, column in s.problem.data.items():
        env[name] = tf.constant(list(column), dtype=_tf_dtype(tf, dtype.get(name, s.dtype)))
    for name, value in values.items():
        if isinstance(value, int):
            env[name] = tf.convert_to_tensor(value)
        else:
            kind = dtype.get(name, s.dtype)
            env[name] = tf.convert_to_tensor(np.array(value, dtype=kind), dtype=_tf_dtype(tf, kind))
    return env


def _live_loss(tf: Any, s: _Setting, env: Mapping[str, Any], tree: Node | None = None) -> Any:
    from .autodiff import build_loss

    value = build_loss(tree or s.problem.tree, env, _dtype_of(tf, env, s))
    return tf.reduce_mean(value) if s.problem.data else value


def _dtype_of(tf: Any, env: Mapping[str, Any], s: _Setting) -> Any:
    """The dtype the loss's number literals take: that of the first floating tensor."""
    for value in env.values():
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.is_floating:
            return dtype
    return _tf_dtype(tf, s.dtype)


def _rename(tree: Node, old: str, new: str) -> Node:
    """Return ``tree`` with the symbol ``old`` written as ``new``."""
    if isinstance(tree, Name):
        return Name(new) if tree.id == old else tree
    if isinstance(tree, Unary):
        return Unary(tree.op, _rename(tree.operand, old, new))
    if isinstance(tree, Binary):
        return Binary(tree.op, _rename(tree.left, old, new), _rename(tree.right, old, new))
    if isinstance(tree, Call):
        return Call(tree.func, tuple(_rename(a, old, new) for a in tree.args))
    return tree


# ---------------------------------------------------------------------------------------
# SymPy's side: the gradient at a point, exactly, and the bound a fixed result must meet.


def _exact_point(point: Mapping[str, float]) -> dict[Any, Any]:
    import sympy

    from .expression import make_symbol

    return {make_symbol(n): sympy.Rational(Fraction(v)) for n, v in point.items()}


def _symbolic(expr: Any, point: Mapping[str, float]) -> float | None:
    """Return ``expr`` at ``point`` evaluated in high precision; None when not a real number."""

    value = expr.subs(_exact_point(point)).evalf(40)
    if not value.is_real or not value.is_finite:
        return None
    return float(value)


def _gradient_expr(
    problem: Problem, name: str, data: Mapping[str, Sequence[float]] | None = None
) -> Any:
    """∂L/∂name as SymPy writes it (unsimplified), the mean over the data rows if any."""
    import sympy

    from .expression import make_symbol

    data = problem.data if data is None else data
    partial = sympy.diff(problem.loss, make_symbol(name))
    if not data:
        return partial
    rows = len(next(iter(data.values())))
    terms = [
        partial.subs({make_symbol(k): sympy.Rational(Fraction(v[i])) for k, v in data.items()})
        for i in range(rows)
    ]
    return sympy.Add(*terms) / rows


def _problem_bound(problem: Problem, name: str, point: Mapping[str, float], dtype: str) -> float:
    """The forward error bound TF's gradient of ``problem`` meets (:mod:`tutor.verify`)."""
    import numpy as np

    from .verify import gradient_bound

    values = {k: np.array([v]) for k, v in point.items() if k not in problem.constants}
    assessment = gradient_bound(problem, name, dtype).assess(values)
    return float(assessment.bound[0])


def _closed_form_bound(expr: Any, point: Mapping[str, float], dtype: str) -> float:
    """The forward error bound of ``expr`` evaluated in ``dtype``: γ_k·S (Higham, ch. 3).

    For values the tape computes that are not a problem's own gradient (a
    second derivative, the gradient of a square root): S and k are those of
    SymPy's unsimplified closed form, which follows the tape's operations;
    two more roundings cover the inputs held in ``dtype``.
    """
    import sympy

    from .verify import gamma, magnitude, precision

    # DiracDelta (the derivative of a step) is 0 wherever it has a value.
    m = magnitude(expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero))
    scale = _symbolic(m.expr, point)
    if scale is None:
        return math.inf
    return gamma(m.k + 2, precision(dtype).u) * scale


def _agreement(
    label: str,
    outcome: Outcome,
    symbolic: float | None,
    bound: float,
) -> Agreement:
    found = outcome.result(label)
    tf_value = found.value if found is not None and isinstance(found.value, float) else None
    if tf_value is None or symbolic is None:
        return Agreement(label, tf_value, symbolic, None, None, symbolic is None)
    difference = abs(tf_value - symbolic)
    return Agreement(label, tf_value, symbolic, difference, bound, difference <= bound)


# ---------------------------------------------------------------------------------------
# The pitfalls. Each returns its codes, live runs and explanation for one setting.


@dataclass(frozen=True)
class _Spec:
    point: Mapping[str, float]
    broken_code: str
    broken: Callable[[Any, _Recorder], None]
    fixed_code: str
    fixed: Callable[[Any, _Recorder], None]
    why: str
    fix: str
    expected: Callable[[Outcome], tuple[tuple[Expected, ...], tuple[Agreement, ...]]]


def _gradient_check(
    s: _Setting, label: str, name: str, point: Mapping[str, float], dtype: str | None = None
) -> Callable[[Outcome], tuple[tuple[Expected, ...], tuple[Agreement, ...]]]:
    """Expect SymPy's ∂L/∂name at ``point`` for ``label``, within the problem's own bound.

    A partial of a module-level function, so that the time limit's child can take it.
    """
    return functools.partial(_check_gradient, s, label, name, point, dtype)


def _check_gradient(
    s: _Setting,
    label: str,
    name: str,
    point: Mapping[str, float],
    dtype: str | None,
    fixed: Outcome,
) -> tuple[tuple[Expected, ...], tuple[Agreement, ...]]:
    expr = _gradient_expr(s.problem, name)
    value = _symbolic(expr, point)
    bound = _problem_bound(s.problem, name, point, dtype or s.dtype)
    expected = Expected(label, value, _gradient_text(s.problem, name, point, value))
    return (expected,), (_agreement(label, fixed, value, bound),)


def _gradient_text(
    problem: Problem, name: str, point: Mapping[str, float], value: float | None
) -> str:
    """``∂L/∂w = 2x(wx − y) = 2·3·(1·3 − 6) = −18``: the closed form, substituted, its value."""
    import sympy

    from ._mathtext import unicode
    from .expression import make_symbol

    closed = sympy.factor(sympy.diff(problem.loss, make_symbol(name)))
    if problem.data:
        return f"∂L/∂{name} = mean over rows of {unicode(closed)} = {_pretty(value)}"
    substituted = unicode(closed, point)
    return f"∂L/∂{name} = {unicode(closed)} = {substituted} = {_pretty(value)}"


def _pretty(value: float | None) -> str:
    from ._mathtext import minus
    from ._numbers import number

    return "undefined" if value is None else minus(number(value, 8))


def _tape_lines(
    s: _Setting, watched: Sequence[str], body: Sequence[str], opener: str = ""
) -> list[str]:
    lines = [opener or "with tf.GradientTape() as tape:"]
    lines += [f"    tape.watch({n})" for n in watched]
    return lines + [f"    {line}" for line in body]
