"""The functions a loss may call: one record per function, every other table a view of it.

A :class:`LossFunction` holds everything the tutor knows about one function:
its name and arity, the SymPy function with its derivative, how it is
computed in float, NumPy and mpmath arithmetic and by TensorFlow (given the
``tf`` module, so nothing here imports TensorFlow), the source text
``--show-code`` prints, the sentence of its derivation rule, its one-line and
LaTeX names, and what the error bound needs about it (:class:`ErrorModel`).
The parser, the rule engine, the numeric walk, the TensorFlow builder, the
error bound and the renderers all look functions up here, so adding one is
adding one record with :func:`register`.

A function TensorFlow computes with several operations (``huber``) is written
once, as a *formula* over an :class:`Arithmetic`: each consumer runs the same
formula with its own arithmetic (SymPy, NumPy, TensorFlow, the error bound's
graph, the source text of ``--show-code``), so the copies cannot drift.

``sigmoid``, ``relu``, ``softplus`` and ``huber`` are opaque SymPy functions:
keeping σ as σ (rather than 1/(1+e^{-z})) lets SymPy simplify gradients of
logistic losses in milliseconds and gives the textbook x(σ(z) − y).

>>> REGISTRY["huber"].arity
2
>>> FUNCTIONS["exp"][1]
1
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy import Abs, Function, Heaviside, Piecewise, S, exp, log, sign

from ._mathtext import unicode as _m

# ---------------------------------------------------------------------------------------
# Arithmetic: what a formula may use beyond + - * /, in each backend.


@dataclass(frozen=True)
class Arithmetic:
    """How one backend computes what a formula uses besides the operators ``+ - * /``.

    ``const(q, like)`` makes the exact fraction ``q`` a constant of the kind
    of ``like`` (TensorFlow needs its dtype).
    """

    abs: Callable[[Any], Any]
    square: Callable[[Any], Any]
    le: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]
    const: Callable[[Fraction, Any], Any]


def _pick(condition: Any, a: Any, b: Any) -> Any:
    return a if condition else b


FLOAT = Arithmetic(abs, lambda x: x * x, operator.le, _pick, lambda q, like: float(q))
NUMPY = Arithmetic(np.abs, np.square, np.less_equal, np.where, lambda q, like: float(q))
MPMATH = Arithmetic(
    abs,
    lambda x: x * x,
    operator.le,
    _pick,
    lambda q, like: mpmath.mpf(q.numerator) / q.denominator,
)
SYMPY = Arithmetic(
    Abs,
    lambda x: x**2,
    lambda a, b: a <= b,
    lambda c, a, b: Piecewise((a, c), (b, True)),
    lambda q, like: sympy.Rational(q.numerator, q.denominator),
)


def tensorflow_arithmetic(tf: Any) -> Arithmetic:
    """Return TensorFlow's :class:`Arithmetic`, given the ``tensorflow`` module."""
    return Arithmetic(
        tf.abs,
        tf.square,
        lambda a, b: a <= b,
        tf.where,
        lambda q, like: tf.constant(float(q), dtype=like.dtype),
    )


class _Source:
    """Python source text of a value, with the binding strength of its outermost operator."""

    def __init__(self, text: str, strength: int = 9) -> None:
        self.text = text
        self.strength = strength

    def _join(self, op: str, other: Any, strength: int, swap: bool = False) -> _Source:
        left, right = (_source(other), self) if swap else (self, _source(other))
        # Python groups a - b - c as (a - b) - c: a right operand of equal strength keeps
        # its parentheses, so the printed code runs the operations in the same order.
        a = left.text if left.strength >= strength else f"({left.text})"
        b = right.text if right.strength > strength else f"({right.text})"
        return _Source(f"{a} {op} {b}", strength)

    def __add__(self, other: Any) -> _Source:
        return self._join("+", other, 1)

    def __radd__(self, other: Any) -> _Source:
        return self._join("+", other, 1, swap=True)

    def __sub__(self, other: Any) -> _Source:
        return self._join("-", other, 1)

    def __rsub__(self, other: Any) -> _Source:
        return self._join("-", other, 1, swap=True)

    def __mul__(self, other: Any) -> _Source:
        return self._join("*", other, 2)

    def __rmul__(self, other: Any) -> _Source:
        return self._join("*", other, 2, swap=True)

    def __truediv__(self, other: Any) -> _Source:
        return self._join("/", other, 2)

    def __rtruediv__(self, other: Any) -> _Source:
        return self._join("/", other, 2, swap=True)


def _source(value: Any) -> _Source:
    return value if isinstance(value, _Source) else _Source(repr(value))


def _call_source(name: str) -> Callable[..., _Source]:
    return lambda *args: _Source(f"{name}({', '.join(_source(a).text for a in args)})")


#: The arithmetic whose values are the TensorFlow source text ``--show-code`` prints.
SOURCE = Arithmetic(
    _call_source("tf.abs"),
    _call_source("tf.square"),
    lambda a, b: _Source(f"{_source(a).text} <= {_source(b).text}", 0),
    _call_source("tf.where"),
    lambda q, like: _Source(repr(float(q))),
)

Formula = Callable[..., Any]


# ---------------------------------------------------------------------------------------
# The records.


@dataclass(frozen=True, eq=False)
class ErrorModel:
    """What the error bound needs about a function.

    ``op`` is the TensorFlow operation that computes it in one kernel (the
    bound's name for it), ``tf_op`` that operation's type in a TensorFlow
    graph. ``kind`` says how its error is bounded: ``"library"``, a kernel
    with a relative error of ``roundings[dtype]`` units of u and an interval
    slope found by ``slope`` (``"exp"``, ``"log"``, ``"sqrt"``, ``"tan"``, or
    ``"curved"``: from ``curvature`` = max |f''|, capped at ``slope_cap`` =
    sup |f'|, with ``derivative`` f' in NumPy); ``"exact"``, a 1-Lipschitz
    operation that rounds nothing (abs, relu, max, min); ``"formula"``, the
    operations of its formula. ``backward`` adds TensorFlow's registered
    gradient of the kernel to the bound's graph (see
    :mod:`tutor.verify.backward`): given the graph, the node and the incoming
    gradient, it returns one gradient node per argument.
    """

    kind: str
    op: str = ""
    tf_op: str = ""
    roundings: Mapping[str, int] = field(default_factory=dict)
    slope: str = ""
    curvature: float = 0.0
    slope_cap: float = 0.0
    derivative: Callable[[Any], Any] | None = None
    backward: Callable[[Any, int, int], tuple[int | None, ...]] | None = None


@dataclass(frozen=True, eq=False)
class LossFunction:
    """Everything the tutor knows about one function a loss may call.

    ``derivative(args, k)`` is ∂f/∂(argument k) as a SymPy expression;
    ``rule(call, v)`` the sentence of its derivation step for the call
    ``call`` of the argument named ``v``; ``code`` the name ``--show-code``
    calls and ``helper`` any definition it prints first; ``latex`` and
    ``plain`` its names in LaTeX and in one-line text. ``formula``, when set,
    is the one definition its other forms are computed from.
    """

    name: str
    arity: int
    sympy: Any
    derivative: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr]
    rule: Callable[[sympy.Expr, sympy.Symbol], str]
    evaluate: Callable[..., Any]
    numpy: Callable[..., Any]
    mpmath: Callable[..., Any]
    tensorflow: Callable[..., Any]
    code: str
    latex: str
    plain: str
    bound: ErrorModel
    helper: str = ""
    formula: Formula | None = None
    summary: str = ""
    params: tuple[str, ...] = ()

    def __reduce__(self) -> Any:
        """Pickle a formula's record as the call that makes it (its pieces by reference)."""
        if self.formula is None:
            return super().__reduce__()
        spec = (self.derivative, self.rule, self.summary, self.params, self.latex, self.plain)
        return (_rebuild, (self.name, self.formula, self.arity, *spec))


def _latex_call(printer: Any, name: str, args: tuple[Any, ...], exp: Any) -> str:
    """LaTeX of ``name(args)``, raised to ``exp`` when SymPy asks for a power."""
    inner = ", ".join(printer._print(a) for a in args)
    base = rf"{name}\left({inner}\right)"
    return base if exp is None else rf"{base}^{{{exp}}}"


def _one(text: str) -> Callable[[sympy.Expr, sympy.Symbol], str]:
    """The rule sentence of a one-argument function; ``text`` uses {v}, the argument's name.

    The name is written as every other medium writes it (λ for ``lam``).
    """
    return lambda call, v: text.format(v=_m(v))


def _of_one(derivative: Callable[[sympy.Expr], sympy.Expr]) -> Callable[..., sympy.Expr]:
    return lambda args, k: derivative(args[0])


def formula_function(
    name: str,
    formula: Formula,
    *,
    arity: int,
    derivative: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr],
    rule: Callable[[sympy.Expr, sympy.Symbol], str],
    summary: str,
    params: tuple[str, ...],
    latex: str = "",
    plain: str = "",
) -> LossFunction:
    """Return the record of a function TensorFlow computes as ``formula``, every form derived.

    ``formula(arithmetic, *args)`` is the function's one definition: its SymPy
    rewrite, float, NumPy, mpmath and TensorFlow forms, the error bound's
    operations and the helper ``--show-code`` prints are all this formula run
    in another :class:`Arithmetic`. ``params`` name the helper's arguments.

    >>> twice = formula_function(
    ...     "twice", lambda ops, z: 2 * z, arity=1, derivative=lambda a, k: sympy.S(2),
    ...     rule=lambda c, v: "Twice.", summary="2*z", params=("z",))
    >>> twice.evaluate(1.5), twice.helper.splitlines()[-1]
    (3.0, '    return 2 * z')
    """
    latex = latex or rf"\operatorname{{{name}}}"
    cls = _sympy_function(name, arity, formula, derivative, latex, summary)
    body = formula(SOURCE, *(_Source(p) for p in params))
    helper = (
        f"\n\ndef {name}({', '.join(params)}):\n"
        f'    """{summary}."""\n'
        f"    return {_source(body).text}\n"
    )
    return LossFunction(
        name=name,
        arity=arity,
        sympy=cls,
        derivative=derivative,
        rule=rule,
        evaluate=functools.partial(formula, FLOAT),
        numpy=functools.partial(formula, NUMPY),
        mpmath=functools.partial(formula, MPMATH),
        tensorflow=lambda tf, *args: formula(tensorflow_arithmetic(tf), *args),
        code=name,
        latex=latex,
        plain=plain or name,
        bound=ErrorModel("formula"),
        helper=helper,
        formula=formula,
        summary=summary,
        params=params,
    )


def _rebuild(
    name: str,
    formula: Formula,
    arity: int,
    derivative: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr],
    rule: Callable[[sympy.Expr, sympy.Symbol], str],
    summary: str,
    params: tuple[str, ...],
    latex: str,
    plain: str,
) -> LossFunction:
    return formula_function(
        name,
        formula,
        arity=arity,
        derivative=derivative,
        rule=rule,
        summary=summary,
        params=params,
        latex=latex,
        plain=plain,
    )


def _sympy_function(
    name: str,
    arity: int,
    formula: Formula,
    derivative: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr],
    latex: str,
    summary: str,
) -> type[Function]:
    """Return an opaque SymPy function computed by ``formula``, differentiated by ``derivative``."""

    def fdiff(self: Function, argindex: int = 1) -> sympy.Expr:
        return derivative(self.args, argindex - 1)

    def rewrite(self: Function, *args: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return formula(SYMPY, *args)

    def evalf(self: Function, prec: int) -> Any:
        return formula(SYMPY, *self.args)._eval_evalf(prec)

    def is_real(self: Function) -> bool | None:
        return all(a.is_real for a in self.args)

    def to_latex(self: Function, printer: Any, exp: Any = None) -> str:
        return _latex_call(printer, latex, self.args, exp)

    namespace = {
        "__doc__": f"{name}: {summary}.",
        "__module__": __name__,
        "__qualname__": name,
        "nargs": arity,
        "fdiff": fdiff,
        "_eval_rewrite_as_Piecewise": rewrite,
        "_eval_evalf": evalf,
        "_eval_is_real": is_real,
        "_latex": to_latex,
    }
    return type(Function)(name, (Function,), namespace)


# ---------------------------------------------------------------------------------------
# The SymPy functions SymPy lacks.


class sigmoid(Function):  # noqa: N801 - named as the loss text writes it
    """σ(z) = 1 / (1 + e^(−z)); σ'(z) = σ(z)(1 − σ(z))."""

    nargs = 1

    @classmethod
    def eval(cls, z: sympy.Expr) -> sympy.Expr | None:
        if z.is_zero:
            return S.Half
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return 1 / (1 + exp(-z))

    def _eval_evalf(self, prec: int) -> Any:
        return self.rewrite(exp)._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_real

    def _latex(self, printer: Any, exp: Any = None) -> str:
        return _latex_call(printer, r"\sigma", self.args, exp)


class relu(Function):  # noqa: N801
    """relu(z) = max(0, z); its derivative is the step H(z) with H(0) = 0, as TensorFlow uses."""

    nargs = 1

    @classmethod
    def eval(cls, z: sympy.Expr) -> sympy.Expr | None:
        if z.is_Number:
            return z if z > 0 else S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, z: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return sympy.Max(0, z)

    def _eval_evalf(self, prec: int) -> Any:
        return self.rewrite(sympy.Max)._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_nonnegative(self) -> bool | None:
        return self.args[0].is_real

    def _latex(self, printer: Any, exp: Any = None) -> str:
        return _latex_call(printer, r"\operatorname{relu}", self.args, exp)


class softplus(Function):  # noqa: N801
    """softplus(z) = log(1 + e^z); its derivative is σ(z)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, z: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return log(1 + exp(z))

    def _eval_evalf(self, prec: int) -> Any:
        return self.rewrite(log)._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_real

    def _latex(self, printer: Any, exp: Any = None) -> str:
        return _latex_call(printer, r"\operatorname{softplus}", self.args, exp)


def _huber(ops: Arithmetic, r: Any, d: Any) -> Any:
    # square(r) rather than r*r: TensorFlow's gradient of r then sums two terms, not
    # three, and a sum of two is the same in a compiled loop as in eager mode.
    a = ops.abs(r)
    half = ops.const(Fraction(1, 2), r)
    return ops.where(ops.le(a, d), half * ops.square(r), d * (a - half * d))


def _huber_derivative(args: tuple[sympy.Expr, ...], k: int) -> sympy.Expr:
    r, d = args
    if k == 0:
        return Piecewise((r, Abs(r) <= d), (d * sign(r), True))
    return Piecewise((S.Zero, Abs(r) <= d), (Abs(r) - d, True))


def _huber_rule(call: sympy.Expr, v: sympy.Symbol) -> str:
    r, d = call.args
    residual = "r" if _m(r) == "r" else f"r = {_m(r)}"
    threshold = "d" if _m(d) == "d" else f"d = {_m(d)}"
    return (
        f"Huber loss with residual {residual} and threshold {threshold}: its slope in r is "
        f"r inside "
        f"the threshold (|r| ≤ d) and d·sign(r) outside, and its slope in d is 0 inside and "
        f"|r| − d outside (it is smooth at |r| = d, where both sides meet)."
    )


# ---------------------------------------------------------------------------------------
# The rule sentences and derivatives of max and min, and TensorFlow's gradients of kernels.


def _extremum_derivative(args: tuple[sympy.Expr, ...], k: int, func: Any) -> sympy.Expr:
    """∂max/∂aₖ = H(aₖ − max of the others); ∂min/∂aₖ = H(min of the others − aₖ)."""
    arg, others = args[k], func(*(a for j, a in enumerate(args) if j != k))
    return Heaviside(arg - others) if func is sympy.Max else Heaviside(others - arg)


def _extremum_rule(call: sympy.Expr, v: sympy.Symbol) -> str:
    if call.func is sympy.Max:
        which, tf, tie = "larger", "maximum", "a ≥ b"
    else:
        which, tf, tie = "smaller", "minimum", "a ≤ b"
    return (
        f"{_m(call)} follows its {which} argument, so its derivative "
        f"is that argument's derivative, written with the step function H; it is not "
        f"differentiable where the arguments tie: there SymPy's step H(0) = 1/2 splits "
        f"the gradient, while TensorFlow's tf.{tf}(a, b) sends it all to its first argument "
        f"a (mask {tie}); SymPy may reorder the arguments, so 'first' means first as written "
        f"in the loss."
    )


# TensorFlow's registered gradients (math_grad.py, nn_grad.py) of each kernel, written
# for the error bound's graph: ``g.op(name, *args)`` adds an operation, ``g.const(q)``
# an exact constant, ``g.nodes[i]`` reads a node (its ``args`` and ``text``).

_ONE, _ZERO, _HALF = Fraction(1), Fraction(0), Fraction(1, 2)


def _arg(g: Any, i: int) -> int:
    (a,) = g.nodes[i].args
    return int(a)


def _grad_exp(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("mul", grad, i),)


def _grad_log(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("mul", grad, g.op("div", g.const(_ONE), _arg(g, i))),)


def _grad_sqrt(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    # SqrtGrad kernel: 0.5 * grad / y
    return (g.op("div", g.op("mul", g.const(_HALF), grad), i),)


def _grad_abs(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    a = _arg(g, i)
    text = f"{g.nodes[i].text} at {g.nodes[a].text} = 0"
    return (g.op("mul", grad, g.op("sign", a, text=text)),)


def _grad_sin(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("mul", grad, g.op("cos", _arg(g, i))),)


def _grad_cos(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("mul", g.op("neg", grad), g.op("sin", _arg(g, i))),)


def _grad_tan(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    a = _arg(g, i)
    sec = g.op("div", g.const(_ONE), g.op("cos", a), text=f"1/cos({g.nodes[a].text})")
    return (g.op("mul", g.op("mul", sec, sec), grad),)


def _grad_tanh(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    # TanhGrad kernel: grad * (1 - y*y)
    return (g.op("mul", grad, g.op("sub", g.const(_ONE), g.op("mul", i, i))),)


def _grad_sigmoid(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    # SigmoidGrad kernel: grad * y * (1 - y)
    return (g.op("mul", g.op("mul", grad, i), g.op("sub", g.const(_ONE), i)),)


def _grad_relu(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    # ReluGrad: grad where the output is > 0, which is where the computed input is > 0.
    a = _arg(g, i)
    text = f"{g.nodes[i].text} at {g.nodes[a].text} = 0"
    positive = g.op("gt", a, g.const(_ZERO), text=text)
    return (g.op("select", positive, grad, g.const(_ZERO)),)


def _grad_softplus(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("mul", grad, g.op("sigmoid", _arg(g, i))),)


def _grad_extremum(compare: str) -> Callable[[Any, int, int], tuple[int | None, ...]]:
    def rule(g: Any, i: int, grad: int) -> tuple[int | None, ...]:
        a, b = g.nodes[i].args
        text = f"{g.nodes[i].text} at {g.nodes[a].text} = {g.nodes[b].text}"
        mask = g.op(compare, a, b, text=text)
        zero = g.const(_ZERO)
        return g.op("select", mask, grad, zero), g.op("select", mask, zero, grad)

    return rule


# ---------------------------------------------------------------------------------------
# Float and NumPy forms of the library functions.


def _stable_sigmoid(z: float) -> float:
    # Split by sign so exp never overflows: sigmoid(-1000) is 0, not an error.
    e = math.exp(-abs(z))
    return 1 / (1 + e) if z >= 0 else e / (1 + e)


def _np_sigmoid(z: Any) -> Any:
    # Split by sign so neither branch overflows exp.
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _np_softplus(z: Any) -> Any:
    z = np.asarray(z, dtype=np.float64)
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _library(
    name: str,
    sympy_function: Any,
    *,
    derivative: Callable[[sympy.Expr], sympy.Expr],
    rule: str,
    evaluate: Callable[..., Any],
    numpy: Callable[..., Any],
    mpmath_: Callable[..., Any],
    tensorflow: Callable[..., Any],
    code: str,
    tf_op: str,
    roundings: tuple[int, int],
    slope: str,
    backward: Callable[[Any, int, int], tuple[int | None, ...]],
    curvature: float = 0.0,
    slope_cap: float = 0.0,
    slope_derivative: Callable[[Any], Any] | None = None,
    latex: str = "",
    plain: str = "",
) -> LossFunction:
    """Return the record of a one-argument function TensorFlow computes in one kernel."""
    return LossFunction(
        name=name,
        arity=1,
        sympy=sympy_function,
        derivative=_of_one(derivative),
        rule=_one(rule),
        evaluate=evaluate,
        numpy=numpy,
        mpmath=mpmath_,
        tensorflow=tensorflow,
        code=code,
        latex=latex or rf"\{name}",
        plain=plain or name,
        bound=ErrorModel(
            "library",
            op=name,
            tf_op=tf_op,
            roundings={"float32": roundings[0], "float64": roundings[1]},
            slope=slope,
            curvature=curvature,
            slope_cap=slope_cap,
            derivative=slope_derivative,
            backward=backward,
        ),
    )


def _exact(
    name: str,
    sympy_function: Any,
    *,
    arity: int,
    derivative: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr],
    rule: Callable[[sympy.Expr, sympy.Symbol], str],
    evaluate: Callable[..., Any],
    numpy: Callable[..., Any],
    mpmath_: Callable[..., Any],
    tensorflow: Callable[..., Any],
    code: str,
    op: str,
    tf_op: str,
    backward: Callable[[Any, int, int], tuple[int | None, ...]],
    latex: str,
    plain: str = "",
) -> LossFunction:
    """Return the record of a function TensorFlow computes exactly (a 1-Lipschitz kernel)."""
    return LossFunction(
        name=name,
        arity=arity,
        sympy=sympy_function,
        derivative=derivative,
        rule=rule,
        evaluate=evaluate,
        numpy=numpy,
        mpmath=mpmath_,
        tensorflow=tensorflow,
        code=code,
        latex=latex,
        plain=plain or name,
        bound=ErrorModel("exact", op=op, tf_op=tf_op, backward=backward),
    )


# The relative error of each library function, counted in roundings (units of u): the
# bound c_f with |fl(f(x)) − f(x)| ≤ c_f·u·|f(x)| wherever f(x) is normal, for
# TensorFlow 2.21's CPU kernels and, in float64, NumPy's functions as well; given to
# each record below as (float32, float64).
#
# float32 is proved by exhaustion: the largest error over *every* finite float32
# argument (2³² of them, against a float64 reference), rounded up: exp 2.00u, log 4.36u,
# sqrt 1.00u (IEEE), sin 2.95u, cos 2.96u, tan 1.55u, tanh 6.14u, σ 8.38u, softplus 7.75u.
#
# float64 cannot be swept, and Eigen documents its double kernels only as "accurate to a
# couple of ulps", so these counts are measured, not proved: the largest error over
# 6·10⁷ arguments per function (uniform and log-uniform over the domain, against an
# 80-bit long double reference) was exp 2.43u, log 2.17u, sin 1.02u, cos 1.01u,
# tan 1.06u, tanh 9.23u, σ 3.80u, softplus 8.23u (NumPy's own functions stay below
# these). Each count is that maximum rounded up plus one rounding, because sampling can
# miss the worst argument: refining the sampling tenfold around each worst argument
# raised the maxima by at most 0.2u. ``tests/test_bound.py`` keeps sampling.

_BUILTIN: tuple[LossFunction, ...] = (
    _library(
        "exp",
        sympy.exp,
        derivative=sympy.exp,
        rule="The exponential is its own derivative: d/d{v} e^{v} = e^{v}.",
        evaluate=math.exp,
        numpy=np.exp,
        mpmath_=mpmath.exp,
        tensorflow=lambda tf, a: tf.exp(a),
        code="tf.exp",
        tf_op="Exp",
        latex="e^{",
        roundings=(2, 4),
        slope="exp",
        backward=_grad_exp,
    ),
    _library(
        "log",
        sympy.log,
        derivative=lambda a: 1 / a,
        rule="The derivative of the natural logarithm is the reciprocal: d/d{v} log({v}) = "
        "1/{v} (defined for {v} > 0).",
        evaluate=math.log,
        numpy=np.log,
        mpmath_=mpmath.log,
        tensorflow=lambda tf, a: tf.math.log(a),
        code="tf.math.log",
        tf_op="Log",
        roundings=(5, 4),
        slope="log",
        backward=_grad_log,
    ),
    _library(
        "sqrt",
        sympy.sqrt,
        derivative=lambda a: 1 / (2 * sympy.sqrt(a)),
        rule="√{v} is {v}^(1/2), so by the power rule d/d{v} √{v} = (1/2){v}^(−1/2) = 1/(2√{v}) "
        "(defined for {v} > 0).",
        evaluate=math.sqrt,
        numpy=np.sqrt,
        mpmath_=mpmath.sqrt,
        tensorflow=lambda tf, a: tf.sqrt(a),
        code="tf.sqrt",
        tf_op="Sqrt",
        roundings=(1, 1),
        slope="sqrt",
        backward=_grad_sqrt,
    ),
    _exact(
        "abs",
        sympy.Abs,
        arity=1,
        derivative=_of_one(sign),
        rule=_one(
            "|{v}| has slope −1 for {v} < 0 and 1 for {v} > 0, so d/d{v} |{v}| = sign({v}); "
            "it is not differentiable at {v} = 0, where TensorFlow's tf.abs uses the "
            "subgradient sign(0) = 0, as SymPy does."
        ),
        evaluate=abs,
        numpy=np.abs,
        mpmath_=abs,
        tensorflow=lambda tf, a: tf.abs(a),
        code="tf.abs",
        op="abs",
        tf_op="Abs",
        backward=_grad_abs,
        latex=r"\left|",
        plain="|",
    ),
    _library(
        "sin",
        sympy.sin,
        derivative=sympy.cos,
        rule="The derivative of sine is cosine: d/d{v} sin({v}) = cos({v}).",
        evaluate=math.sin,
        numpy=np.sin,
        mpmath_=mpmath.sin,
        tensorflow=lambda tf, a: tf.sin(a),
        code="tf.sin",
        tf_op="Sin",
        roundings=(3, 3),
        slope="curved",
        curvature=1.0,
        slope_cap=1.0,
        slope_derivative=np.cos,
        backward=_grad_sin,
    ),
    _library(
        "cos",
        sympy.cos,
        derivative=lambda a: -sympy.sin(a),
        rule="The derivative of cosine is minus sine: d/d{v} cos({v}) = −sin({v}).",
        evaluate=math.cos,
        numpy=np.cos,
        mpmath_=mpmath.cos,
        tensorflow=lambda tf, a: tf.cos(a),
        code="tf.cos",
        tf_op="Cos",
        roundings=(3, 3),
        slope="curved",
        curvature=1.0,
        slope_cap=1.0,
        slope_derivative=np.sin,
        backward=_grad_cos,
    ),
    _library(
        "tan",
        sympy.tan,
        derivative=lambda a: 1 + sympy.tan(a) ** 2,
        rule="The derivative of the tangent is sec²: d/d{v} tan({v}) = 1 + tan²({v}).",
        evaluate=math.tan,
        numpy=np.tan,
        mpmath_=mpmath.tan,
        tensorflow=lambda tf, a: tf.tan(a),
        code="tf.tan",
        tf_op="Tan",
        roundings=(2, 3),
        slope="tan",
        backward=_grad_tan,
    ),
    _library(
        "tanh",
        sympy.tanh,
        derivative=lambda a: 1 - sympy.tanh(a) ** 2,
        rule="The derivative of tanh is 1 − tanh²: d/d{v} tanh({v}) = 1 − tanh²({v}).",
        evaluate=math.tanh,
        numpy=np.tanh,
        mpmath_=mpmath.tanh,
        tensorflow=lambda tf, a: tf.tanh(a),
        code="tf.tanh",
        tf_op="Tanh",
        roundings=(7, 11),
        slope="curved",
        curvature=4 / (3 * math.sqrt(3)),  # |2·tanh·sech²| peaks at tanh = 1/√3
        slope_cap=1.0,
        slope_derivative=lambda z: 1 - np.tanh(z) ** 2,
        backward=_grad_tanh,
    ),
    _library(
        "sigmoid",
        sigmoid,
        derivative=lambda a: sigmoid(a) * (1 - sigmoid(a)),
        rule="The sigmoid's derivative is σ(1 − σ): d/d{v} σ({v}) = "
        "σ({v})(1 − σ({v})), kept in σ rather than expanded into exponentials.",
        evaluate=_stable_sigmoid,
        numpy=_np_sigmoid,
        mpmath_=lambda z: 1 / (1 + mpmath.exp(-z)),
        tensorflow=lambda tf, a: tf.sigmoid(a),
        code="tf.sigmoid",
        tf_op="Sigmoid",
        roundings=(9, 5),
        slope="curved",
        curvature=1 / (6 * math.sqrt(3)),  # |σ(1 − σ)(1 − 2σ)| peaks at σ = (3 ± √3)/6
        slope_cap=0.25,
        slope_derivative=lambda z: _np_sigmoid(z) * _np_sigmoid(-z),
        backward=_grad_sigmoid,
        latex=r"\sigma",
        plain="σ",
    ),
    _exact(
        "relu",
        relu,
        arity=1,
        derivative=_of_one(lambda a: Heaviside(a, 0)),
        rule=_one(
            "relu({v}) = max(0, {v}) has slope 0 for {v} < 0 and 1 for {v} > 0, so its "
            "derivative is the step H({v}); it is not differentiable at {v} = 0, "
            "where TensorFlow's tf.nn.relu uses the subgradient 0, and so does this step "
            "(H(0) = 0)."
        ),
        evaluate=lambda z: max(z, 0.0),
        numpy=lambda z: np.maximum(z, 0.0),
        mpmath_=lambda z: z if z > 0 else mpmath.mpf(0),
        tensorflow=lambda tf, a: tf.nn.relu(a),
        code="tf.nn.relu",
        op="relu",
        tf_op="Relu",
        backward=_grad_relu,
        latex=r"\operatorname{relu}",
    ),
    _library(
        "softplus",
        softplus,
        derivative=sigmoid,
        rule="softplus({v}) = log(1 + e^{v}) has the sigmoid as its derivative: "
        "d/d{v} softplus({v}) = σ({v}).",
        evaluate=lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
        numpy=_np_softplus,
        mpmath_=lambda z: mpmath.log1p(mpmath.exp(z)),
        tensorflow=lambda tf, a: tf.nn.softplus(a),
        code="tf.nn.softplus",
        tf_op="Softplus",
        roundings=(8, 10),
        slope="curved",
        curvature=0.25,  # softplus'' = σ(1 − σ) ≤ 1/4
        slope_cap=1.0,
        slope_derivative=_np_sigmoid,
        backward=_grad_softplus,
        latex=r"\operatorname{softplus}",
    ),
    _exact(
        "max",
        sympy.Max,
        arity=2,
        derivative=lambda args, k: _extremum_derivative(args, k, sympy.Max),
        rule=_extremum_rule,
        evaluate=max,
        # SymPy flattens Max(Max(a, b), c) into Max(a, b, c).
        numpy=lambda *a: functools.reduce(np.maximum, a),
        mpmath_=max,
        tensorflow=lambda tf, a, b: tf.maximum(a, b),
        code="tf.maximum",
        op="maximum",
        tf_op="Maximum",
        backward=_grad_extremum("ge"),
        latex=r"\max",
        plain="max",
    ),
    _exact(
        "min",
        sympy.Min,
        arity=2,
        derivative=lambda args, k: _extremum_derivative(args, k, sympy.Min),
        rule=_extremum_rule,
        evaluate=min,
        numpy=lambda *a: functools.reduce(np.minimum, a),
        mpmath_=min,
        tensorflow=lambda tf, a, b: tf.minimum(a, b),
        code="tf.minimum",
        op="minimum",
        tf_op="Minimum",
        backward=_grad_extremum("le"),
        latex=r"\min",
        plain="min",
    ),
    formula_function(
        "huber",
        _huber,
        arity=2,
        derivative=_huber_derivative,
        rule=_huber_rule,
        summary="r**2/2 where |r| <= d, else d*(|r| - d/2)",
        params=("r", "d"),
    ),
)

#: Every function a loss may call, by the name it calls it.
REGISTRY: dict[str, LossFunction] = {f.name: f for f in _BUILTIN}

huber = REGISTRY["huber"].sympy

_by_sympy: dict[Any, LossFunction] = {}
_by_op: dict[str, LossFunction] = {}


def _index() -> None:
    _by_sympy.clear()
    _by_op.clear()
    for record in REGISTRY.values():
        _by_sympy[record.sympy] = record
        if record.bound.op:
            _by_op[record.bound.op] = record


_index()


def register(record: LossFunction) -> None:
    """Add ``record`` to the registry (or replace the record of the same name)."""
    REGISTRY[record.name] = record
    if isinstance(record.sympy, type) and record.sympy.__module__ == __name__:
        globals()[record.name] = record.sympy  # SymPy objects pickle their class by name
    _index()


def unregister(name: str) -> None:
    """Remove the function ``name`` from the registry."""
    record = REGISTRY.pop(name)
    if globals().get(name) is record.sympy and record not in _BUILTIN:
        del globals()[name]
    _index()


@contextlib.contextmanager
def registered(record: LossFunction) -> Iterator[LossFunction]:
    """Register ``record`` for the duration of a ``with`` block, then restore the registry."""
    previous = REGISTRY.get(record.name)
    register(record)
    try:
        yield record
    finally:
        if previous is None:
            unregister(record.name)
        else:
            register(previous)


def builtin(record: LossFunction) -> bool:
    """Return whether ``record`` is one of the functions the tutor ships."""
    return any(record is f for f in _BUILTIN)


def by_sympy(func: Any) -> LossFunction | None:
    """Return the record whose SymPy function is ``func``, or None."""
    return _by_sympy.get(func)


def by_op(op: str) -> LossFunction | None:
    """Return the record of the function the error bound calls ``op`` (a kernel), or None."""
    return _by_op.get(op)


class _Arities(Mapping[str, tuple[Any, int]]):
    """The registry as name → (SymPy function, arity), always current."""

    def __getitem__(self, name: str) -> tuple[Any, int]:
        record = REGISTRY[name]
        return record.sympy, record.arity

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


#: The functions a loss may call, by the name it calls them, with their arity.
FUNCTIONS: Mapping[str, tuple[Any, int]] = _Arities()

#: Names that stand for constants in a loss.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
