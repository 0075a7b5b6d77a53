"""Every Hypothesis strategy the tests use, in one place."""

from __future__ import annotations

from hypothesis import strategies as st

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
