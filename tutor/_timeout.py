"""Run a computation under a time limit, so that no problem file can hang the tutor.

SymPy is pure Python here, so a computation can be stopped between two
bytecodes: a timer thread raises an exception in the thread that is
computing (``PyThreadState_SetAsyncExc``), which unwinds it like any other
exception. Unlike ``signal.alarm`` this works in any thread (a notebook's, a
test runner's) and leaves signal handlers alone. The parser's limits
(:mod:`tutor.expression`) keep any single C-level step, such as one big
integer product, small, so the exception arrives promptly.

>>> within_time_limit(pow, 6, 2, what="squaring")
36
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ExpressionError

#: Seconds that deriving one partial may take; every shipped problem needs milliseconds.
DERIVE_SECONDS = 5.0

_T = TypeVar("_T")


class _Expired(BaseException):
    """Raised inside the computing thread at its deadline.

    A BaseException, so that SymPy's ``except Exception`` clauses cannot swallow it.
    """


def within_time_limit(
    compute: Callable[..., _T],
    *args: Any,
    what: str,
    seconds: float = DERIVE_SECONDS,
    **kwargs: Any,
) -> _T:
    """Return ``compute(*args, **kwargs)``; raise :class:`ExpressionError` past ``seconds``.

    ``what`` names the computation in the message (e.g. "deriving ∂L/∂w").
    """
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"running": True, "fired": False}

    def expire() -> None:
        with lock:
            if state["running"]:
                state["fired"] = True
                _raise_in(target, _Expired)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    try:
        try:
            timer.start()
            return compute(*args, **kwargs)
        finally:
            timer.cancel()
            with lock:
                state["running"] = False
            if state["fired"]:
                # Fired but possibly not yet delivered: drop it so that it cannot
                # surface later, outside this function.
                _raise_in(target, None)
    except _Expired:
        raise ExpressionError(
            f"{what} took longer than {seconds:g} s and was stopped; the loss is too "
            "complex for the tutor: use fewer terms or smaller powers"
        ) from None


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise ``exception`` in the thread ``thread_id`` (None clears a pending one)."""
    # Without argtypes, ctypes passes None as NULL, which is how the C API clears.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), None if exception is None else ctypes.py_object(exception)
    )
