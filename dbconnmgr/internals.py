"""Every place dbconnmgr relies on another library's undocumented internals, behind one door.

Each function names the attribute it reads or sets and the versions it was checked on;
tests/test_internals.py asserts each one's shape and behaviour on every supported stack
(Django 5.2 on Python 3.11, Django 6.1 on Python 3.12; psycopg and psycopg_pool 3.3 on
both), so a release that changes one fails there, loudly, instead of somewhere in a
snapshot or a leak count.

Where a public API exists it is used instead, outside this module: the pool's
``get_stats()``, ``connection.pool`` / ``close_pool()``, ``DatabaseWrapper.close()``,
the ``connection_created`` signal, ``contextvars``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = [
    "add_execute_wrapper",
    "idle_pool_connections",
    "open_pool",
    "quiet_pipeline_exit",
    "replace_thread_start",
    "restore_thread_start",
    "set_pool_connection_class",
]


# -- Django ----------------------------------------------------------------------------------


def open_pool(connection: BaseDatabaseWrapper) -> Any:
    """The alias's psycopg_pool pool if this process has created it, else None.

    Django's public ``connection.pool`` *creates* the pool when it does not exist yet;
    reading figures or closing must not, so this reads the class-level dict behind it,
    ``DatabaseWrapper._connection_pools`` (alias -> pool). Checked on Django 5.2 and 6.1.
    """
    pools: dict[str, Any] = getattr(type(connection), "_connection_pools", None) or {}
    return pools.get(connection.alias)


def add_execute_wrapper(connection: BaseDatabaseWrapper, wrapper: Callable[..., Any]) -> None:
    """Put ``wrapper`` once, for good, at the front of the connection's execute wrappers.

    The public ``connection.execute_wrapper()`` context manager appends and later pops the
    *last* wrapper: it cannot hold a wrapper across blocks entered and left out of order
    (two asyncio tasks on one worker thread), nor reach a connection opened later in
    another thread. This edits the list it manages, ``BaseDatabaseWrapper.execute_wrappers``,
    at the front, so ``execute_wrapper()``'s pop keeps finding its own at the end.
    Checked on Django 5.2 and 6.1.
    """
    if wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, wrapper)


# -- psycopg_pool ----------------------------------------------------------------------------


def idle_pool_connections(pool: Any) -> list[Any]:
    """The idle connections a psycopg_pool ``ConnectionPool`` holds now (a copy).

    No public accessor exists; the pool keeps them in the deque ``_pool``. A pool of
    another shape gives an empty list. Checked on psycopg_pool 3.3.
    """
    return list(getattr(pool, "_pool", ()))


def set_pool_connection_class(pool: Any, make: Callable[[type[Any]], type[Any]]) -> type[Any]:
    """Make the pool open its next connections through ``make(current class)``.

    ``connection_class`` is a documented argument of ``ConnectionPool()``, but Django
    builds the pool itself; the attribute it is stored in is read again at every connect
    (``ConnectionPool._connect``), so replacing it before the pool opens reaches the
    pool's own threads. (Passing ``connection_class`` through ``OPTIONS["pool"]`` would
    be public, but the pool swaps the default ``Connection`` for its ``PoolConnection``
    only when no class is given, and the alias is known only once the wrapper exists.)
    Returns the class now in place. Checked on psycopg_pool 3.3 with
    Django 5.2 and 6.1.
    """
    made = make(pool.connection_class)
    pool.connection_class = made
    return made


# -- psycopg ---------------------------------------------------------------------------------

_PIPELINE_EXIT_MESSAGE = "error ignored terminating"


class _PipelineExitNoise(logging.Filter):
    """Drops psycopg's "error ignored terminating <Pipeline>" for the registered pipelines."""

    def __init__(self) -> None:
        super().__init__()
        self.pipelines: weakref.WeakSet[object] = weakref.WeakSet()
        self.users = 0

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            isinstance(args, tuple)
            and args
            and str(record.msg).startswith(_PIPELINE_EXIT_MESSAGE)
            and args[0] in self.pipelines
        )


_noise = _PipelineExitNoise()
_noise_lock = threading.Lock()


@contextmanager
def quiet_pipeline_exit() -> Iterator[Callable[[object], None]]:
    """Silence psycopg's warning about the failing exit of the pipelines registered inside.

    Yields ``register(pipeline)``. When the server goes away in the middle of a
    pipeline, psycopg's ``Pipeline.__exit__`` logs ``"error ignored terminating %r: %s"``
    (the pipeline first) on the ``psycopg`` logger, which most projects leave without a
    handler, so Python's last resort prints it: a repeat of the error dbconnmgr already
    classifies and reports. The filter is on that logger only while at least one of these
    blocks is open, and drops only the registered pipelines' records (other code's
    pipelines keep their warnings). Checked on psycopg 3.3.
    """
    logger = logging.getLogger("psycopg")
    with _noise_lock:
        _noise.users += 1
        if _noise.users == 1:
            logger.addFilter(_noise)
    try:
        yield _noise.pipelines.add
    finally:
        with _noise_lock:
            _noise.users -= 1
            if _noise.users == 0:
                logger.removeFilter(_noise)


# -- threading -------------------------------------------------------------------------------

ThreadStart = Callable[[threading.Thread], None]


def replace_thread_start(make: Callable[[ThreadStart], ThreadStart]) -> ThreadStart:
    """Replace ``threading.Thread.start`` by ``make(original)``; returns the replacement.

    Threads do not inherit context variables before Python 3.14 (and only with
    ``-X thread_inherit_context`` after), and ``threading`` has no hook on thread start.
    Callers put it back with :func:`restore_thread_start` as soon as they no longer
    need it. Checked on Python 3.11 and 3.12.
    """
    original: ThreadStart = threading.Thread.start
    replacement = make(original)
    setattr(threading.Thread, "start", replacement)  # noqa: B010 - a method, typed apart
    return replacement


def restore_thread_start(replacement: ThreadStart, original: ThreadStart) -> bool:
    """Put ``original`` back if ``replacement`` is still in place; False when something
    else replaced ``Thread.start`` since (then it stays: restoring would undo theirs, and
    the replacement still calls the original). Checked on Python 3.11 and 3.12.
    """
    if threading.Thread.start is not replacement:
        return False
    setattr(threading.Thread, "start", original)  # noqa: B010 - a method, typed apart
    return True
