"""The forward error bound TensorFlow's gradient meets: |g_tf − g| ≤ γ_k·S + floor.

``g`` is the exact gradient (SymPy's closed form evaluated in high precision),
``g_tf`` TensorFlow's ``GradientTape`` gradient in float32 or float64. The
bound is the standard forward error bound (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., ch. 3), derived for the computation
TensorFlow actually runs, one formula for both dtypes:

* **Model.** A basic operation rounds once: fl(a ∘ b) = (a ∘ b)(1 + δ),
  |δ| ≤ u, u = 2⁻²⁴ (float32) or 2⁻⁵³ (float64); ``sqrt`` too (IEEE).
  A library function f (``exp``, ``log``, …) errs by at most c_f·u relative
  to its exact value at its computed argument, so it counts as c_f roundings
  (:data:`ROUNDINGS`, with how each c_f was found).
* **γ_k.** γ_k = k·u/(1 − k·u) bounds |Π(1 + δ_i)^±1 − 1| over k roundings
  (Lemma 3.1), and γ_j + γ_k + γ_j·γ_k ≤ γ_{j+k} (Lemma 3.3) lets counts add.
* **Running bound.** Every value v TensorFlow computes gets a magnitude
  M ≥ |v|, a count k and a floor coefficient F with
  |fl(v) − v| ≤ E = γ_k·M + F·T. Sampled inputs are exact (k = 0, M = |v|);
  a constant, data value or literal the dtype cannot hold counts one
  rounding, and so does the 1/n with which ``reduce_mean`` seeds the rows
  (unless n is a power of 2). Then

  - a ± b: M = M_a + M_b, k = max(k_a, k_b) + 1;
  - a · b: M = M_a·M_b, k = k_a + k_b + 1 (k_a when b is 0 or ±2ʲ: no rounding);
  - a / b: M = ρ·(M_a + |v|·M_b)/|b|, k = max(k_a, k_b) + 1, with
    ρ = |b|/(|b| − E_b) ≥ 1 from |b'| ≥ |b| − E_b (exact, not first order);
  - f(a): M = s·M_a + |v|, k = k_a + c_f, where s = sup |f'(t)| over the
    argument's rounding interval |t − a| ≤ E_a (the mean value theorem
    gives |f(a') − f(a)| ≤ s·E_a; f's own rounding adds c_f·u·|f(a')|).
    s is computed from a bound on f'' (sin, cos, tanh, σ, softplus), from
    monotonicity (exp: e^(a+E_a); log: 1/(a − E_a); sqrt; tan; powers);
  - |a|, relu, max, min, ``where``: exact operations that are 1-Lipschitz:
    M and k of the arguments (the larger).
  - a sum of n terms (TF's ``AddN``, or ``reduce_sum`` over data rows):
    M = Σ M_i, k = max k_i + n − 1, whatever order TF adds in.

  S is M of the gradient and k its count: the gradient *as TensorFlow
  computes it* (the forward ops of :func:`tutor.autodiff.build_loss`, then
  the backward ops of TF's registered gradients in ``math_grad.py`` and
  ``nn_grad.py``) re-evaluated with every term's magnitude. Not SymPy's
  simplified closed form: simplification cancels terms TF still rounds
  (∂/∂w of w·x + w·(y − x) is y for SymPy but x + (y − x) for TF, which
  errs by about u·|x|, however small y is).
* **Floor.** TF on the CPU flushes subnormal results (and inputs) to zero:
  an absolute error below T, the smallest normal number, per operation,
  which no relative bound covers. F counts these errors, each weighted by how
  much the rest of the computation magnifies it (F of a·b is F_a·M_b +
  F_b·M_a + 1, and so on). Floors are first order: products of two error
  terms (orders u·T and T²) are left out.
* **Where the bound stops.** At a kink (abs, relu, max, min, huber's switch,
  a comparison) TF picks a branch from a rounded value: where the exact
  switching quantity lies within its rounding error of the switch, TF may
  take the other branch; that point is reported as a kink, with what each
  side returned. Where an argument's rounding interval reaches a singularity
  (division by ≈ 0, log or sqrt near 0, tan near a pole) s is unbounded: a
  singular point. Where an exact intermediate plus its error bound reaches
  the dtype's largest finite number, TF may overflow to ±inf (and NaN after
  it): an overflow. These verdicts are TF's arithmetic, not disagreements.

The values M, F, hazards and the "exact" intermediates are evaluated in NumPy
float64, vectorised over points. That evaluation errs too: S is raised by the
factor 1 + γ_{2n}(2⁻⁵³) (n operations, each M a sum of products of
non-negative numbers), and a hazard is flagged where the distance to the
switch is within E plus the float64 error bound of the intermediate.

>>> import numpy as np
>>> from tutor.problem import load
>>> analysis = analyse(load("seed-w"), "w")
>>> analysis.k
3
>>> a = analysis.assess({"w": np.array([0.5]), "x": np.array([3.0]), "y": np.array([6.0])})
>>> round(float(a.magnitude[0]), 9), float(a.value[0])
(45.0, -27.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from .expression import Binary, Call, Name, Node, Num, Unary, to_sympy
from .functions import REGISTRY, SYMPY, Arithmetic, by_op, by_sympy
from .model import Problem

#: Unit roundoff of NumPy's float64, in which the bound itself is evaluated.
U64 = 2.0**-53
#: Smallest positive float64 (subnormal): NumPy's underflow errs by at most this per operation.
EPS64_SUBNORMAL = 2.0**-1074


@dataclass(frozen=True)
class Precision:
    """A floating-point type: unit roundoff, flush-to-zero threshold, largest finite value."""

    name: str
    u: float
    tiny: float
    largest: float
    numpy: Any

    @property
    def u_text(self) -> str:
        """The unit roundoff as a power of two, e.g. ``2⁻²⁴``."""
        exponent = round(-math.log2(self.u))
        return "2⁻" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


FLOAT32 = Precision("float32", 2.0**-24, 2.0**-126, float(np.finfo(np.float32).max), np.float32)
FLOAT64 = Precision("float64", 2.0**-53, 2.0**-1022, float(np.finfo(np.float64).max), np.float64)
PRECISIONS = {"float32": FLOAT32, "float64": FLOAT64}

#: The relative error of each library function, counted in roundings (units of u): the
#: bound c_f with |fl(f(x)) − f(x)| ≤ c_f·u·|f(x)| wherever f(x) is normal, by dtype and
#: function; a view of :mod:`tutor.functions`, which says how each count was found.
ROUNDINGS: dict[str, dict[str, int]] = {
    dtype: {r.name: r.bound.roundings[dtype] for r in REGISTRY.values() if r.bound.roundings}
    for dtype in ("float32", "float64")
}


def roundings(function: str, prec: Precision) -> int:
    """Return c_f of ``function`` in ``prec``: its relative error in units of u.

    >>> roundings("exp", FLOAT32), roundings("tanh", FLOAT64)
    (2, 11)
    """
    record = REGISTRY.get(function) or by_op(function)
    if record is None or not record.bound.roundings:
        raise KeyError(f"no rounding count for {function!r}")
    return record.bound.roundings[prec.name]


def pow_roundings(exponent: float | None) -> int:
    """Return c_f of pow(x, c): ⌈|c|⌉ + 1 roundings, and at least 3.

    Eigen computes x**c as exp2(c·log2 x) with a double-word log2 (documented
    as 3 ulps for float); in float64 the error grows with |c|. Measured over
    4·10⁶ arguments for each of 36 exponents from −64 to 64: float64 2.68u at
    c = 2, 4.72u at 10, 20.5u at ±64, 2.2–2.5u for |c| < 1; float32 at most
    3.3u. ⌈|c|⌉ + 1 is what |c| − 1 multiplications and a final rounding would
    need; it and the floor 3 bound every measurement. A non-constant exponent
    is counted as the parser's largest, 64 (points beyond are reported).

    >>> pow_roundings(2.0), pow_roundings(64.0), pow_roundings(0.5)
    (3, 65, 3)
    """
    size = 64.0 if exponent is None else abs(exponent)
    return max(3, math.ceil(size) + 1)


#: The order in which a point's hazards explain a disagreement. "undefined": an
#: intermediate has no real value (log or sqrt of a negative number, a fractional
#: power of one), so the loss is undefined there, even where SymPy's simplified
#: partial is not (w**0.25 − w**0.25 has the partial 0 everywhere).
HAZARD_KINDS = ("kink", "singular", "overflow", "undefined")


def precision(dtype: str) -> Precision:
    """Return the :class:`Precision` of ``dtype`` ("float32" or "float64")."""
    return PRECISIONS[dtype]


@functools.lru_cache(maxsize=1024)
def gamma(k: int, u: float) -> float:
    """Return γ_k = k·u/(1 − k·u), the bound on the relative error of k roundings.

    >>> gamma(3, 2.0**-24) > 3 * 2.0**-24
    True
    """
    if k * u >= 1:
        raise ValueError(f"γ_{k} is undefined: k·u = {k * u} ≥ 1")
    return k * u / (1 - k * u)


def representable(value: Fraction, prec: Precision) -> bool:
    """Return whether ``value`` is exactly a zero or normal number of ``prec``.

    >>> representable(Fraction(1, 2), FLOAT32), representable(Fraction(1, 10), FLOAT64)
    (True, False)
    """
    with np.errstate(all="ignore"):
        rounded = float(prec.numpy(float(value)))
    if not math.isfinite(rounded):
        return False
    return Fraction(rounded) == value and (rounded == 0 or abs(rounded) >= prec.tiny)


# ---------------------------------------------------------------------------------------
# The graph of TensorFlow's computation: forward ops, then the backward ops of the tape.


@dataclass(frozen=True)
class _Node:
    """One TensorFlow operation (or input, or constant) with its static error count."""

    op: str
    args: tuple[int, ...] = ()
    k: int = 0
    rows: bool = False
    exact: bool = False  # the computed value always equals the exact one
    scale: bool = False  # the value is always 0 or ±2ʲ: multiplying by it rounds nothing
    value: float = 0.0
    fraction: Fraction | None = None
    name: str = ""
    text: str = ""
    floor: int = 0  # inputs: 1 when TF flushes one of the (data) values to zero


def _is_scale(q: Fraction | None) -> bool:
    """Return whether ``q`` is 0 or ± a power of two."""
    if q is None:
        return False
    n, d = abs(q.numerator), q.denominator
    return n == 0 or (n & (n - 1) == 0 and d & (d - 1) == 0)


class _Graph:
    """Builds the nodes in topological order; identical operations are built once.

    Sharing identical nodes is exact: TF's kernels are deterministic, so the same
    operation on the same inputs gives the same bits.
    """

    def __init__(self, prec: Precision, rows: int) -> None:
        self.prec = prec
        self.rows = rows
        self.nodes: list[_Node] = []
        self._index: dict[tuple[Any, ...], int] = {}
        self.context = ""  # what the operations being added compute, for reports

    def add(self, node: _Node) -> int:
        """Return the index of ``node``, adding it unless an identical one exists."""
        key = (node.op, node.args, node.value, node.fraction, node.name, node.rows, node.k)
        if key not in self._index:
            self._index[key] = len(self.nodes)
            self.nodes.append(node)
        return self._index[key]

    def const(self, value: Fraction | float, *, rows: bool = False, text: str = "") -> int:
        """Add a constant; it rounds once (k = 1) unless the dtype holds it exactly."""
        q = value if isinstance(value, Fraction) else None
        exact = q is not None and representable(q, self.prec)
        return self.add(
            _Node(
                "const",
                k=0 if exact else 1,
                rows=rows,
                exact=exact,
                scale=exact and _is_scale(q),
                value=float(value),
                fraction=q,
                text=text or _number_text(float(value)),
            )
        )

    def input(self, name: str, values: Sequence[float] | None, rows: bool) -> int:
        """Add a symbol's tensor: sampled values are exact; data and constants may round."""
        k, floor = 0, 0
        for v in values or ():
            q = Fraction(v)
            if not representable(q, self.prec):
                tiny = 0 < abs(v) < self.prec.tiny
                floor, k = max(floor, int(tiny)), max(k, int(not tiny))
        exact = k == 0 and floor == 0
        node = _Node("input", k=k, rows=rows, exact=exact, name=name, text=name, floor=floor)
        return self.add(node)

    def op(self, op: str, *args: int, text: str = "") -> int:
        """Add operation ``op`` on ``args``, folding exact constants as TF's result would be."""
        folded = self._fold(op, args)
        if folded is not None:
            return folded
        nodes = [self.nodes[a] for a in args]
        k, exact, scale = _static_rule(op)(self, nodes)
        rows = any(n.rows for n in nodes)
        text = text or self.context or op
        return self.add(_Node(op, args, k=k, rows=rows, exact=exact, scale=scale, text=text))

    def _fold(self, op: str, args: tuple[int, ...]) -> int | None:
        nodes = [self.nodes[a] for a in args]
        if op not in _FOLD or not all(n.op == "const" and n.exact for n in nodes):
            return None
        fractions = [n.fraction for n in nodes]
        if any(q is None for q in fractions):
            return None
        try:
            value = _FOLD[op](*fractions)
        except (ZeroDivisionError, ValueError):
            return None
        return self.const(value, rows=any(n.rows for n in nodes))

    def addn(self, terms: Sequence[int]) -> int:
        """Return the sum of gradient contributions (TF's AddN), or the one contribution."""
        return terms[0] if len(terms) == 1 else self.op("addn", *terms, text="a sum of gradients")


_FOLD: dict[str, Callable[..., Fraction]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
}


def _number_text(value: float) -> str:
    return f"{value:g}"


# Static rules: (k, exact, scale) of an operation from its arguments' nodes.


def _static_round(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes) + 1, False, False


def _static_mul(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    a, b = nodes
    if a.scale or b.scale:
        other = b if a.scale else a
        return other.k, False, False
    return a.k + b.k + 1, False, False


def _static_exact(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes), all(n.exact for n in nodes), False


def _static_select(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    branches = nodes[1:]
    k = max(n.k for n in branches)
    return k, all(n.exact for n in branches), all(n.scale for n in branches)


def _static_flag(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return 0, True, True


def _static_function(name: str) -> Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]:
    def rule(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
        return nodes[0].k + roundings(name, graph.prec), False, False

    return rule


def _static_square(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return _static_mul(graph, [nodes[0], nodes[0]])


def _static_pow(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    base, exponent = nodes
    if _const_exponent(exponent) == 1:
        return base.k, base.exact, base.scale
    c = _const_exponent(exponent)
    if c is not None:
        return base.k + pow_roundings(c), False, False
    return max(base.k, exponent.k) + pow_roundings(None), False, False


def _static_sum(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return nodes[0].k + graph.rows - 1, False, False


def _static_addn(graph: _Graph, nodes: list[_Node]) -> tuple[int, bool, bool]:
    return max(n.k for n in nodes) + len(nodes) - 1, False, False


def _const_exponent(node: _Node) -> float | None:
    """The exponent's value when it is a constant the dtype holds exactly, else None."""
    return node.value if node.op == "const" and node.exact else None


_STATIC: dict[str, Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]] = {
    "add": _static_round,
    "sub": _static_round,
    "div": _static_round,
    "mul": _static_mul,
    "square": _static_square,
    "neg": _static_exact,
    "select": _static_select,
    "sign": _static_flag,
    "gt": _static_flag,
    "ge": _static_flag,
    "le": _static_flag,
    "pow": _static_pow,
    "rowsum": _static_sum,
    "addn": _static_addn,
}


def _static_rule(op: str) -> Callable[[_Graph, list[_Node]], tuple[int, bool, bool]]:
    """Return the static rule of ``op``: arithmetic here, a function's kernel from its record."""
    if op in _STATIC:
        return _STATIC[op]
    record = _kernel(op)
    return _static_exact if record.bound.kind == "exact" else _static_function(op)


def _kernel(op: str) -> Any:
    """Return the registry's record of the function computed by the kernel ``op``."""
    record = by_op(op)
    if record is None:
        raise KeyError(f"the error bound has no operation {op!r}")
    return record


# ---------------------------------------------------------------------------------------
# Forward: the ops build_loss runs, in the order the file writes them.

_BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def source(tree: Node) -> str:
    """Return the loss text of ``tree``, parenthesised only where needed.

    >>> from tutor.expression import parse
    >>> source(parse("(w*x - (y))**2", {"w", "x", "y"}))
    '(w*x - y)**2'
    """
    if isinstance(tree, Num):
        return tree.text
    if isinstance(tree, Name):
        return tree.id
    if isinstance(tree, Unary):
        return tree.op + _wrapped(tree.operand, 3, False)
    if isinstance(tree, Binary):
        level = _PRECEDENCE[tree.op]
        left = _wrapped(tree.left, level + (tree.op == "**"), False)
        right = _wrapped(tree.right, level, tree.op in "-/**")
        join = "**" if tree.op == "**" else ("*" if tree.op == "*" else f" {tree.op} ")
        return f"{left}{join}{right}"
    return f"{tree.func}({', '.join(source(a) for a in tree.args)})"


def _wrapped(tree: Node, level: int, strict: bool) -> str:
    text = source(tree)
    own = 5 if isinstance(tree, Num | Name | Call) else 3 if isinstance(tree, Unary) else 0
    if isinstance(tree, Binary):
        own = _PRECEDENCE[tree.op]
    return f"({text})" if own < level or (strict and own == level) else text


def _forward(graph: _Graph, tree: Node, problem: Problem) -> int:
    text = source(tree)
    if isinstance(tree, Num):
        return graph.const(Fraction(str(to_sympy(tree))), text=text)
    if isinstance(tree, Name):
        return _name(graph, tree.id, problem)
    if isinstance(tree, Unary):
        inner = _forward(graph, tree.operand, problem)
        return graph.op("neg", inner, text=text) if tree.op == "-" else inner
    if isinstance(tree, Binary):
        left = _forward(graph, tree.left, problem)
        right = _forward(graph, tree.right, problem)
        return graph.op(_BINARY_OPS[tree.op], left, right, text=text)
    args = [_forward(graph, a, problem) for a in tree.args]
    texts = [source(a) for a in tree.args]
    return _call(graph, tree.func, args, texts, text)


def _name(graph: _Graph, name: str, problem: Problem) -> int:
    if name in ("pi", "E"):
        return graph.const(math.pi if name == "pi" else math.e, text=name)
    if name in problem.data:
        return graph.input(name, problem.data[name], rows=True)
    if name in problem.constants:
        return graph.input(name, [problem.constants[name]], rows=False)
    return graph.input(name, None, rows=False)


def _call(graph: _Graph, func: str, args: list[int], texts: list[str], text: str) -> int:
    """Add the operations of a call of ``func``: its kernel, or the operations of its formula."""
    record = REGISTRY[func]
    if record.formula is None:
        return graph.op(record.bound.op, *args, text=text)
    values = [_Traced(graph, a, t) for a, t in zip(args, texts, strict=True)]
    return record.formula(_graph_arithmetic(graph, text), *values).index


class _Traced:
    """A node of the bound's graph as a formula sees it: arithmetic adds operations."""

    def __init__(self, graph: _Graph, index: int, text: str) -> None:
        self.graph = graph
        self.index = index
        self.text = text

    def _op(self, op: str, sign: str, other: Any, swap: bool = False) -> _Traced:
        b = other if isinstance(other, _Traced) else self._const(other)
        left, right = (b, self) if swap else (self, b)
        text = f"{left.text}{sign}{right.text}"
        return _Traced(self.graph, self.graph.op(op, left.index, right.index, text=text), text)

    def _const(self, value: Any) -> _Traced:
        q = Fraction(value)
        return _Traced(self.graph, self.graph.const(q), _number_text(float(q)))

    def __add__(self, other: Any) -> _Traced:
        return self._op("add", " + ", other)

    def __radd__(self, other: Any) -> _Traced:
        return self._op("add", " + ", other, swap=True)

    def __sub__(self, other: Any) -> _Traced:
        return self._op("sub", " - ", other)

    def __rsub__(self, other: Any) -> _Traced:
        return self._op("sub", " - ", other, swap=True)

    def __mul__(self, other: Any) -> _Traced:
        return self._op("mul", "*", other)

    def __rmul__(self, other: Any) -> _Traced:
        return self._op("mul", "*", other, swap=True)

    def __truediv__(self, other: Any) -> _Traced:
        return self._op("div", "/", other)

    def __rtruediv__(self, other: Any) -> _Traced:
        return self._op("div", "/", other, swap=True)


def _graph_arithmetic(graph: _Graph, text: str) -> Arithmetic:
    """Return the :class:`Arithmetic` that adds a formula's operations to ``graph``.

    ``text`` is the call the formula computes, which names its branch switch.
    """

    def unary(op: str, shown: str) -> Callable[[_Traced], _Traced]:
        def build(a: _Traced) -> _Traced:
            label = shown.format(a.text)
            return _Traced(graph, graph.op(op, a.index, text=label), label)

        return build

    def le(a: _Traced, b: _Traced) -> _Traced:
        label = f"{text} at {a.text} = {b.text}"
        return _Traced(graph, graph.op("le", a.index, b.index, text=label), label)

    def where(c: _Traced, a: _Traced, b: _Traced) -> _Traced:
        return _Traced(graph, graph.op("select", c.index, a.index, b.index, text=text), text)

    def const(q: Fraction, like: Any) -> _Traced:
        return _Traced(graph, graph.const(q), _number_text(float(q)))

    return Arithmetic(unary("abs", "|{}|"), unary("square", "{}²"), le, where, const)


# ---------------------------------------------------------------------------------------
# Backward: TF's registered gradients (math_grad.py, nn_grad.py), op for op.

_Grad = Callable[[_Graph, int, int], tuple[int | None, ...]]


def _grad_add(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return grad, grad


def _grad_sub(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return grad, g.op("neg", grad)


def _grad_mul(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    return g.op("mul", grad, b), g.op("mul", grad, a)


def _grad_div(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    # RealDiv: grad / b and grad * ((-a / b) / b)
    quotient = g.op("div", g.op("div", g.op("neg", a), b), b)
    return g.op("div", grad, b), g.op("mul", grad, quotient)


def _grad_neg(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    return (g.op("neg", grad),)


def _grad_pow(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    a, b = g.nodes[i].args
    one = g.const(Fraction(1))
    base = g.op("mul", g.op("mul", grad, b), g.op("pow", a, g.op("sub", b, one)))
    positive = g.op("gt", a, g.const(Fraction(0)), text=f"{g.nodes[a].text} at 0 (pow)")
    safe = g.op("select", positive, a, one)
    log = g.op("select", positive, g.op("log", safe), g.const(Fraction(0)))
    return base, g.op("mul", g.op("mul", grad, i), log)


def _grad_square(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    # Square: grad * (x * 2)
    (a,) = g.nodes[i].args
    return (g.op("mul", grad, g.op("mul", a, g.const(Fraction(2)))),)


def _grad_select(g: _Graph, i: int, grad: int) -> tuple[int | None, ...]:
    c, _, _ = g.nodes[i].args
    zero = g.const(Fraction(0))
    return None, g.op("select", c, grad, zero), g.op("select", c, zero, grad)


_GRADIENTS: dict[str, _Grad] = {
    "add": _grad_add,
    "sub": _grad_sub,
    "mul": _grad_mul,
    "square": _grad_square,
    "div": _grad_div,
    "neg": _grad_neg,
    "pow": _grad_pow,
    "select": _grad_select,
}


def _gradient_rule(op: str) -> _Grad:
    """Return TF's gradient of ``op``: arithmetic here, a function's kernel from its record."""
    if op in _GRADIENTS:
        return _GRADIENTS[op]
    backward = _kernel(op).bound.backward
    if backward is None:
        raise KeyError(f"the error bound has no gradient for {op!r}")
    return backward


def _depends(graph: _Graph, target: int) -> set[int]:
    """Return the nodes whose value depends on ``target`` (the tape records these)."""
    found = {target}
    for i, node in enumerate(graph.nodes):
        if any(a in found for a in node.args):
            found.add(i)
    return found


def _seed(graph: _Graph, root: int) -> int:
    """The gradient of the loss at its root: 1, or 1/n per row under reduce_mean."""
    if not graph.nodes[root].rows:
        return graph.const(Fraction(1))
    one = graph.const(Fraction(1), rows=True)
    return graph.op("div", one, graph.const(Fraction(graph.rows)), text="1/n")


def _backward(graph: _Graph, root: int, target: int) -> int:
    """Add TF's backward ops from ``root`` to ``target``; return the gradient's node."""
    depends = _depends(graph, target)
    pending: dict[int, list[int]] = {root: [_seed(graph, root)]}
    for i in range(root, target, -1):
        if i not in pending:
            continue
        grad = graph.addn(pending.pop(i))
        node = graph.nodes[i]
        graph.context = f"the gradient through {node.text}"
        for arg, contribution in zip(
            node.args, _gradient_rule(node.op)(graph, i, grad), strict=True
        ):
            if contribution is None or arg not in depends:
                continue
            if node.rows and not graph.nodes[arg].rows:
                contribution = graph.op("rowsum", contribution, text="a sum over the rows")
            pending.setdefault(arg, []).append(contribution)
    return graph.addn(pending[target]) if target in pending else graph.const(Fraction(0))


def _ancestors(graph: _Graph, target: int) -> tuple[int, ...]:
    """Return the nodes ``target`` is computed from, in topological order."""
    needed = {target}
    for i in range(target, -1, -1):
        if i in needed:
            needed.update(graph.nodes[i].args)
    return tuple(sorted(needed))


# ---------------------------------------------------------------------------------------
# Evaluation of the bound at points (NumPy float64, vectorised).


@dataclass(frozen=True)
class Hazard:
    """Points where the bound does not apply: a kink, a singular point or an overflow."""

    kind: str
    text: str
    mask: np.ndarray


@dataclass(frozen=True)
class Assessment:
    """The bound at each of a batch of points, and where it stops applying."""

    k: int
    precision: Precision
    value: np.ndarray
    magnitude: np.ndarray
    floor: np.ndarray
    tolerance: np.ndarray
    hazards: tuple[Hazard, ...] = ()

    def hazards_at(self, i: int) -> tuple[Hazard, ...]:
        """Return the hazards at point ``i`` of the first kind present: kink, singular, overflow."""
        for kind in HAZARD_KINDS:
            found = tuple(h for h in self.hazards if h.kind == kind and h.mask[i])
            if found:
                # The first overflow or undefined value is the cause; later ones follow from it.
                return found if kind in ("kink", "singular") else found[:1]
        return ()


@dataclass
class _State:
    v: Any
    m: Any
    f: Any
    e: Any = 0.0  # the dtype's error bound E = γ_k·M + F·T
    d: Any = 0.0  # E plus the float64 evaluation's own error bound


@dataclass
class _Run:
    """One evaluation pass: inputs, states of the nodes so far, hazards found."""

    analysis: Analysis
    env: Mapping[str, Any]
    shape: tuple[int, ...]
    states: dict[int, _State] = field(default_factory=dict)
    hazards: list[Hazard] = field(default_factory=list)

    def flag(self, kind: str, node: _Node, mask: Any) -> None:
        """Record a hazard of ``kind`` at the points of ``mask`` (any row counts)."""
        if not np.any(mask):
            return
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        if mask.ndim == 2:
            mask = mask.any(axis=-1)
        self.hazards.append(Hazard(kind, node.text, mask.reshape(-1)))


def _errors(node: _Node, s: _State, prec: Precision) -> None:
    """Fill in E (the dtype's bound) and D (E plus float64's) for a node's state."""
    if node.exact:
        s.e, s.d = 0.0, 0.0
        return
    s.e = gamma(node.k, prec.u) * s.m + s.f * prec.tiny
    s.d = s.e + gamma(node.k + 1, U64) * s.m + s.f * EPS64_SUBNORMAL


def _ev_input(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    v = run.env[node.name]
    return v, np.abs(v), float(node.floor)


def _ev_const(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    return node.value, abs(node.value), 0.0


def _ev_add(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    v = a.v + b.v if node.op == "add" else a.v - b.v
    return v, a.m + b.m, a.f + b.f + 1


def _ev_neg(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    return -a.v, a.m, a.f


def _ev_mul(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    first, second = (run.analysis.nodes[j] for j in node.args)
    v = a.v * b.v
    if first.scale or second.scale:
        c, x = (a, b) if first.scale else (b, a)
        return v, np.abs(c.v) * x.m, np.abs(c.v) * x.f + 1
    return v, a.m * b.m, _times(b.m, a.f) + _times(a.m, b.f) + 1


def _ev_div(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    size = np.abs(b.v)
    run.flag("singular", node, size <= b.d)
    with np.errstate(all="ignore"):
        v = a.v / b.v
        rho = np.where(size > b.e, size / (size - b.e), np.inf)
        m = rho * (a.m + _times(np.abs(v), b.m * (b.e > 0))) / size
        f = rho * (a.f + _times(np.abs(v), b.f)) / size + 1
    return v, m, f


def _ev_exact(fn: Callable[..., Any]) -> Callable[[_Run, _Node, list[_State]], Any]:
    """abs, relu, max, min: exact and 1-Lipschitz, so the arguments' bounds carry over."""

    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        v = fn(*(a.v for a in args))
        return v, _largest(a.m for a in args), _largest(a.f for a in args)

    return rule


def _times(slope: Any, error: Any) -> Any:
    """slope·error, where an error of exactly 0 contributes 0 even to an infinite slope."""
    return np.where(error == 0, 0.0, slope * error)


def _largest(values: Iterable[Any]) -> Any:
    return functools.reduce(np.maximum, values)


def _ev_compare(fn: Callable[[Any, Any], Any]) -> Callable[[_Run, _Node, list[_State]], Any]:
    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        a, b = args
        run.flag("kink", node, np.abs(a.v - b.v) <= a.d + b.d)
        return fn(a.v, b.v), 0.0, 0.0

    return rule


def _ev_sign(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    run.flag("kink", node, np.abs(a.v) <= a.d)
    v = np.sign(a.v)
    return v, np.abs(v), 0.0


def _ev_select(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    c, a, b = args
    return np.where(c.v, a.v, b.v), np.where(c.v, a.m, b.m), np.where(c.v, a.f, b.f)


def _ev_rowsum(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args

    def total(x: Any) -> Any:
        return np.broadcast_to(x, run.shape).sum(axis=-1, keepdims=True)

    return total(a.v), total(a.m), total(a.f) + run.analysis.rows - 1


def _ev_addn(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    return (
        sum(a.v for a in args),
        sum(a.m for a in args),
        sum(a.f for a in args) + len(args) - 1,
    )


def _unary(
    fn: Callable[[Any], Any], slope: Callable[[_Run, _Node, _State], Any]
) -> Callable[[_Run, _Node, list[_State]], Any]:
    """A library function: M = s·M_a + |v| with s = sup |f'| on the argument's interval."""

    def rule(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
        (a,) = args
        v = fn(a.v)
        if run.analysis.nodes[node.args[0]].exact:
            return v, np.abs(v), 1.0
        s = slope(run, node, a)
        return v, _times(s, a.m) + np.abs(v), _times(s, a.f) + 1

    return rule


def _slope_exp(run: _Run, node: _Node, a: _State) -> Any:
    return np.exp(a.v + a.e)


def _slope_log(run: _Run, node: _Node, a: _State) -> Any:
    run.flag("singular", _labelled(node, "near 0"), a.v <= a.d)
    return np.where(a.v > a.e, 1 / np.where(a.v > a.e, a.v - a.e, 1.0), np.inf)


def _slope_sqrt(run: _Run, node: _Node, a: _State) -> Any:
    run.flag("singular", _labelled(node, "near 0"), a.v <= a.d)
    low = np.where(a.v > a.e, a.v - a.e, 1.0)
    return np.where(a.v > a.e, 0.5 / np.sqrt(low), np.inf)


def _slope_tan(run: _Run, node: _Node, a: _State) -> Any:
    gap = np.abs(np.cos(a.v)) - a.e
    run.flag("singular", _labelled(node, "near a pole"), np.abs(np.cos(a.v)) <= a.d)
    return np.where(gap > 0, 1 / np.where(gap > 0, gap, 1.0) ** 2, np.inf)


def _slope_curved(run: _Run, node: _Node, a: _State) -> Any:
    """sup |f'| ≤ min(cap, |f'(a)| + max|f''|·E_a), by the mean value theorem on f'."""
    model = _kernel(node.op).bound
    return np.minimum(model.slope_cap, np.abs(model.derivative(a.v)) + model.curvature * a.e)


_SLOPES: dict[str, Callable[[_Run, _Node, _State], Any]] = {
    "exp": _slope_exp,
    "log": _slope_log,
    "sqrt": _slope_sqrt,
    "tan": _slope_tan,
    "curved": _slope_curved,
}


def _labelled(node: _Node, where: str) -> _Node:
    return _Node(node.op, node.args, rows=node.rows, text=f"{node.text} {where}")


def _ev_pow(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    a, b = args
    base, exponent = (run.analysis.nodes[j] for j in node.args)
    c = _const_exponent(exponent)
    v = np.power(a.v, b.v)
    if c == 1 or (c is not None and base.exact):
        return (v, a.m, a.f) if c == 1 else (v, np.abs(v), 1.0)
    if c is not None:
        s = _power_slope(run, node, a, c)
        return v, _times(s, a.m) + np.abs(v), _times(s, a.f) + 1
    return _pow_general(run, node, a, b, v)


def _power_slope(run: _Run, node: _Node, a: _State, c: float) -> Any:
    """sup |c·t^(c−1)| over |t − a| ≤ E_a: at the far end for c ≥ 1, the near end below."""
    size = np.abs(a.v)
    if c >= 1 and float(c).is_integer():
        return abs(c) * (size + a.e) ** (c - 1)
    run.flag("singular", _labelled(node, "near 0"), size <= a.d)
    if c >= 1:
        return abs(c) * (size + a.e) ** (c - 1)
    near = np.where(size > a.e, size - a.e, 1.0)
    return np.where(size > a.e, abs(c) * near ** (c - 1), np.inf)


def _pow_general(run: _Run, node: _Node, a: _State, b: _State, v: Any) -> tuple[Any, Any, Any]:
    """a**b with a rounded or variable exponent: first order in both errors."""
    run.flag("singular", _labelled(node, "near a base of 0"), np.abs(a.v) <= a.d)
    beyond = _labelled(node, "with an exponent beyond ±64, where pow's error is not measured")
    run.flag("singular", beyond, np.abs(b.v) + b.d > 64)
    safe = np.where(a.v != 0, np.abs(a.v), 1.0)
    ds_a = np.abs(b.v) * np.abs(np.power(safe, b.v - 1))
    ds_b = np.abs(v) * np.abs(np.log(safe))
    m = _times(ds_a, a.m) + _times(ds_b, b.m) + np.abs(v)
    return v, m, _times(ds_a, a.f) + _times(ds_b, b.f) + 1


def _ev_square(run: _Run, node: _Node, args: list[_State]) -> tuple[Any, Any, Any]:
    (a,) = args
    if run.analysis.nodes[node.args[0]].scale:
        return a.v * a.v, np.abs(a.v) * a.m, np.abs(a.v) * a.f + 1
    return a.v * a.v, a.m * a.m, 2 * _times(a.m, a.f) + 1


_Evaluator = Callable[[_Run, _Node, list[_State]], tuple[Any, Any, Any]]

_EVALUATORS: dict[str, _Evaluator] = {
    "input": _ev_input,
    "const": _ev_const,
    "add": _ev_add,
    "sub": _ev_add,
    "neg": _ev_neg,
    "mul": _ev_mul,
    "square": _ev_square,
    "div": _ev_div,
    "pow": _ev_pow,
    "gt": _ev_compare(np.greater),
    "ge": _ev_compare(np.greater_equal),
    "le": _ev_compare(np.less_equal),
    "sign": _ev_sign,
    "select": _ev_select,
    "rowsum": _ev_rowsum,
    "addn": _ev_addn,
}


@functools.cache
def _kernel_evaluator(op: str, record: Any) -> _Evaluator:
    if record.bound.kind == "exact":
        return _ev_exact(record.numpy)
    return _unary(record.numpy, _SLOPES[record.bound.slope])


def _evaluator(op: str) -> _Evaluator:
    """Return how ``op`` is evaluated: arithmetic here, a function's kernel from its record."""
    if op in _EVALUATORS:
        return _EVALUATORS[op]
    return _kernel_evaluator(op, _kernel(op))


@dataclass(frozen=True)
class Analysis:
    """TF's computation of one partial as a graph of operations, ready to bound at points."""

    symbol: str
    precision: Precision
    nodes: tuple[_Node, ...]
    order: tuple[int, ...]
    target: int
    rows: int
    data: Mapping[str, np.ndarray]
    constants: Mapping[str, float]

    @property
    def k(self) -> int:
        """The number of roundings on the longest path to the gradient."""
        return self.nodes[self.target].k

    def assess(self, points: Mapping[str, Any], chunk: int = 1 << 16) -> Assessment:
        """Return the bound at each point (``points``: symbol → array of shape (N,))."""
        arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in points.items()}
        size = len(next(iter(arrays.values()))) if arrays else 1
        step = max(1, chunk // max(self.rows, 1))
        parts = [
            self._assess({k: v[i : i + step] for k, v in arrays.items()}, min(step, size - i))
            for i in range(0, size, step)
        ]
        return parts[0] if len(parts) == 1 else _concatenate(parts)

    def _assess(self, points: Mapping[str, np.ndarray], size: int) -> Assessment:
        shape = (size, self.rows) if self.rows else (size,)
        env: dict[str, Any] = {k: v.reshape(size, 1) if self.rows else v for k, v in points.items()}
        env.update({k: np.float64(v) for k, v in self.constants.items()})
        env.update({k: v.reshape(1, -1) for k, v in self.data.items()})
        run = _Run(self, env, shape)
        with np.errstate(all="ignore"):
            for i in self.order:
                self._step(run, i)
            return self._result(run, size)

    def _step(self, run: _Run, i: int) -> None:
        node = self.nodes[i]
        args = [run.states[a] for a in node.args]
        v, m, f = _evaluator(node.op)(run, node, args)
        state = _State(v, m, f)
        _errors(node, state, self.precision)
        if node.op not in ("gt", "ge", "le"):
            size = np.abs(v)
            run.flag(
                "overflow",
                node,
                (size >= self.precision.largest) | (size + state.e >= self.precision.largest),
            )
            new_nan = np.isnan(v) & ~functools.reduce(np.logical_or, _nans(args), False)
            run.flag("undefined", _labelled(node, "has no real value"), new_nan)
        run.states[i] = state

    def _result(self, run: _Run, size: int) -> Assessment:
        out = run.states[self.target]

        def flat(x: Any) -> np.ndarray:
            array = np.asarray(x, dtype=np.float64)
            return np.broadcast_to(array.reshape(-1) if array.ndim else array, (size,))

        prec = self.precision
        # S is evaluated in float64: raise it by its own worst relative error.
        magnitude = flat(out.m) * (1 + gamma(2 * len(self.order), U64))
        floor = flat(out.f) * prec.tiny
        tolerance = gamma(self.k, prec.u) * magnitude + floor
        hazards = _merge(run.hazards)
        return Assessment(self.k, prec, flat(out.v), magnitude, floor, tolerance, hazards)


def _nans(states: Sequence[_State]) -> list[Any]:
    return [np.isnan(s.v) for s in states if not isinstance(s.v, bool | np.bool_)]


def _merge(hazards: Sequence[Hazard]) -> tuple[Hazard, ...]:
    """Combine hazards of the same kind and text (one per distinct cause)."""
    merged: dict[tuple[str, str], np.ndarray] = {}
    for h in hazards:
        key = (h.kind, h.text)
        merged[key] = merged[key] | h.mask if key in merged else h.mask.copy()
    return tuple(Hazard(kind, text, mask) for (kind, text), mask in merged.items() if mask.any())


def _concatenate(parts: Sequence[Assessment]) -> Assessment:
    keys = list(dict.fromkeys((h.kind, h.text) for p in parts for h in p.hazards))
    hazards = []
    for kind, text in keys:
        masks = [_mask_of(p, kind, text) for p in parts]
        hazards.append(Hazard(kind, text, np.concatenate(masks)))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return Assessment(
        k=parts[0].k,
        precision=parts[0].precision,
        value=joined("value"),
        magnitude=joined("magnitude"),
        floor=joined("floor"),
        tolerance=joined("tolerance"),
        hazards=tuple(hazards),
    )


def _mask_of(part: Assessment, kind: str, text: str) -> np.ndarray:
    for h in part.hazards:
        if (h.kind, h.text) == (kind, text):
            return h.mask
    return np.zeros(len(part.value), dtype=bool)


#: The TensorFlow operation type of each arithmetic operation of the bound's graph.
_TF_TYPES = {
    "add": "AddV2",
    "sub": "Sub",
    "mul": "Mul",
    "div": "RealDiv",
    "neg": "Neg",
    "pow": "Pow",
    "square": "Square",
    "le": "LessEqual",
    "gt": "Greater",
    "ge": "GreaterEqual",
    "select": "SelectV2",
    "sign": "Sign",
}


def forward_operations(problem: Problem, dtype: str | None = None) -> dict[str, int]:
    """Return how often the bound models each TensorFlow operation type in the loss's forward pass.

    The operation types are TensorFlow's own (``Mul``, ``SelectV2``, a kernel's
    ``tf_op``), so the count can be compared with the graph TensorFlow builds
    (``tests/test_tolerance.py`` does, for every registered function).

    >>> from tutor.problem import load
    >>> forward_operations(load("seed-w"))
    {'Mul': 1, 'Sub': 1, 'Pow': 1}
    """
    graph = _Graph(precision(dtype or problem.dtype), problem.rows)
    for name in problem.wrt:
        _name(graph, name, problem)
    _forward(graph, problem.tree, problem)
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.op in ("input", "const"):
            continue
        kind = _TF_TYPES.get(node.op) or _kernel(node.op).bound.tf_op
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def analyse(problem: Problem, symbol: str, dtype: str | None = None) -> Analysis:
    """Return the graph of TF's computation of ∂L/∂``symbol`` in ``dtype``, ready to assess.

    ``dtype`` defaults to the problem's. The gradient is the one TF computes with
    ``symbol`` the only watched source.
    """
    prec = precision(dtype or problem.dtype)
    graph = _Graph(prec, problem.rows)
    target = _name(graph, symbol, problem)
    root = _forward(graph, problem.tree, problem)
    gradient = _backward(graph, root, target)
    return Analysis(
        symbol=symbol,
        precision=prec,
        nodes=tuple(graph.nodes),
        order=_ancestors(graph, gradient),
        target=gradient,
        rows=problem.rows,
        data={k: np.array(v, dtype=np.float64) for k, v in problem.data.items()},
        constants=dict(problem.constants),
    )


# ---------------------------------------------------------------------------------------
# The closed form's own rounding, for a reference evaluated in floating point.


@dataclass(frozen=True)
class Magnitude:
    """A closed form's error bound when evaluated in float64: γ_k(2⁻⁵³)·S + F·2⁻¹⁰²².

    ``expr`` is S (the closed form on magnitudes), ``k`` the roundings on its longest
    path, ``floor`` F: the number of results below the normal range, each weighted by
    how much the rest of the expression magnifies it. Below the smallest normal T a
    result errs by less than T whatever happens there (gradual underflow, or a library
    function that loses its relative accuracy), so each such result adds T.
    """

    expr: sympy.Expr
    k: int
    floor: sympy.Expr = sympy.S.Zero


def magnitude(expr: sympy.Expr) -> Magnitude:
    """Return S, k and F of ``expr`` evaluated as :func:`tutor.numeric.evaluate` walks it.

    Add → the sum of the terms' magnitudes, Mul → the product, a power with a
    positive integer exponent n → the base's magnitude to the n (exact:
    (1 + γ_j)ⁿ ≤ 1 + γ_{nj}); other powers and functions to first order: the
    argument's magnitude times |f'| plus |f| for the function's own rounding.
    Used for the float64 reference of batch mode.

    >>> w, x, y = sympy.symbols("w x y", real=True)
    >>> m = magnitude(2 * x * (w * x - y))
    >>> m.expr, m.k
    (2*(Abs(w)*Abs(x) + Abs(y))*Abs(x), 4)
    """
    if expr.is_Symbol:
        return Magnitude(_abs(expr), 0)
    if expr.is_Number or expr in (sympy.pi, sympy.E):
        return Magnitude(_abs(expr), _number_roundings(expr))
    if isinstance(expr, sympy.Add | sympy.Mul):
        return _magnitude_nary(expr)
    if isinstance(expr, sympy.Pow):
        return _magnitude_pow(expr)
    if isinstance(expr, sympy.Piecewise):
        parts = [(magnitude(v), c) for v, c in expr.args]
        return Magnitude(
            sympy.Piecewise(*((m.expr, c) for m, c in parts)),
            max(m.k for m, _ in parts),
            sympy.Piecewise(*((m.floor, c) for m, c in parts)),
        )
    return _magnitude_function(expr)


def _number_roundings(expr: sympy.Expr) -> int:
    if not expr.is_Rational:
        return 1
    return 0 if representable(Fraction(int(expr.p), int(expr.q)), FLOAT64) else 1


def _magnitude_nary(expr: sympy.Expr) -> Magnitude:
    parts = [magnitude(a) for a in expr.args]
    extra = len(parts) - 1
    if isinstance(expr, sympy.Add):
        return Magnitude(
            sympy.Add(*(p.expr for p in parts)),
            max(p.k for p in parts) + extra,
            sympy.Add(*(p.floor for p in parts)) + extra,
        )
    # An error F_i·T in one factor is multiplied by the other factors' magnitudes.
    weighted = [
        p.floor * sympy.Mul(*(q.expr for j, q in enumerate(parts) if j != i))
        for i, p in enumerate(parts)
    ]
    return Magnitude(
        sympy.Mul(*(p.expr for p in parts)),
        sum(p.k for p in parts) + extra,
        sympy.Add(*weighted) + extra,
    )


def _magnitude_pow(expr: sympy.Pow) -> Magnitude:
    base, exponent = expr.args
    mb = magnitude(base)
    if exponent.is_Integer and exponent > 0:
        n = int(exponent)
        floor = n * mb.expr ** (n - 1) * mb.floor + 1
        return Magnitude(mb.expr**n, n * mb.k + pow_roundings(n), floor)
    if exponent == sympy.S.Half:
        root = sympy.sqrt(_abs(base))
        k = mb.k + roundings("sqrt", FLOAT64)
        return Magnitude(mb.expr / (2 * root) + root, k, mb.floor / (2 * root) + 1)
    me = magnitude(exponent)
    slope_base = _abs(exponent) * _abs(base) ** (exponent - 1)
    # An exponent that is a number the float64 exponent holds exactly adds no error.
    slope_exp = (
        sympy.S.Zero
        if me.k == 0 and exponent.is_Number
        else _abs(expr) * _abs(sympy.log(_abs(base)))
    )
    total = slope_base * mb.expr + slope_exp * me.expr + _abs(expr)
    floor = slope_base * mb.floor + slope_exp * me.floor + 1
    c = float(exponent) if exponent.is_Number else None
    return Magnitude(total, max(mb.k, me.k) + pow_roundings(c), floor)


_EXACT = (sympy.Heaviside, sympy.sign)


def _magnitude_function(expr: sympy.Expr) -> Magnitude:
    if isinstance(expr, _EXACT):
        return Magnitude(_abs(expr), 0)
    record = by_sympy(expr.func)
    if record is None:
        raise ValueError(f"no magnitude rule for {expr.func}")
    if record.formula is not None:
        # Evaluated as its formula's operations (the Piecewise SymPy rewrites it to).
        return magnitude(record.formula(SYMPY, *expr.args))
    parts = [magnitude(a) for a in expr.args]
    if record.bound.kind == "exact":
        return Magnitude(
            sympy.Max(*(p.expr for p in parts)),
            max(p.k for p in parts),
            sympy.Max(*(p.floor for p in parts)),
        )
    name = record.name
    (arg,) = expr.args
    slope = _abs(sympy.diff(expr.func(_T), _T).subs(_T, arg))
    k = parts[0].k + roundings(name, FLOAT64)
    return Magnitude(slope * parts[0].expr + _abs(expr), k, slope * parts[0].floor + 1)


_T = sympy.Symbol("t", real=True)


def _abs(expr: sympy.Expr) -> sympy.Expr:
    """|expr|, left unevaluated: SymPy would rewrite |exp(w**(5/3))| with re() and arg()."""
    return sympy.Abs(expr) if expr.is_Symbol or expr.is_Number else sympy.Abs(expr, evaluate=False)
