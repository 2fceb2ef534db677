"""How blocks observe: the stack of open blocks, the execute wrapper, the signal and thread
hooks, the labels put in front of statements, and the figures counted at exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from django.db import DatabaseError, InterfaceError, connections
from django.db.backends.signals import connection_created

from dbconnmgr import internals
from dbconnmgr.block_monitor.stats import AliasStats, LeakedConnection, MonitorStats
from dbconnmgr.exceptions import DbConnMgrError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from dbconnmgr.block_monitor import connection_monitor
    from dbconnmgr.core.snapshot import ClientCount

#: The key of the sqlcommenter-style comment that labels a block's statements.
LABEL_COMMENT_KEY = "dbconnmgr_monitor"

_THREAD_ATTR = "_dbconnmgr_monitor_blocks"

# The open blocks of the current thread/task, innermost last.
_active: ContextVar[tuple[_Block, ...]] = ContextVar("dbconnmgr_monitor_blocks", default=())


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
        "follow_threads",
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
        self.follow_threads = owner.follow_threads
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
    internals.add_execute_wrapper(wrapper, _observe)


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    _install_wrapper(connection)
    blocks = _active.get()
    if not blocks:
        return
    thread = threading.current_thread()
    for block in blocks:
        if connection.alias in block.counts:
            block.record_open(connection, thread)


def _following_start(original: internals.ThreadStart) -> internals.ThreadStart:
    def start(self: threading.Thread) -> None:
        """``Thread.start`` that hands the starting context's open blocks to the new thread
        when one of them follows threads."""
        blocks = _active.get()
        if any(block.follow_threads and block.open for block in blocks):
            setattr(self, _THREAD_ATTR, blocks)
            run = self.run

            def run_in_blocks() -> None:
                _active.set(blocks)
                run()

            self.run = run_in_blocks  # type: ignore[method-assign]
        original(self)

    return start


_install_lock = threading.Lock()
_installed = False
# Blocks with follow_threads=True open now; Thread.start is replaced only while there are.
_following = 0
_thread_start: tuple[internals.ThreadStart, internals.ThreadStart] | None = None


def _install_hooks() -> None:
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        connection_created.connect(
            _on_connection_created, weak=False, dispatch_uid="dbconnmgr.block_monitor"
        )
        _installed = True


def _follow_threads(begin: bool) -> None:
    """A block following threads opened (``begin``) or closed: replace ``Thread.start``
    for the first, put the original back after the last."""
    global _following, _thread_start
    with _install_lock:
        _following += 1 if begin else -1
        if begin and _following == 1:
            original = threading.Thread.start
            _thread_start = (internals.replace_thread_start(_following_start), original)
        elif not begin and _following == 0 and _thread_start is not None:
            internals.restore_thread_start(*_thread_start)
            _thread_start = None


def _take_sample(alias: str) -> tuple[ClientCount | None, str | None, bool]:
    """One cheap statement on this thread's connection, outside every block.

    Returns:
        (the count or None, why it is missing or None, whether it opened the connection).
    """
    from django.core.exceptions import SynchronousOnlyOperation

    from dbconnmgr.backends import backend_class_of

    wrapper = connections[alias]
    backend_class = backend_class_of(alias)  # by ENGINE first, like every other reader
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
