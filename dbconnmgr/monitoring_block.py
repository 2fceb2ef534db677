"""``connection_monitor``: what a block of code did to the database connections.

How it observes, and why this way:

- *Which code belongs to a block* is carried by a context variable (the stack of open
  blocks), so it is right per thread and per asyncio task: blocks entered concurrently in
  two threads or two tasks never see each other's work. Tasks created inside a block
  inherit it (asyncio copies the context), and so do ``sync_to_async`` calls. Threads do
  not inherit context variables before Python 3.14, so while at least one block has ever
  been entered, ``threading.Thread.start`` hands the starting context's blocks to the new
  thread: a thread started inside a block is part of it (and its connections can leak).
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
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast
from urllib.parse import quote, unquote

from django.db import DatabaseError, InterfaceError, connections
from django.db.backends.signals import connection_created
from django.utils.connection import ConnectionDoesNotExist

from dbconnmgr.exceptions import DbConnMgrError, UnknownDatabaseAlias

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from dbconnmgr.snapshot import ClientCount

__all__ = [
    "LABEL_COMMENT_KEY",
    "AliasStats",
    "LeakedConnection",
    "MonitorStats",
    "connection_monitor",
    "label_from_query",
]

logger = logging.getLogger("dbconnmgr.monitor")

#: The key of the sqlcommenter-style comment that labels a block's statements.
LABEL_COMMENT_KEY = "dbconnmgr_monitor"

P = ParamSpec("P")
R = TypeVar("R")

_THREAD_ATTR = "_dbconnmgr_monitor_blocks"

# The open blocks of the current thread/task, innermost last.
_active: ContextVar[tuple[_Block, ...]] = ContextVar("dbconnmgr_monitor_blocks", default=())


@dataclass(frozen=True, slots=True)
class LeakedConnection:
    """A connection opened inside the block by a thread the block started, still open at exit.

    Attributes:
        alias: the Django database alias.
        thread_name: the name of the thread that opened it.
        thread_ident: that thread's ``threading.get_ident()``.
        thread_alive: whether the thread was still running at exit. A finished thread
            that never called ``connection.close()`` leaves its server session open until
            the garbage collector gets to its ``DatabaseWrapper``.
    """

    alias: str
    thread_name: str
    thread_ident: int | None
    thread_alive: bool


@dataclass(slots=True)
class AliasStats:
    """What one block did on one database alias.

    Attributes:
        alias: the Django database alias.
        opened: connections Django opened for this alias inside the block, in the block's
            own thread and in threads/tasks it started (``connection_created`` signals;
            with Django's pool: connections taken from the pool).
        reused: distinct connections that were already open when the block started and
            ran at least one statement inside it.
        closed: connections the block met (open at entry in its thread, opened inside it,
            or reused) that were no longer held open at exit (closed, or returned to the
            pool).
        queries: statements run through Django cursors (``execute`` and ``executemany``
            count one each), in the block's thread and threads/tasks it started.
        query_seconds: total time of those statements, measured around the driver call.
        leaked: connections opened by threads the block started and still open at exit.
        server_before: the server's client connections just before the block
            (None when not sampled).
        server_after: the same, just after.
        max_connections: the server's ``max_connections`` (None when not sampled).
        usable_connections: slots ordinary roles can use (None when not sampled).
        sampling_opened: 1 when the monitor's own "before" query had to open this thread's
            connection (that connection then counts as already open, so ``reused``).
        sampling_error: why a server figure is missing, when sampling failed.
    """

    alias: str
    opened: int = 0
    reused: int = 0
    closed: int = 0
    queries: int = 0
    query_seconds: float = 0.0
    leaked: int = 0
    server_before: int | None = None
    server_after: int | None = None
    max_connections: int | None = None
    usable_connections: int | None = None
    sampling_opened: int = 0
    sampling_error: str | None = None

    @property
    def utilization_percent(self) -> float | None:
        """The higher of the two samples as a percentage of the usable slots."""
        samples = [s for s in (self.server_before, self.server_after) if s is not None]
        if not samples or self.usable_connections is None:
            return None
        if self.usable_connections <= 0:
            return 100.0
        return round(max(samples) * 100 / self.usable_connections, 1)

    @property
    def server_delta(self) -> int | None:
        """``server_after - server_before`` (None unless both were sampled)."""
        if self.server_before is None or self.server_after is None:
            return None
        return self.server_after - self.server_before

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the figures."""
        return {
            "alias": self.alias,
            "opened": self.opened,
            "reused": self.reused,
            "closed": self.closed,
            "leaked": self.leaked,
            "queries": self.queries,
            "query_seconds": round(self.query_seconds, 6),
            "server_before": self.server_before,
            "server_after": self.server_after,
            "max_connections": self.max_connections,
            "usable_connections": self.usable_connections,
            "utilization_percent": self.utilization_percent,
            "sampling_opened": self.sampling_opened,
            "sampling_error": self.sampling_error,
        }


@dataclass(slots=True)
class MonitorStats:
    """The record of one monitored block, filled in when the block exits.

    Returned by ``with connection_monitor(...) as stats`` (and ``async with``); the
    figures are zero until the block has exited (``completed``).

    Attributes:
        label: the block's label.
        aliases: the database aliases watched.
        started_at: wall-clock time (UTC) at entry.
        wall_seconds: time spent inside the block (the monitor's own sampling excluded).
        by_alias: the figures per alias.
        leaks: the leaked connections, one entry each.
        exception: the qualified name of the exception that left the block, if any.
        warning_threshold: ``THRESHOLDS["UTILIZATION_WARNING"]`` read at exit (percent).
        completed: True once the block has exited and the figures are final.
    """

    label: str
    aliases: tuple[str, ...] = ()
    started_at: datetime | None = None
    wall_seconds: float = 0.0
    by_alias: dict[str, AliasStats] = field(default_factory=dict)
    leaks: tuple[LeakedConnection, ...] = ()
    exception: str | None = None
    warning_threshold: float | None = None
    completed: bool = False

    @property
    def opened(self) -> int:
        """Connections opened, all aliases."""
        return sum(a.opened for a in self.by_alias.values())

    @property
    def reused(self) -> int:
        """Connections reused, all aliases."""
        return sum(a.reused for a in self.by_alias.values())

    @property
    def closed(self) -> int:
        """Connections closed, all aliases."""
        return sum(a.closed for a in self.by_alias.values())

    @property
    def queries(self) -> int:
        """Statements executed, all aliases."""
        return sum(a.queries for a in self.by_alias.values())

    @property
    def query_seconds(self) -> float:
        """Total statement time, all aliases."""
        return sum(a.query_seconds for a in self.by_alias.values())

    @property
    def leaked(self) -> int:
        """Connections leaked by threads the block started, all aliases."""
        return len(self.leaks)

    @property
    def utilization_percent(self) -> float | None:
        """The highest sampled utilization of any alias (None when nothing was sampled)."""
        values = [u for a in self.by_alias.values() if (u := a.utilization_percent) is not None]
        return max(values) if values else None

    @property
    def utilization_warning(self) -> bool:
        """True when a sampled utilization reached the warning threshold."""
        utilization = self.utilization_percent
        return (
            utilization is not None
            and self.warning_threshold is not None
            and utilization >= self.warning_threshold
        )

    @property
    def level(self) -> int:
        """The log level of the block's line: WARNING on high utilization or a leak."""
        return logging.WARNING if self.utilization_warning or self.leaks else logging.INFO

    def summary(self) -> str:
        """The one line logged at exit."""
        parts = [f"connection_monitor {self.label!r}: {self.wall_seconds:.3f}s"]
        shown = [a for a in self.by_alias.values() if _worth_showing(a)]
        for a in shown:
            text = (
                f"[{a.alias}] opened={a.opened} reused={a.reused} closed={a.closed} "
                f"queries={a.queries} query_time={a.query_seconds:.3f}s"
            )
            if a.server_before is not None or a.server_after is not None:
                text += (
                    f" server={_or_q(a.server_before)}->{_or_q(a.server_after)}"
                    f"/{_or_q(a.usable_connections)} usable"
                )
                if a.utilization_percent is not None:
                    text += f" ({a.utilization_percent}%)"
            if a.sampling_error:
                text += f" server=n/a ({a.sampling_error})"
            parts.append(text)
        if not shown:
            parts.append("no database activity")
        if self.utilization_warning:
            parts.append(f"utilization >= {self.warning_threshold}%")
        if self.leaks:
            where = ", ".join(
                f"{leak.alias}@{leak.thread_name}{'' if leak.thread_alive else ' (finished)'}"
                for leak in self.leaks
            )
            parts.append(f"LEAKED {len(self.leaks)}: {where}")
        if self.exception:
            parts.append(f"raised {self.exception}")
        return " ".join(parts[:2]) + "".join(f"; {p}" for p in parts[2:])

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every figure."""
        return {
            "label": self.label,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "wall_seconds": round(self.wall_seconds, 6),
            "opened": self.opened,
            "reused": self.reused,
            "closed": self.closed,
            "leaked": self.leaked,
            "queries": self.queries,
            "query_seconds": round(self.query_seconds, 6),
            "utilization_percent": self.utilization_percent,
            "utilization_warning": self.utilization_warning,
            "exception": self.exception,
            "by_alias": {alias: a.as_dict() for alias, a in self.by_alias.items()},
            "leaks": [
                {
                    "alias": leak.alias,
                    "thread_name": leak.thread_name,
                    "thread_ident": leak.thread_ident,
                    "thread_alive": leak.thread_alive,
                }
                for leak in self.leaks
            ],
        }


def _worth_showing(a: AliasStats) -> bool:
    return bool(
        a.opened or a.reused or a.closed or a.queries or a.leaked
        or a.server_before is not None or a.sampling_error
    )  # fmt: skip


def _or_q(value: int | None) -> str:
    return "?" if value is None else str(value)


def label_from_query(query: str | None) -> str | None:
    """The monitor label of a statement's text (e.g. ``pg_stat_activity.query``), if any."""
    prefix = f"/*{LABEL_COMMENT_KEY}='"
    if not query or not query.startswith(prefix):
        return None
    end = query.find("'*/", len(prefix))
    return unquote(query[len(prefix) : end]) if end >= 0 else None


def _label_comment(label: str) -> str:
    # sqlcommenter serialisation (URL-encoded value in single quotes): the value can hold
    # neither a quote nor "*/", so the comment cannot be closed early. Put in FRONT of the
    # statement: pg_stat_activity keeps only track_activity_query_size bytes (1 kB by
    # default) and a bulk INSERT would lose a trailing comment.
    return f"/*{LABEL_COMMENT_KEY}='{quote(label, safe='')}'*/ "


class _Tracked:
    """A DB-API connection a block met, and how."""

    __slots__ = ("alias", "opened_here", "raw", "started_by_block", "thread", "used", "wrapper")

    def __init__(
        self,
        alias: str,
        wrapper: BaseDatabaseWrapper,
        raw: Any,
        *,
        opened_here: bool,
        used: bool,
        thread: threading.Thread,
        started_by_block: bool,
    ) -> None:
        self.alias = alias
        self.wrapper = wrapper
        self.raw = raw
        self.opened_here = opened_here
        self.used = used
        self.thread = thread
        self.started_by_block = started_by_block

    def still_open(self) -> bool:
        # Django drops its reference on close(); closed inside an atomic block, or broken,
        # the driver's own flag says so (psycopg: bool, psycopg2: int; sqlite3 has none).
        return self.wrapper.connection is self.raw and not getattr(self.raw, "closed", False)


class _Counts:
    __slots__ = ("opened", "queries", "seconds")

    def __init__(self) -> None:
        self.opened = 0
        self.queries = 0
        self.seconds = 0.0


class _Block:
    """One entry into a monitored block: its counters, shared by its threads and tasks."""

    __slots__ = (
        "aliases",
        "comment",
        "comment_escaped",
        "counts",
        "label",
        "lock",
        "open",
        "owner",
        "samples",
        "started",
        "stats",
        "token",
        "tracked",
    )

    def __init__(self, owner: connection_monitor, aliases: tuple[str, ...]) -> None:
        self.owner = owner
        self.label = owner.label
        self.aliases = aliases
        self.comment = owner.comment
        self.comment_escaped = owner.comment_escaped
        self.counts = {alias: _Counts() for alias in aliases}
        self.tracked: dict[int, _Tracked] = {}
        self.lock = threading.Lock()
        self.open = True
        self.samples: dict[str, _Sample] = {}
        self.started = 0.0
        self.stats = MonitorStats(label=owner.label, aliases=aliases)
        self.token: Token[tuple[_Block, ...]] | None = None

    def record_query(
        self, alias: str, wrapper: BaseDatabaseWrapper, raw: Any, seconds: float
    ) -> None:
        with self.lock:
            if not self.open:
                return
            counts = self.counts[alias]
            counts.queries += 1
            counts.seconds += seconds
            if raw is None:
                return
            tracked = self.tracked.get(id(raw))
            if tracked is None:
                # Open before the block (another thread's, or met first here): reused.
                self.tracked[id(raw)] = _Tracked(
                    alias, wrapper, raw, opened_here=False, used=True,
                    thread=threading.current_thread(), started_by_block=False,
                )  # fmt: skip
            else:
                tracked.used = True

    def record_open(self, wrapper: BaseDatabaseWrapper, thread: threading.Thread) -> None:
        started_by_block = self in getattr(thread, _THREAD_ATTR, ())
        with self.lock:
            if not self.open:
                return
            self.counts[wrapper.alias].opened += 1
            self.tracked[id(wrapper.connection)] = _Tracked(
                wrapper.alias, wrapper, wrapper.connection, opened_here=True, used=False,
                thread=thread, started_by_block=started_by_block,
            )  # fmt: skip

    def record_existing(self, wrapper: BaseDatabaseWrapper) -> None:
        raw = wrapper.connection
        if raw is not None and id(raw) not in self.tracked:
            self.tracked[id(raw)] = _Tracked(
                wrapper.alias, wrapper, raw, opened_here=False, used=False,
                thread=threading.current_thread(), started_by_block=False,
            )  # fmt: skip

    def close(self) -> None:
        with self.lock:
            self.open = False


@dataclass(slots=True)
class _Sample:
    before: ClientCount | None = None
    after: ClientCount | None = None
    error: str | None = None
    opened: int = 0


# ---------------------------------------------------------------- process-wide hooks


def _observe(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """The execute wrapper: labels and counts statements of the open blocks."""
    blocks = _active.get()
    if not blocks:
        return execute(sql, params, many, context)
    db: BaseDatabaseWrapper = context["connection"]
    alias = db.alias
    watching = [b for b in blocks if b.open and alias in b.counts]
    if not watching:
        return execute(sql, params, many, context)
    if isinstance(sql, str):
        innermost = watching[-1]
        sql = (innermost.comment if params is None else innermost.comment_escaped) + sql
    raw = db.connection
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - start
        for block in watching:
            block.record_query(alias, db, raw, elapsed)


def _install_wrapper(wrapper: BaseDatabaseWrapper) -> None:
    # At the front: Django's own ``execute_wrapper()`` context manager removes its wrapper
    # with list.pop(), which must keep finding its own at the end of the list.
    if _observe not in wrapper.execute_wrappers:
        wrapper.execute_wrappers.insert(0, _observe)


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    _install_wrapper(connection)
    blocks = _active.get()
    if not blocks:
        return
    thread = threading.current_thread()
    for block in blocks:
        if connection.alias in block.counts:
            block.record_open(connection, thread)


_original_thread_start: Callable[[threading.Thread], None] | None = None


def _thread_start(self: threading.Thread) -> None:
    """``Thread.start`` that hands the starting context's open blocks to the new thread."""
    blocks = _active.get()
    if blocks:
        setattr(self, _THREAD_ATTR, blocks)
        run = self.run

        def run_in_blocks() -> None:
            _active.set(blocks)
            run()

        self.run = run_in_blocks  # type: ignore[method-assign]
    assert _original_thread_start is not None
    _original_thread_start(self)


_install_lock = threading.Lock()
_installed = False


def _install_hooks() -> None:
    global _installed, _original_thread_start
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        connection_created.connect(
            _on_connection_created, weak=False, dispatch_uid="dbconnmgr.monitoring_block"
        )
        _original_thread_start = threading.Thread.start
        threading.Thread.start = _thread_start  # type: ignore[method-assign]
        _installed = True


# ---------------------------------------------------------------- the public object


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
            from dbconnmgr.conf import get_setting

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
                from dbconnmgr.conf import thresholds

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


def _take_sample(alias: str) -> tuple[ClientCount | None, str | None, bool]:
    """One cheap statement on this thread's connection, outside every block.

    Returns:
        (the count or None, why it is missing or None, whether it opened the connection).
    """
    from django.core.exceptions import SynchronousOnlyOperation

    from dbconnmgr.backends import BACKENDS

    wrapper = connections[alias]
    backend_class = BACKENDS.get(wrapper.vendor)
    if backend_class is None:
        return None, None, False
    had_connection = wrapper.connection is not None
    token = _active.set(())  # the monitor's own statement belongs to no block
    try:
        count = backend_class(alias, wrapper).count_client_connections()
    except (DbConnMgrError, DatabaseError, InterfaceError, SynchronousOnlyOperation) as exc:
        return None, (str(exc).strip().splitlines() or [type(exc).__name__])[0], False
    finally:
        _active.reset(token)
    return count, None, not had_connection and wrapper.connection is not None


def _fill(block: _Block) -> None:
    stats = block.stats
    for alias, sample in block.samples.items():
        after, error, _ = _take_sample(alias)
        sample.after = after
        sample.error = sample.error or error
    leaks: list[LeakedConnection] = []
    closed: dict[str, int] = dict.fromkeys(block.aliases, 0)
    reused: dict[str, int] = dict.fromkeys(block.aliases, 0)
    for tracked in block.tracked.values():
        if not tracked.opened_here and tracked.used:
            reused[tracked.alias] += 1
        if not tracked.still_open():
            closed[tracked.alias] += 1
        elif tracked.opened_here and tracked.started_by_block:
            leaks.append(
                LeakedConnection(
                    alias=tracked.alias,
                    thread_name=tracked.thread.name,
                    thread_ident=tracked.thread.ident,
                    thread_alive=tracked.thread.is_alive(),
                )
            )
    block.tracked.clear()  # let go of the connections the block met
    for alias in block.aliases:
        counts = block.counts[alias]
        sample = block.samples.get(alias, _Sample())
        limits = sample.after or sample.before
        stats.by_alias[alias] = AliasStats(
            alias=alias,
            opened=counts.opened,
            reused=reused[alias],
            closed=closed[alias],
            queries=counts.queries,
            query_seconds=counts.seconds,
            leaked=sum(1 for leak in leaks if leak.alias == alias),
            server_before=sample.before.client_connections if sample.before else None,
            server_after=sample.after.client_connections if sample.after else None,
            max_connections=limits.max_connections if limits else None,
            usable_connections=limits.usable_connections if limits else None,
            sampling_opened=sample.opened,
            sampling_error=sample.error,
        )
    stats.leaks = tuple(leaks)
