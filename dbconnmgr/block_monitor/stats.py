"""The figures of one monitored block: :class:`MonitorStats` and :class:`AliasStats`.

Plain data, filled in by :mod:`dbconnmgr.block_monitor.tracking` when the block exits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbconnmgr.core.thresholds import reaches

__all__ = ["AliasStats", "LeakedConnection", "MonitorStats"]


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
        server_before: the server's client connections just before the block, the
            connection that read them (this thread's own for the alias) excluded, as in
            every dbconnmgr count (None when not sampled).
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
        return utilization is not None and reaches(utilization, self.warning_threshold)

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
