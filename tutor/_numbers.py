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


def side_by_side(reference: float, computed: float, dtype: str) -> tuple[str, str]:
    """Return two numbers printed at the same precision, enough to show how they differ.

    Equal numbers print as the shortest text of ``dtype`` that reads back as
    them; different ones with the fewest significant digits (at least 7) at
    which they print differently, trailing zeros kept so both show the same
    precision (a zero is shown as ``0.0``).

    >>> side_by_side(-22.140000343322754, -22.139999389648438, "float32")
    ('-22.140000', '-22.139999')
    >>> side_by_side(-27.0, -27.0, "float32")
    ('-27.0', '-27.0')
    """
    if reference == computed or not (math.isfinite(reference) and math.isfinite(computed)):
        return exact(reference, dtype), exact(computed, dtype)

    def show(value: float, digits: int) -> str:
        # Zero has no significant digits to match: it is shown as it reads back.
        return exact(value, dtype) if value == 0 else f"{value:#.{digits}g}"

    for digits in range(7, 18):
        a, b = show(reference, digits), show(computed, digits)
        if a != b:
            return a, b
    return show(reference, 17), show(computed, 17)


def _float32_exact(value: float) -> bool:
    import numpy as np

    return not math.isfinite(value) or float(np.float32(value)) == value
