"""Run a computation under a time limit, so that no problem file can hang the tutor.

The computation runs in a child process, which is killed at the limit: the
tutor's own interpreter is never interrupted, so no exception can land in a
``finally`` block, a finalizer or the middle of SymPy's cache update. The
result (or the exception) comes back pickled.

The child is a ``fork`` of this interpreter when that is safe: no other
Python thread runs (a thread holding a lock at the fork would hold it forever
in the child) and TensorFlow, whose own threads and locks a fork would copy
mid-flight, is not loaded. A fork is cheap: SymPy is already imported. Where
a fork is not safe (the compiled descent's worker thread, TensorFlow loaded in
a notebook or being imported in the background), the child comes from a fork
server: a fresh interpreter started with ``exec``, never a copy of this one,
which imports SymPy and the tutor once and forks a child per computation.
:func:`start_server` starts it early, so its start-up overlaps other work.

A child of the fork server knows only what is imported; functions registered
at run time (:func:`tutor.functions.register`) are sent along, so their
pieces must be importable (module-level functions, not lambdas), as must
``compute`` and its arguments.

>>> within_time_limit(pow, 6, 2, what="squaring")
36
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.popen_fork  # noqa: F401 - imported now, not at the first start
import multiprocessing.popen_forkserver  # noqa: F401
import pickle
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from .errors import ExpressionError

#: Seconds that deriving one partial may take; every shipped problem needs milliseconds.
DERIVE_SECONDS = 5.0

#: What the fork server imports before it forks its first child.
_PRELOAD = ["tutor.steps", "tutor.expression", "tutor.numeric"]

_T = TypeVar("_T")


def within_time_limit(
    compute: Callable[..., _T],
    *args: Any,
    what: str,
    seconds: float = DERIVE_SECONDS,
    **kwargs: Any,
) -> _T:
    """Return ``compute(*args, **kwargs)``; raise :class:`ExpressionError` past ``seconds``.

    ``what`` names the computation in the message (e.g. "deriving ∂L/∂w").
    An exception ``compute`` raises is raised here.
    """
    receiver, sender = multiprocessing.Pipe(duplex=False)
    process = _start(sender, compute, args, kwargs)
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise ExpressionError(
                f"{what} took longer than {seconds:g} s and was stopped; the loss is too "
                "complex for the tutor: use fewer terms or smaller powers"
            )
        try:
            ok, value = receiver.recv()
        except EOFError:
            process.join()
            raise ExpressionError(
                f"{what} stopped without a result (exit status {process.exitcode}); "
                "the loss is too complex for the tutor: use fewer terms or smaller powers"
            ) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if not ok:
        raise value
    return value


def fork_is_safe() -> bool:
    """Return whether this interpreter may be forked: one Python thread, TensorFlow not loaded."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and "tensorflow" not in sys.modules
    )


def start_server() -> None:
    """Start the fork server now (if the platform has one), so that a later limit needs no wait.

    Safe from any thread and with TensorFlow loaded: the server is a new
    interpreter, not a copy of this one.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        _server_context()
        multiprocessing.forkserver.ensure_running()


def _server_context() -> Any:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return context


def _start(
    sender: Connection, compute: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Start the child that computes, forked when safe, else from the fork server."""
    if fork_is_safe():
        context = multiprocessing.get_context("fork")
        process = context.Process(target=_compute, args=(sender, compute, args, kwargs))
    else:
        # Registered functions first: the payload's SymPy objects name their classes.
        records = pickle.dumps(_registered_since_import())
        payload = pickle.dumps((compute, args, kwargs))
        process = _server_context().Process(target=_unpack, args=(sender, records, payload))
    process.daemon = True
    process.start()
    return process


def _registered_since_import() -> list[Any]:
    from .functions import REGISTRY, builtin

    return [record for record in REGISTRY.values() if not builtin(record)]


def _unpack(sender: Connection, records: bytes, payload: bytes) -> None:
    """In a child of the fork server: register the run-time functions, then compute."""
    from .functions import register

    try:
        for record in pickle.loads(records):  # noqa: S301 - written by this process's parent
            register(record)
        compute, args, kwargs = pickle.loads(payload)  # noqa: S301 - as above
    except Exception as exc:  # e.g. a function defined in __main__, which the child lacks
        message = f"internal error: the computation cannot be sent to a child process ({exc})"
        sender.send((False, RuntimeError(message)))
        return
    _compute(sender, compute, args, kwargs)


def _compute(
    sender: Connection, compute: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """In the child: send back (True, result) or (False, the exception raised)."""
    try:
        outcome: tuple[bool, Any] = (True, compute(*args, **kwargs))
    except Exception as exc:
        outcome = (False, exc)
    try:
        sender.send(outcome)
    except Exception as exc:  # the result or the exception does not pickle
        sender.send((False, RuntimeError(f"internal error: cannot send the result back ({exc})")))
    sender.close()
