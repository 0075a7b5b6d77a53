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
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ExpressionError

#: Seconds that deriving one partial may take; every shipped problem needs milliseconds.
DERIVE_SECONDS = 5.0

#: Seconds between two raises of an expiry the computation has not yet acted on.
_AGAIN = 0.05

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
        # Raised again until the computation ends: an exception that lands in a
        # finalizer (a __del__ run by the garbage collector) is swallowed there.
        while True:
            with lock:
                if not state["running"]:
                    return
                state["fired"] = True
                _raise_in(target, _Expired)
            time.sleep(_AGAIN)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    try:
        try:
            timer.start()
            return compute(*args, **kwargs)
        finally:
            while True:
                try:
                    with lock:
                        state["running"] = False
                    timer.cancel()
                    if state["fired"]:
                        _settle()
                    break
                except _Expired:  # raised just before the end: the result stands
                    continue
    except _Expired:
        raise ExpressionError(
            f"{what} took longer than {seconds:g} s and was stopped; the loss is too "
            "complex for the tutor: use fewer terms or smaller powers"
        ) from None


def _settle() -> None:
    """Let an expiry raised but not yet delivered arrive here, where it is dropped.

    A pending asynchronous exception is delivered at the next check between
    bytecodes, which a loop's backward jump makes.
    """
    try:
        for _ in range(100):
            pass
    except _Expired:
        pass


def _raise_in(thread_id: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` in the thread ``thread_id`` at its next bytecode."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )
