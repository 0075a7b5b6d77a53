"""How numbers are shown to people."""

from __future__ import annotations

import math

#: Significant digits in derivation lines: enough to check each equality at a glance.
DIGITS = 4


def number(value: float, digits: int = DIGITS) -> str:
    """Return ``value`` with ``digits`` significant digits, without a stray ``-0``.

    >>> number(0.7699999809265137), number(-27.0), number(-0.0)
    ('0.77', '-27', '0')
    """
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def exact(value: float, dtype: str = "float64") -> str:
    """Return the shortest text that reads back as the same ``dtype`` number.

    >>> exact(-22.139999389648438, "float32"), exact(2.0)
    ('-22.14', '2.0')
    """
    import numpy as np

    if dtype == "float32" and _float32_exact(value):
        return str(np.float32(value))
    return repr(value)


def _float32_exact(value: float) -> bool:
    import numpy as np

    return not math.isfinite(value) or float(np.float32(value)) == value
