"""The named functions a loss may use that SymPy lacks, each with its derivative.

``sigmoid``, ``relu``, ``softplus`` and ``huber`` are opaque SymPy functions:
keeping σ as σ (rather than 1/(1+e^{-z})) lets SymPy simplify gradients of
logistic losses in milliseconds and gives the textbook x(σ(z) − y).
"""

from __future__ import annotations

import sympy
from sympy import Abs, Function, Heaviside, Piecewise, S, exp, log, sign


def _latex_call(printer, name: str, args, exp) -> str:
    """LaTeX of ``name(args)``, raised to ``exp`` when SymPy asks for a power."""
    inner = ", ".join(printer._print(a) for a in args)
    base = rf"{name}\left({inner}\right)"
    return base if exp is None else rf"{base}^{{{exp}}}"


class sigmoid(Function):  # noqa: N801 - named as the loss text writes it
    """σ(z) = 1 / (1 + e^(−z)); σ'(z) = σ(z)(1 − σ(z))."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return S.Half
        return None

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + exp(-z))

    def _eval_evalf(self, prec):
        return self.rewrite(exp)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        return _latex_call(printer, r"\sigma", self.args, exp)


class relu(Function):  # noqa: N801
    """relu(z) = max(0, z); its derivative is the step H(z) with H(0) = 0, as TensorFlow uses."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_Number:
            return z if z > 0 else S.Zero
        return None

    def fdiff(self, argindex=1):
        return Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, z, **kwargs):
        return sympy.Max(0, z)

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.Max)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_nonnegative(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        return _latex_call(printer, r"\operatorname{relu}", self.args, exp)


class softplus(Function):  # noqa: N801
    """softplus(z) = log(1 + e^z); its derivative is σ(z)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, z, **kwargs):
        return log(1 + exp(z))

    def _eval_evalf(self, prec):
        return self.rewrite(log)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        return _latex_call(printer, r"\operatorname{softplus}", self.args, exp)


class huber(Function):  # noqa: N801
    """huber(r, d) = r²/2 for |r| ≤ d, else d(|r| − d/2); ∂/∂r = r inside, d·sign(r) outside."""

    nargs = 2

    def fdiff(self, argindex=1):
        r, d = self.args
        if argindex == 1:
            return Piecewise((r, Abs(r) <= d), (d * sign(r), True))
        return Piecewise((S.Zero, Abs(r) <= d), (Abs(r) - d, True))

    def _eval_rewrite_as_Piecewise(self, r, d, **kwargs):
        return Piecewise((r**2 / 2, Abs(r) <= d), (d * (Abs(r) - d / 2), True))

    def _eval_evalf(self, prec):
        return self.rewrite(Piecewise)._eval_evalf(prec)

    def _eval_is_real(self):
        return all(a.is_real for a in self.args)

    def _latex(self, printer, exp=None):
        return _latex_call(printer, r"\operatorname{huber}", self.args, exp)


#: The functions a loss may call, by the name it calls them, with their arity.
FUNCTIONS: dict[str, tuple[object, int]] = {
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sqrt": (sympy.sqrt, 1),
    "abs": (sympy.Abs, 1),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tan": (sympy.tan, 1),
    "tanh": (sympy.tanh, 1),
    "sigmoid": (sigmoid, 1),
    "relu": (relu, 1),
    "softplus": (softplus, 1),
    "max": (sympy.Max, 2),
    "min": (sympy.Min, 2),
    "huber": (huber, 2),
}

#: Names that stand for constants in a loss.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
