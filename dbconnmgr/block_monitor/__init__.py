"""``connection_monitor``: what a block of code did to the database connections.

How it observes, and why this way:

- *Which code belongs to a block* is carried by a context variable (the stack of open
  blocks), so it is right per thread and per asyncio task: blocks entered concurrently in
  two threads or two tasks never see each other's work. Tasks created inside a block
  inherit it (asyncio copies the context), and so do ``sync_to_async`` calls. Threads do
  not inherit context variables before Python 3.14: with ``follow_threads=True``, and only
  while such a block is open, ``threading.Thread.start`` hands the starting context's
  blocks to the new thread, so a thread started inside the block is part of it (and its
  connections can leak); the original ``Thread.start`` is put back when the last such
  block exits (:mod:`dbconnmgr.internals`).
- *Opened* connections are Django's ``connection_created`` signal. *Queries* and their
  time come from one execute wrapper (Django's ``execute_wrappers``) put on each
  connection the monitor meets; outside a block it costs one context-variable lookup.
- *Closed* and *leaked* are decided at exit by looking at each connection the block met:
  is its thread's ``DatabaseWrapper`` still holding that same DB-API connection, open?
- *Labels* are a sqlcommenter-style comment put in front of each SQL statement of the
  block, so another session sees ``/*dbconnmgr_monitor='label'*/ SELECT ...`` in
  ``pg_stat_activity.query`` (docs/connection_monitor.md has the measurements behind the
  choice over ``application_name``).
- *Server figures* are one cheap statement per sampled alias on each side of the block,
  run on the calling thread's connection and never counted as the block's own work.

Layout: :mod:`~dbconnmgr.block_monitor.stats` holds the figures,
:mod:`~dbconnmgr.block_monitor.tracking` the hooks and counting, this module the public
context manager and decorator.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from dbconnmgr.block_monitor.stats import AliasStats, LeakedConnection, MonitorStats
from dbconnmgr.block_monitor.tracking import (
    LABEL_COMMENT_KEY,
    _active,
    _Block,
    _fill,
    _follow_threads,
    _install_hooks,
    _install_wrapper,
    _label_comment,
    _Sample,
    _take_sample,
    label_from_query,
)
from dbconnmgr.exceptions import UnknownDatabaseAlias

__all__ = [
    "LABEL_COMMENT_KEY",
    "AliasStats",
    "LeakedConnection",
    "MonitorStats",
    "connection_monitor",
    "label_from_query",
]

logger = logging.getLogger("dbconnmgr.monitor")

P = ParamSpec("P")
R = TypeVar("R")


class connection_monitor:  # lower case: used like contextlib's helpers
    """Record what a block of code does to database connections, and label its queries.

    Use it as a context manager, ``async with``, or a decorator (sync or async)::

        with connection_monitor("bulk_operation") as stats:
            run_the_job()
        print(stats.opened, stats.queries, stats.leaks)

        @connection_monitor("nightly_export", using="reporting")
        def export(): ...

    Each entry records separately, so one instance (or one decorated function) may be
    used by many threads and tasks at once. Blocks nest: an outer block's figures include
    its inner blocks' work; statements carry the innermost label.

    On exit one line is logged on ``dbconnmgr.monitor``: INFO, or WARNING when a sampled
    utilization reached ``THRESHOLDS["UTILIZATION_WARNING"]`` or a connection leaked.
    An exception leaving the block is recorded (``stats.exception``) and propagates
    unchanged.

    Args:
        label: names the block in the log line and in ``pg_stat_activity``.
        using: an alias or aliases to watch; None watches every alias in
            ``settings.DATABASES``.
        sample_server: read the server's client connections just before and just after the
            block (one short statement per watched PostgreSQL alias on each side). None
            reads ``DBCONNMGR["MONITOR_SAMPLE_SERVER"]`` (default True).
        log: emit the log line (the stats are recorded either way).
        on_exit: called with the final :class:`MonitorStats` of every entry; handy with
            the decorator form.
        follow_threads: make threads started inside the block part of it (their
            statements counted and labelled, their connections reported as leaks). Off by
            default: it replaces ``threading.Thread.start`` while the block is open. A
            single thread can also be handed the block with
            ``threading.Thread(target=contextvars.copy_context().run, args=(func,))``
            (counted and labelled, not reported as a leak).

    Raises:
        UnknownDatabaseAlias: on entry, when ``using`` names an alias not configured.
    """

    def __init__(
        self,
        label: str,
        using: str | Iterable[str] | None = None,
        *,
        sample_server: bool | None = None,
        log: bool = True,
        on_exit: Callable[[MonitorStats], object] | None = None,
        follow_threads: bool = False,
    ) -> None:
        if not isinstance(label, str) or not label:
            raise ValueError("connection_monitor needs a non-empty label")
        self.label = label
        self.comment = _label_comment(label)
        # With parameters the drivers interpolate "%s": a literal "%" must be doubled.
        self.comment_escaped = self.comment.replace("%", "%%")
        self.using: tuple[str, ...] | None = (
            None if using is None else (using,) if isinstance(using, str) else tuple(using)
        )
        self.sample_server = sample_server
        self.log = log
        self.on_exit = on_exit
        self.follow_threads = follow_threads
        #: The stats of the entry that finished last (any thread or task).
        self.last_stats: MonitorStats | None = None

    def __repr__(self) -> str:
        return f"connection_monitor({self.label!r}, using={self.using!r})"

    # -- context manager

    def __enter__(self) -> MonitorStats:
        block = self._new_block()
        self._prepare(block)
        self._push(block)
        return block.stats

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        block = self._pop(exc_type)
        if block is not None:
            self._finish(block)

    async def __aenter__(self) -> MonitorStats:
        from asgiref.sync import sync_to_async

        block = self._new_block()
        # Django runs the ORM of async code in its thread-sensitive worker thread: that
        # thread's connections are the ones the block will use, so look at them there.
        await sync_to_async(self._prepare, thread_sensitive=True)(block)
        self._push(block)
        return block.stats

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from asgiref.sync import sync_to_async

        block = self._pop(exc_type)
        if block is not None:
            await sync_to_async(self._finish, thread_sensitive=True)(block)

    # -- decorator

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Monitor every call of ``func`` (a function or a coroutine function)."""
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with self:
                    return await async_func(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return func(*args, **kwargs)

        return wrapper

    # -- the steps

    def _new_block(self) -> _Block:
        _install_hooks()
        if self.using is None:
            aliases = tuple(connections.settings)
        else:
            unknown = [a for a in self.using if a not in connections.settings]
            if unknown:
                known = ", ".join(sorted(connections.settings)) or "none"
                raise UnknownDatabaseAlias(
                    f"unknown database alias {unknown[0]!r} (configured: {known})"
                )
            aliases = self.using
        return _Block(self, aliases)

    def _prepare(self, block: _Block) -> None:
        """Sample the server, then note the connections this thread already holds."""
        sample = self.sample_server
        if sample is None:
            from dbconnmgr.app_settings import get_setting

            sample = bool(get_setting("MONITOR_SAMPLE_SERVER"))
        if sample:
            for alias in block.aliases:
                before, error, opened = _take_sample(alias)
                if before is not None or error is not None:
                    block.samples[alias] = _Sample(before=before, error=error, opened=int(opened))
        for alias in block.aliases:
            try:
                wrapper = connections[alias]
            except ConnectionDoesNotExist:  # pragma: no cover - checked in _new_block
                continue
            _install_wrapper(wrapper)
            block.record_existing(wrapper)

    def _push(self, block: _Block) -> None:
        block.stats.started_at = datetime.now(UTC)
        block.token = _active.set((*_active.get(), block))
        if block.follow_threads:
            _follow_threads(begin=True)
        block.started = time.perf_counter()

    def _pop(self, exc_type: type[BaseException] | None) -> _Block | None:
        ended = time.perf_counter()
        stack = _active.get()
        for block in reversed(stack):
            if block.owner is self and block.open:
                break
        else:
            # Exited in another context than it was entered in: a bug in the caller, but
            # an exception already leaving the block must not be replaced by ours.
            if exc_type is not None:
                logger.error("%r exited without a matching entry", self)
                return None
            raise RuntimeError(f"{self!r} exited without a matching entry")
        block.close()
        if block.follow_threads:
            _follow_threads(begin=False)
        block.stats.wall_seconds = ended - block.started
        if exc_type is not None:
            block.stats.exception = exc_type.__qualname__
        try:
            assert block.token is not None
            _active.reset(block.token)
        except ValueError:  # exited in another context than entered (should not happen)
            _active.set(tuple(b for b in stack if b is not block))
        return block

    def _finish(self, block: _Block) -> None:
        """Count closes and leaks, sample the server again, log, hand over the stats."""
        stats = block.stats
        try:
            _fill(block)
            if stats.by_alias and any(a.usable_connections for a in stats.by_alias.values()):
                from dbconnmgr.app_settings import thresholds

                stats.warning_threshold = float(thresholds()["UTILIZATION_WARNING"])
            stats.completed = True
            self.last_stats = stats
            if self.log and logger.isEnabledFor(stats.level):
                # The stats object rides on the record (``record.dbconnmgr_monitor``) for
                # structured handlers; ``.as_dict()`` gives the JSON-able form.
                logger.log(stats.level, "%s", stats.summary(), extra={"dbconnmgr_monitor": stats})
            if self.on_exit is not None:
                self.on_exit(stats)
        except Exception:
            # The block's own outcome (value or exception) must never be replaced by a
            # failure to record it.
            logger.exception("connection_monitor %r: could not record the block", self.label)
