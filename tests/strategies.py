"""Every Hypothesis strategy the tests use, in one place."""

from __future__ import annotations

import ast
from collections.abc import Callable

import sympy
from hypothesis import strategies as st

from tutor.expression import make_symbol
from tutor.functions import REGISTRY, LossFunction, sigmoid, softplus

#: float32 values whose squares and products stay far from overflow: |v| ≤ 1e9
#: keeps (w·x − y)² ≤ 4e36 < 3.4e38 and every intermediate finite.
FLOAT32_LIMIT = 1e9


def float32s(limit: float = FLOAT32_LIMIT) -> st.SearchStrategy[float]:
    """Finite float32 values in [−limit, limit], never subnormal.

    TensorFlow on the CPU flushes subnormal inputs to zero, which NumPy and
    SymPy do not; drawing only zero or normal numbers keeps the inputs the
    same for both sides. (Subnormal *intermediates* are covered by the
    tolerance's floor instead.)
    """
    return st.floats(
        min_value=-limit,
        max_value=limit,
        width=32,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )


def points(names: tuple[str, ...] = ("w", "x", "y")) -> st.SearchStrategy[dict[str, float]]:
    """A value for each symbol in ``names``, each from :func:`float32s`."""
    return st.fixed_dictionaries({n: float32s() for n in names})


# Symbolic expressions: random losses built from the functions a loss may use.

#: The symbols of generated expressions, real as every symbol of a loss is.
SYMBOLS: tuple[sympy.Symbol, ...] = tuple(make_symbol(n) for n in ("w", "x", "y"))

#: Small exact constants a generated expression may use.
CONSTANTS: tuple[sympy.Expr, ...] = (
    sympy.S.One,
    sympy.Integer(2),
    sympy.Integer(3),
    sympy.S.Half,
    sympy.pi,
    sympy.E,
)


def _unary(func: Callable[[sympy.Expr], sympy.Expr]) -> Callable[..., sympy.Expr]:
    """``func`` as a node of two children that uses only the first."""
    return lambda a, _b: func(a)


def _power(exponent: sympy.Expr) -> Callable[..., sympy.Expr]:
    """The node raising its first child to a constant ``exponent``."""
    return lambda a, _b: a**exponent


#: The arithmetic nodes a generated expression may have, as functions of two children (the
#: unary ones ignore the second): + − × ÷, and constant and variable powers.
ARITHMETIC: tuple[Callable[..., sympy.Expr], ...] = (
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / b,
    _power(sympy.Integer(2)),
    _power(sympy.Integer(3)),
    _power(sympy.Integer(-1)),
    _power(sympy.Integer(-2)),
    _power(sympy.Rational(3, 2)),
    lambda a, b: a**b,
)


def _function_node(record: LossFunction) -> Callable[..., sympy.Expr]:
    """The node calling a registered function on its first child (and second, if binary)."""
    if record.arity == 1:
        return _unary(record.sympy)
    return record.sympy


def operations() -> tuple[Callable[..., sympy.Expr], ...]:
    """Every node a generated expression may have: :data:`ARITHMETIC` and each function a loss
    may call, read from the registry when the strategy is built. Drawn uniformly, so each
    function turns up in about 1 node of 24."""
    return ARITHMETIC + tuple(_function_node(r) for r in REGISTRY.values())


def function_names(arity: int) -> tuple[str, ...]:
    """The names of the registered functions of ``arity`` arguments."""
    return tuple(name for name, r in REGISTRY.items() if r.arity == arity)


def symbols() -> st.SearchStrategy[sympy.Symbol]:
    """One of the symbols w, x, y (shrinks towards w)."""
    return st.sampled_from(SYMBOLS)


def constants() -> st.SearchStrategy[sympy.Expr]:
    """One of :data:`CONSTANTS`: 1, 2, 3, 1/2, pi or E (shrinks towards 1)."""
    return st.sampled_from(CONSTANTS)


def expressions(max_leaves: int = 8) -> st.SearchStrategy[sympy.Expr]:
    """A random loss expression over w, x, y and small constants, at most ``max_leaves`` leaves.

    Nodes are drawn from :func:`operations`, with at least one node at the top.
    Leaves are symbols twice as often as constants, so most expressions depend
    on some symbol. SymPy evaluates as it builds, so ``log(exp(w))`` arrives as
    ``w``; a node that would collapse to an infinity, NaN or a non-real constant
    is replaced by its first child (no filtering, so no example is thrown away).
    """
    leaves = st.one_of(symbols(), symbols(), constants())
    return _nodes(st.recursive(leaves, _nodes, max_leaves=max(1, max_leaves // 2)))


def losses_and_symbols(max_leaves: int = 8) -> st.SearchStrategy[tuple[sympy.Expr, sympy.Symbol]]:
    """A loss from :func:`expressions` and a symbol to differentiate it by, one it uses if any."""

    def with_symbol(loss: sympy.Expr) -> st.SearchStrategy[tuple[sympy.Expr, sympy.Symbol]]:
        used = sorted(loss.free_symbols, key=str)
        return st.tuples(st.just(loss), st.sampled_from(used) if used else symbols())

    return expressions(max_leaves).flatmap(with_symbol)


def _nodes(children: st.SearchStrategy[sympy.Expr]) -> st.SearchStrategy[sympy.Expr]:
    """One node of :func:`operations` over two children."""
    return st.builds(_build, st.sampled_from(operations()), children, children)


def _build(operation: Callable[..., sympy.Expr], a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``operation(a, b)`` when that is a plain expression (see :func:`_is_plain`), else ``a``."""
    try:
        built = operation(a, b)
    except (ValueError, TypeError, ZeroDivisionError):
        return a  # SymPy refuses some, such as a Max of a non-real number
    return built if _is_plain(built) else a


def _is_plain(expr: sympy.Expr) -> bool:
    """Whether expr is free of infinities, NaN, the imaginary unit and powers of 0."""
    bad = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I)
    if any(expr.has(b) for b in bad):
        return False
    return not any(p.base.is_zero for p in expr.atoms(sympy.Pow))


# Loss texts for the parser: arbitrary text, and Python expressions built as random syntax trees.

#: The symbols a fuzzed loss may use; any other name must be refused by name.
PARSER_SYMBOLS = frozenset({"w", "x", "y"})

#: Fragments that loss texts and attacks on the parser are made of.
_FRAGMENTS = (
    *"wxy0123456789.+-*/()^, _eEj\n",
    *("**", "exp", "log", "sigmoid", "max", "pi", "lambda", "for", "in", "if", "else"),
    *("__import__", "os", "system", "eval", "open", "__class__", "[", "]", ":", ":="),
    *("'", '"', "f'", "{", "}", "=", "<", "@", "%", "~", "&", "|", "not", "#", "\\"),
)


def loss_texts() -> st.SearchStrategy[str]:
    """Arbitrary text, or text made of the fragments of losses and of attacks on the parser."""
    fragments = st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map("".join)
    return st.one_of(fragments, st.text(max_size=300))


def python_expressions(max_leaves: int = 12) -> st.SearchStrategy[str]:
    """The source of a random Python expression: the forms a loss allows mixed with refused ones.

    Trees are built from ``ast`` nodes (operators, calls with keywords and
    starred arguments, attributes, subscripts, lambdas, comprehensions,
    f-strings, walrus, conditionals, containers) and written out with
    ``ast.unparse``.
    """
    tree = st.recursive(_ast_leaves(), _ast_nodes, max_leaves=max_leaves)
    return tree.map(lambda node: ast.unparse(ast.fix_missing_locations(ast.Expression(node))))


def _name(ident: str) -> ast.Name:
    return ast.Name(id=ident, ctx=ast.Load())


def _ast_leaves() -> st.SearchStrategy[ast.expr]:
    """A constant of any Python type, or a name: a symbol, a function, or anything else."""
    numbers = st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False),
    )
    others = st.sampled_from(("s", b"b", None, True, False, ...))
    names = st.sampled_from(
        (*sorted(PARSER_SYMBOLS), "pi", "E", "exp", "max", "z", "os", "__import__", "eval")
    )
    # Names and small numbers come most often, so that many trees are valid losses.
    small = st.integers(-9, 9) | st.sampled_from((0.5, 1.5, 2.0, 0.1))
    return st.one_of(
        st.builds(_name, names),
        st.builds(ast.Constant, small),
        st.builds(ast.Constant, st.one_of(numbers, others)),
    )


_BIN_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.MatMult)
_BIT_OPS = (ast.BitXor, ast.BitOr, ast.BitAnd, ast.LShift, ast.RShift)
_UNARY_OPS = (ast.USub, ast.UAdd, ast.Not, ast.Invert)
_CALLEES = ("exp", "log", "sqrt", "max", "huber", "sigmoid", "w", "eval", "exec", "print")


def _ast_nodes(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    """One node over ``children``: allowed forms often, every refused form sometimes."""
    lists = st.lists(children, max_size=3)
    allowed = st.sampled_from(_BIN_OPS[:5]).map(lambda c: c())
    functions = st.sampled_from(_CALLEES[:6])
    return st.one_of(
        st.builds(ast.BinOp, children, allowed, children),
        st.builds(_call, functions, st.lists(children, min_size=1, max_size=2), st.just(False)),
        st.builds(ast.UnaryOp, st.just(ast.USub()), children),
        st.builds(
            ast.BinOp, children, st.sampled_from(_BIN_OPS + _BIT_OPS).map(lambda c: c()), children
        ),
        st.builds(ast.UnaryOp, st.sampled_from(_UNARY_OPS).map(lambda c: c()), children),
        st.builds(_call, st.sampled_from(_CALLEES), lists, st.booleans(), st.booleans()),
        st.builds(_refused_form, st.integers(0, 11), children, children),
    )


def _call(func: str, args: list[ast.expr], keyword: bool, starred: bool = False) -> ast.Call:
    keywords = [ast.keyword(arg="k", value=args[0])] if keyword and args else []
    if starred and args:
        args = [ast.Starred(value=args[0], ctx=ast.Load()), *args[1:]]
    return ast.Call(func=_name(func), args=args, keywords=keywords)


def _refused_form(kind: int, a: ast.expr, b: ast.expr) -> ast.expr:
    """One of the syntax forms a loss may not contain, built over ``a`` and ``b``."""
    loop = [ast.comprehension(target=ast.Name("i", ast.Store()), iter=b, ifs=[], is_async=0)]
    no_args = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    forms: list[ast.expr] = [
        ast.Attribute(value=a, attr="__class__", ctx=ast.Load()),
        ast.Subscript(value=a, slice=b, ctx=ast.Load()),
        ast.Lambda(args=no_args, body=a),
        ast.ListComp(elt=a, generators=loop),
        ast.GeneratorExp(elt=a, generators=loop),
        ast.JoinedStr(values=[ast.FormattedValue(value=a, conversion=-1, format_spec=None)]),
        ast.NamedExpr(target=ast.Name("w", ast.Store()), value=a),
        ast.IfExp(test=a, body=b, orelse=a),
        ast.Compare(left=a, ops=[ast.Lt()], comparators=[b]),
        ast.BoolOp(op=ast.Or(), values=[a, b]),
        ast.Tuple(elts=[a, b], ctx=ast.Load()),
        ast.Dict(keys=[a], values=[b]),
    ]
    return forms[kind]


#: Exponents for generated losses: plain, negative, fractional, the largest allowed, symbolic.
_LOSS_EXPONENTS = ("2", "3", "-1", "0.5", "1/3", "2/3", "0.25", "1/5", "7", "16", "64", "x")


def loss_sources(max_leaves: int = 30) -> st.SearchStrategy[str]:
    """The text of a random loss in the allowed syntax only, often near the parser's limits.

    Every function a loss may call, + − × ÷, and powers up to the largest exponent,
    nested up to ``max_leaves`` leaves: some are refused by the size limits or
    because a constant part is not real (log(0), (−1)**(1/3)); the rest must
    build and differentiate quickly.
    """
    leaves = st.sampled_from(("w", "x", "y", "pi", "E", "1", "2", "0.5", "0.1", "1e-3", "-1", "0"))
    return st.recursive(leaves, _loss_nodes, max_leaves=max_leaves)


def _loss_nodes(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.sampled_from(function_names(1))
    binary = st.sampled_from(function_names(2))
    return st.one_of(
        st.builds("({}){}({})".format, children, st.sampled_from("+-*/"), children),
        st.builds("({})**({})".format, children, st.sampled_from(_LOSS_EXPONENTS)),
        st.builds("{}({})".format, unary, children),
        st.builds("{}({}, {})".format, binary, children, children),
    )


# Points and settings for verifying gradients (tutor.verify).

#: The four ways a gradient is computed: dtype × how the symbols are held.
GRADIENT_CONFIGS = tuple((d, v) for d in ("float32", "float64") for v in ("tensor", "variable"))


def problem_points(problem) -> st.SearchStrategy[dict[str, float]]:
    """A point in ``problem``'s verify box: float32, zero or normal, one value per sampled symbol.

    The same strategy ``tutor verify`` searches with (see ``tutor.verify.point_strategy``).
    """
    from tutor.verify import point_strategy

    return point_strategy(problem)


def gradient_configs() -> st.SearchStrategy[tuple[str, str]]:
    """One of :data:`GRADIENT_CONFIGS` (shrinks towards float32 with tensors)."""
    return st.sampled_from(GRADIENT_CONFIGS)


def function_arguments(low: float, high: float, width: int) -> st.SearchStrategy[float]:
    """Arguments in [low, high] exact in a float of ``width`` bits, zero or normal."""
    return st.floats(
        min_value=low,
        max_value=high,
        width=width,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )


# Quadratic losses of every Hessian class (tutor.analysis).

#: The parameter names of generated quadratics, by count.
QUADRATIC_NAMES = {1: ("w",), 2: ("u", "v"), 3: ("u", "v", "w")}

#: Sign patterns of the diagonal D in H = QᵀDQ, by Hessian class and size.
HESSIAN_SIGNS = {
    "positive definite": {1: ["+"], 2: ["++"], 3: ["+++"]},
    "positive semidefinite and singular": {2: ["+0"], 3: ["++0", "+00"]},
    "indefinite": {2: ["+-"], 3: ["++-", "+--", "+-0"]},
    "negative definite": {1: ["-"], 2: ["--"], 3: ["---"]},
    "negative semidefinite and singular": {2: ["-0"], 3: ["--0", "-00"]},
    "zero": {1: ["0"]},
}


def _unitriangular(n: int, upper: bool) -> st.SearchStrategy[list[list[int]]]:
    """An n×n integer matrix with ones on the diagonal, zeros on one side (determinant 1)."""
    cells = st.lists(st.integers(-2, 2), min_size=n * n, max_size=n * n)

    def build(values: list[int]) -> list[list[int]]:
        return [
            [1 if i == j else (values[i * n + j] if (j > i) == upper else 0) for j in range(n)]
            for i in range(n)
        ]

    return cells.map(build)


def _congruent(d: list[int], upper: list[list[int]], lower: list[list[int]]) -> list[list[int]]:
    """H = QᵀDQ with Q = upper·lower: integer, with D's count of +, − and 0 eigenvalues.

    Q has determinant 1, so by Sylvester's law of inertia H has exactly as many
    positive, negative and zero eigenvalues as the diagonal D.
    """
    n = len(d)
    q = [[sum(upper[i][k] * lower[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
    return [[sum(q[k][i] * d[k] * q[k][j] for k in range(n)) for j in range(n)] for i in range(n)]


def hessians(kind: str, n: int) -> st.SearchStrategy[list[list[int]]]:
    """An integer symmetric n×n matrix whose class is ``kind`` (see :data:`HESSIAN_SIGNS`)."""
    magnitude = st.integers(1, 6)

    def diagonal(signs: str) -> st.SearchStrategy[list[int]]:
        parts = [
            st.just(0) if s == "0" else magnitude.map(lambda m, s=s: m if s == "+" else -m)
            for s in signs
        ]
        return st.tuples(*parts).map(list)

    d = st.sampled_from(HESSIAN_SIGNS[kind][n]).flatmap(diagonal).flatmap(st.permutations)
    return st.builds(_congruent, d, _unitriangular(n, True), _unitriangular(n, False))


def quadratic_source(h: list[list[int]], b: list[int], start: list[int], rate: str, dtype: str):
    """The problem file of L = ½θᵀHθ − bᵀθ over :data:`QUADRATIC_NAMES`, or None when a
    parameter would not appear in the loss (a file must use every symbol it sets)."""
    n = len(h)
    names = QUADRATIC_NAMES[n]
    terms = []
    for i in range(n):
        if h[i][i]:
            terms.append(f"{h[i][i] / 2!r}*{names[i]}**2")
        for j in range(i + 1, n):
            if h[i][j]:
                terms.append(f"{h[i][j]}*{names[i]}*{names[j]}")
        if b[i]:
            terms.append(f"{-b[i]}*{names[i]}")
    used = {name for name in names if any(name in t for t in terms)}
    if used != set(names):
        return None
    values = "".join(f"{name} = {float(v)!r}\n" for name, v in zip(names, start, strict=True))
    wrt = ", ".join(f'"{name}"' for name in names)
    return (
        f'title = "quadratic"\nloss = "{" + ".join(terms)}"\n[values]\n{values}'
        f'[descent]\nwrt = [{wrt}]\nlearning_rate = {rate}\nsteps = 40\ndtype = "{dtype}"\n'
    )


def quadratics() -> st.SearchStrategy[dict]:
    """A quadratic problem of a random Hessian class, size 1–3, rate around 2/λ_max.

    Returns ``{"kind", "h", "b", "start", "rate", "dtype", "source"}``. For a
    singular H, b is H·t (a line or plane of minimisers) or arbitrary (no
    minimum); the rate is a 3-digit decimal between 0.05 and 2.5 times 1/λ_max.
    """
    import numpy as np

    kinds = st.sampled_from([(k, n) for k, sizes in HESSIAN_SIGNS.items() for n in sizes])

    def complete(kind_n: tuple[str, int]) -> st.SearchStrategy[dict]:
        kind, n = kind_n
        ints = st.lists(st.integers(-4, 4), min_size=n, max_size=n)

        def build(h, t, extra, consistent, start, scale, dtype):
            hb = [sum(h[i][k] * t[k] for k in range(n)) for i in range(n)]
            b = hb if consistent else [x + e for x, e in zip(hb, extra, strict=True)]
            top = float(np.max(np.abs(np.linalg.eigvalsh(np.array(h, dtype=float)))))
            rate = f"{scale / (top or 1.0):.3g}"
            source = quadratic_source(h, b, start, rate, dtype)
            return {
                "kind": kind,
                "h": h,
                "b": b,
                "start": start,
                "rate": float(rate),
                "dtype": dtype,
                "source": source,
            }

        return st.builds(
            build,
            hessians(kind, n),
            ints,
            ints,
            st.booleans(),
            ints,
            st.floats(0.05, 2.5),
            st.sampled_from(("float32", "float64")),
        ).filter(lambda q: q["source"] is not None)

    return kinds.flatmap(complete)


def on_bound_quadratics() -> st.SearchStrategy[dict]:
    """A diagonal positive (semi)definite quadratic with η exactly 2/λ_max in float32.

    λ_max is a power of two (2, 4 or 8), so 2/λ_max (1, 0.5, 0.25) is exact in
    every dtype; the other diagonal entries are 0 or smaller integers.
    """

    def build(top, others, start, dtype):
        n = 1 + len(others)
        h = [[0] * n for _ in range(n)]
        for i, v in enumerate([top, *others]):
            h[i][i] = v
        b = [0] * n
        return {
            "h": h,
            "b": b,
            "start": start[:n],
            "rate": 2 / top,
            "dtype": dtype,
            "source": quadratic_source(h, b, start[:n], repr(2 / top), dtype),
        }

    def with_top(top: int) -> st.SearchStrategy[dict]:
        return st.builds(
            build,
            st.just(top),
            st.lists(st.integers(1, top - 1), max_size=2),
            st.lists(st.integers(-4, 4).filter(bool), min_size=3, max_size=3),
            st.sampled_from(("float32", "float64")),
        )

    return st.sampled_from((2, 4, 8)).flatmap(with_top)


def variant_seeds() -> st.SearchStrategy[int]:
    """A seed for ``tutor handout --variants`` (any int the option takes; shrinks towards 0)."""
    return st.integers(min_value=-(2**31), max_value=2**31 - 1)


# Answers typed in practice mode: smooth losses, forms equal to a derivative, and perturbations.

#: The nodes of :func:`smooth_expressions`: arithmetic, constant powers and the functions
#: whose derivatives an answer can write (no kinks, no step functions, no variable powers).
SMOOTH_OPERATIONS: tuple[Callable[..., sympy.Expr], ...] = (
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / b,
    _power(sympy.Integer(2)),
    _power(sympy.Integer(3)),
    _power(sympy.Integer(-1)),
    _power(sympy.Rational(3, 2)),
    _unary(sympy.exp),
    _unary(sympy.log),
    _unary(sympy.sqrt),
    _unary(sympy.sin),
    _unary(sympy.cos),
    _unary(sympy.tanh),
    _unary(sigmoid),
    _unary(softplus),
)

#: Rewrites SymPy guarantees keep an expression's value where it is defined.
EQUAL_FORMS: tuple[Callable[[sympy.Expr], sympy.Expr], ...] = (
    lambda e: e,
    sympy.expand,
    sympy.factor,
    sympy.together,
    sympy.cancel,
    lambda e: sympy.expand(e, deep=False),
)


def smooth_expressions(max_leaves: int = 6) -> st.SearchStrategy[sympy.Expr]:
    """A random loss over w, x, y built from :data:`SMOOTH_OPERATIONS` (see :func:`expressions`)."""
    leaves = st.one_of(symbols(), symbols(), constants())
    nodes = _smooth_nodes
    return nodes(st.recursive(leaves, nodes, max_leaves=max(1, max_leaves // 2)))


def _smooth_nodes(children: st.SearchStrategy[sympy.Expr]) -> st.SearchStrategy[sympy.Expr]:
    return st.builds(_build, st.sampled_from(SMOOTH_OPERATIONS), children, children)


def smooth_losses_and_symbols(
    max_leaves: int = 6,
) -> st.SearchStrategy[tuple[sympy.Expr, sympy.Symbol]]:
    """A loss from :func:`smooth_expressions` that uses some symbol, and one symbol it uses."""
    losses = smooth_expressions(max_leaves).filter(lambda e: bool(e.free_symbols))
    return losses.flatmap(
        lambda loss: st.tuples(st.just(loss), st.sampled_from(sorted(loss.free_symbols, key=str)))
    )


def equal_forms(expr: sympy.Expr) -> st.SearchStrategy[sympy.Expr]:
    """``expr`` rewritten by one of :data:`EQUAL_FORMS` (expanded, factored, one denominator)."""
    return st.sampled_from(EQUAL_FORMS).map(lambda rewrite: rewrite(expr))


def perturbed(expr: sympy.Expr, symbol: sympy.Symbol) -> st.SearchStrategy[sympy.Expr]:
    """``expr`` plus a term that is nowhere 0 (1, s² + 1, expr² + 1) or only where s = 0 (s)."""
    return st.sampled_from((expr + 1, expr + symbol, expr + symbol**2 + 1, expr + expr**2 + 1))


# Losses as a teacher writes them: a model's output through a link, then a loss of it.

#: Links from a score z to a prediction, several of them the sigmoid or softplus written with exp.
LINKS: tuple[Callable[[sympy.Expr], sympy.Expr], ...] = (
    lambda z: z,
    sigmoid,
    lambda z: 1 / (1 + sympy.exp(-z)),
    lambda z: sympy.exp(z) / (1 + sympy.exp(z)),
    sympy.tanh,
    softplus,
    lambda z: sympy.log(1 + sympy.exp(z)),
)

#: Losses of a prediction p against a target y.
LOSSES: tuple[Callable[[sympy.Expr, sympy.Expr], sympy.Expr], ...] = (
    lambda p, y: (p - y) ** 2,
    lambda p, y: -(y * sympy.log(p) + (1 - y) * sympy.log(1 - p)),
    lambda p, y: -y * sympy.log(p),
    lambda p, y: p / (1 + p**2),
)


def teaching_losses() -> st.SearchStrategy[tuple[sympy.Expr, sympy.Symbol]]:
    """A loss(link(score), y) over w, x, y and b, and w or b to differentiate it by.

    The score is w·x, w·x + b or −w·x·y; the links include the sigmoid written
    as 1/(1 + exp(−z)) and softplus as log(1 + exp(z)), so the algebra after
    the rules has exponentials to recognise and factors to cancel.
    """
    w, x, y, b = (make_symbol(n) for n in "wxyb")
    scores = st.sampled_from((w * x, w * x + b, -w * x * y, w))
    loss = st.builds(
        lambda f, link, z: f(link(z), y),
        st.sampled_from(LOSSES),
        st.sampled_from(LINKS),
        scores,
    )
    return st.tuples(loss, st.sampled_from((w, b))).filter(lambda p: p[0].has(p[1]))
