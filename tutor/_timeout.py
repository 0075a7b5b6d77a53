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
which imports SymPy and the tutor once and forks a worker that computes one
request after another; a worker stopped at the limit is killed and never
reused, a worker that finished is as fresh as a new child. :func:`start_server`
starts the server early, so its start-up overlaps other work.

A child of the fork server knows only what is imported; functions registered
at run time (:func:`tutor.functions.register`) are sent along, so their
pieces must be importable (module-level functions, not lambdas), as must
``compute`` and its arguments.

One command spends one budget: inside :func:`budget`, every limited
computation draws on the seconds that remain of it (the time spent computing
in children, not the time spent waiting for a key), so that the parsing,
deriving, analysis and printing of one loss together take at most
:data:`COMMAND_SECONDS`.

>>> within_time_limit(pow, 6, 2, what="squaring")
36
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.popen_fork  # noqa: F401 - imported now, not at the first start
import multiprocessing.popen_forkserver  # noqa: F401
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from .errors import ExpressionError

#: Seconds that deriving one partial may take; every shipped problem needs milliseconds.
DERIVE_SECONDS = 5.0

#: Seconds that all the symbolic work of one command may take together (see :func:`budget`):
#: every shipped problem needs well under one.
COMMAND_SECONDS = 12.0

#: What the fork server imports before it forks its first child.
_PRELOAD = ["tutor.steps", "tutor.expression", "tutor.numeric"]

_T = TypeVar("_T")


def within_time_limit(
    compute: Callable[..., _T],
    *args: Any,
    what: str,
    seconds: float | None = None,
    **kwargs: Any,
) -> _T:
    """Return ``compute(*args, **kwargs)``; raise :class:`ExpressionError` past the limit.

    The limit is ``seconds`` (default :data:`DERIVE_SECONDS`), and inside a
    :func:`budget` at most what remains of it; the time taken is spent from
    the budget. ``what`` names the computation in the message (e.g. "deriving
    ∂L/∂w"). An exception ``compute`` raises is raised here.
    """
    if _limited:
        # Already in a limited child: its limit covers this too, and a daemonic
        # child may not start children of its own.
        return compute(*args, **kwargs)
    if _budget is not None and (seconds is None or _budget.remaining < seconds):
        limit, expired = _budget.remaining, _budget.expired(what)
    else:
        limit = DERIVE_SECONDS if seconds is None else seconds
        expired = _expired(what, limit)
    if limit <= 0:
        raise expired
    started = time.monotonic()
    try:
        if fork_is_safe() or not _worker_lock.acquire(blocking=False):
            ok, value = _in_child(compute, args, kwargs, what=what, limit=limit, expired=expired)
        else:
            try:
                ok, value = _in_worker(
                    compute, args, kwargs, what=what, limit=limit, expired=expired
                )
            finally:
                _worker_lock.release()
    finally:
        if _budget is not None:
            _budget.remaining -= time.monotonic() - started
    if not ok:
        raise value
    return value


class _Budget:
    """The seconds one command may still spend computing under a limit."""

    def __init__(self, seconds: float, spent_on: str) -> None:
        self.seconds = seconds
        self.remaining = seconds
        self.spent_on = spent_on

    def expired(self, what: str) -> ExpressionError:
        return ExpressionError(
            f"{what} did not finish within the {self.seconds:g} s the tutor gives the symbolic "
            f"work of {self.spent_on}, and was stopped; the loss is too complex for the tutor: "
            "use fewer terms or smaller powers"
        )


#: The budget in force (see :func:`budget`), or None.
_budget: _Budget | None = None


@contextlib.contextmanager
def budget(seconds: float | None = None, spent_on: str = "one command") -> Iterator[None]:
    """Make every limited computation in the block draw on one budget of ``seconds``.

    The default is :data:`COMMAND_SECONDS`, read when the block starts;
    ``spent_on`` says in the message what the budget was for.

    A budget inside a budget replaces it for its block (an answer typed in
    practice gets its own), and the outer one resumes after it.

    >>> with budget(1.0):
    ...     within_time_limit(pow, 2, 10, what="raising")
    1024
    """
    global _budget
    outer, _budget = _budget, _Budget(COMMAND_SECONDS if seconds is None else seconds, spent_on)
    try:
        yield
    finally:
        _budget = outer


#: True in a child that computes under a limit: nested limits then run in place.
_limited = False


def _expired(what: str, seconds: float) -> ExpressionError:
    return ExpressionError(
        f"{what} took longer than {seconds:g} s and was stopped; the loss is too "
        "complex for the tutor: use fewer terms or smaller powers"
    )


def _no_result(what: str, status: int | None) -> ExpressionError:
    return ExpressionError(
        f"{what} stopped without a result (exit status {status}); "
        "the loss is too complex for the tutor: use fewer terms or smaller powers"
    )


def _in_child(
    compute: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    what: str,
    limit: float,
    expired: ExpressionError,
) -> tuple[bool, Any]:
    """Compute in a child of its own, forked when safe, and kill it at the limit."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    process = _start(sender, compute, args, kwargs)
    sender.close()
    try:
        if not receiver.poll(limit):
            raise expired
        try:
            return _loads(receiver.recv_bytes())
        except EOFError:
            process.join()
            raise _no_result(what, process.exitcode) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()


@contextlib.contextmanager
def _without_main_script() -> Iterator[None]:
    """Start children of the fork server that do not run this program's main script again.

    A child of the fork server would otherwise import the script that started
    this interpreter, re-running any top-level code in it; the child needs
    nothing from it (it receives importable functions only).
    """
    main = sys.modules.get("__main__")
    names = ("__file__", "__spec__")
    saved: dict[str, Any] = {k: main.__dict__[k] for k in names if main and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class _Worker:
    """A child of the fork server that computes one request after another, until it is killed."""

    def __init__(self) -> None:
        self.connection, child = multiprocessing.Pipe()
        self.process = _server_context().Process(target=_serve, args=(child,), daemon=True)
        with _without_main_script():
            self.process.start()
        child.close()

    def stop(self) -> None:
        """Kill the worker (it may be computing) and wait for it to end."""
        self.process.kill()
        self.process.join()
        self.connection.close()


#: The fork server's worker, started on first use; replaced when a limit kills it.
_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _in_worker(
    compute: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    what: str,
    limit: float,
    expired: ExpressionError,
) -> tuple[bool, Any]:
    """Compute in the fork server's worker, killing it (and dropping it) at the limit.

    A worker that finishes its computation is left as a fresh child would be,
    so the next computation reuses it; one stopped at the limit is never reused.
    """
    global _worker
    # Registered functions first: the payload's SymPy objects name their classes.
    request = (pickle.dumps(_registered_since_import()), _dumps((compute, args, kwargs)))
    if _worker is None or not _worker.process.is_alive():
        _worker = _Worker()
    worker = _worker
    worker.connection.send(request)
    try:
        if not worker.connection.poll(limit):
            raise expired
        try:
            return _loads(worker.connection.recv_bytes())
        except EOFError:
            worker.process.join()
            raise _no_result(what, worker.process.exitcode) from None
    except BaseException:
        worker.stop()
        _worker = None
        raise


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
        payload = _dumps((compute, args, kwargs))
        process = _server_context().Process(target=_unpack, args=(sender, records, payload))
    process.daemon = True
    with _without_main_script():
        process.start()
    return process


def _registered_since_import() -> list[Any]:
    from .functions import REGISTRY, builtin

    return [record for record in REGISTRY.values() if not builtin(record)]


def _unpack(sender: Connection, records: bytes, payload: bytes) -> None:
    """In a one-off child of the fork server: compute, send the outcome back, and end."""
    _send(sender, _outcome(records, payload))
    sender.close()


def _serve(connection: Connection) -> None:
    """In the fork server's worker: answer each request until the parent closes the pipe."""
    while True:
        try:
            records, payload = connection.recv()
        except EOFError:
            return
        _send(connection, _outcome(records, payload))


def _outcome(records: bytes, payload: bytes) -> tuple[bool, Any]:
    """Register the run-time functions of ``records``, then compute what ``payload`` says."""
    from .functions import REGISTRY, register

    try:
        for record in pickle.loads(records):  # noqa: S301 - written by this process's parent
            if REGISTRY.get(record.name) is not record:
                register(record)
        compute, args, kwargs = _loads(payload)
    except Exception as exc:  # e.g. a function defined in __main__, which the child lacks
        message = f"internal error: the computation cannot be sent to a child process ({exc})"
        return False, RuntimeError(message)
    return _run(compute, args, kwargs)


def _run(
    compute: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    """Return (True, result), or (False, the exception ``compute`` raised)."""
    global _limited
    _limited = True  # this process computes only under a limit from now on
    try:
        return True, compute(*args, **kwargs)
    except Exception as exc:
        return False, exc


def _dumps(obj: Any) -> bytes:
    """Pickle ``obj`` so that its SymPy sums, products and powers come back unchanged.

    SymPy rebuilds an expression by calling its class, which evaluates again:
    2*(b + wx − y) would come back distributed as 2b + 2wx − 2y. Sums,
    products and powers are therefore rebuilt with evaluation off; every
    other object as pickle rebuilds it.
    """
    buffer = io.BytesIO()
    _ExactPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


class _ExactPickler(pickle.Pickler):
    """A pickler that records SymPy's Add, Mul and Pow as their exact trees."""

    def reducer_override(self, obj: Any) -> Any:
        sympy = sys.modules.get("sympy")
        if sympy is not None and type(obj) in (sympy.Add, sympy.Mul, sympy.Pow):
            return _exactly, (type(obj), obj.args)
        return NotImplemented


def _exactly(cls: Any, args: tuple[Any, ...]) -> Any:
    """Rebuild ``cls(*args)`` without evaluating it (see :func:`_dumps`)."""
    return cls(*args, evaluate=False)


def _loads(data: bytes) -> Any:
    """Unpickle ``data``, written by :func:`_dumps` in this process or its child."""
    return pickle.loads(data)  # noqa: S301 - written by this process or its child


def _send(connection: Connection, outcome: tuple[bool, Any]) -> None:
    try:
        data = _dumps(outcome)
    except Exception as exc:  # the result or the exception does not pickle
        message = f"internal error: cannot send the result back ({exc})"
        data = _dumps((False, RuntimeError(message)))
    connection.send_bytes(data)


def _compute(
    sender: Connection, compute: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """In a forked child: send back (True, result) or (False, the exception raised)."""
    _send(sender, _run(compute, args, kwargs))
    sender.close()
