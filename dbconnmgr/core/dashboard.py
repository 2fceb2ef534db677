"""What the admin page shows of a snapshot: filtered and sorted sessions, lock waits, the
utilization bar. Pure data, no I/O, no Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbconnmgr.core.snapshot import Connection, Snapshot
from dbconnmgr.core.thresholds import Thresholds, level, resolve_thresholds

__all__ = [
    "SORT_KEYS",
    "ConnectionFilter",
    "LockWait",
    "UtilizationBar",
    "filter_connections",
    "lock_waits",
    "sort_connections",
    "utilization_bar",
]

#: Sortable columns of the connection list: key -> what it sorts by.
SORT_KEYS: dict[str, str] = {
    "pid": "pid",
    "user": "role",
    "application": "application_name",
    "database": "database",
    "client": "client address",
    "state": "state",
    "age": "time in the current state",
    "query_age": "running time of the current query",
    "transaction_age": "age of the open transaction",
    "backend_age": "time since the session connected",
}


@dataclass(frozen=True, slots=True)
class ConnectionFilter:
    """Which sessions the list shows (None: any). Names match exactly.

    ``min_age`` is seconds in the current state, at least.
    """

    state: str | None = None
    application: str | None = None
    user: str | None = None
    database: str | None = None
    min_age: float | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> tuple[ConnectionFilter, list[str]]:
        """Read a filter from query parameters; bad values are dropped and named."""
        errors: list[str] = []
        min_age: float | None = None
        raw_age = (params.get("min_age") or "").strip()
        if raw_age:
            try:
                min_age = float(raw_age)
                if not 0 <= min_age < float("inf"):
                    raise ValueError
            except ValueError:
                errors.append(f"min_age: expected a number of seconds >= 0, got {raw_age!r}")
                min_age = None

        def text(name: str) -> str | None:
            value = params.get(name)
            return value if value else None

        return (
            cls(
                state=text("state"),
                application=text("application"),
                user=text("user"),
                database=text("database"),
                min_age=min_age,
            ),
            errors,
        )

    @property
    def active(self) -> bool:
        """Some filter is set."""
        return any(
            v is not None
            for v in (self.state, self.application, self.user, self.database, self.min_age)
        )

    def matches(self, conn: Connection) -> bool:
        """Whether ``conn`` passes every filter."""
        if self.state is not None and conn.state != self.state:
            return False
        if self.application is not None and conn.application_name != self.application:
            return False
        if self.user is not None and conn.user != self.user:
            return False
        if self.database is not None and conn.database != self.database:
            return False
        if self.min_age is not None:
            return conn.state_seconds is not None and conn.state_seconds >= self.min_age
        return True


def filter_connections(
    connections: Iterable[Connection], wanted: ConnectionFilter
) -> list[Connection]:
    """The sessions that pass ``wanted``, in their original order."""
    return [c for c in connections if wanted.matches(c)]


def _sort_value(conn: Connection, key: str) -> Any:
    if key == "pid":
        return conn.pid
    if key == "user":
        return conn.user or ""
    if key == "application":
        return conn.application_name
    if key == "database":
        return conn.database or ""
    if key == "client":
        return conn.client
    if key == "state":
        return conn.state
    seconds = {
        "age": conn.state_seconds,
        "query_age": conn.query_seconds,
        "transaction_age": conn.transaction_seconds,
        "backend_age": conn.backend_seconds,
    }[key]
    return -1.0 if seconds is None else seconds


def sort_connections(
    connections: Sequence[Connection], key: str = "age", *, descending: bool = True
) -> list[Connection]:
    """The sessions sorted by ``key`` (one of :data:`SORT_KEYS`), pid breaking ties.

    Raises:
        ValueError: an unknown key.
    """
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; expected one of {', '.join(SORT_KEYS)}")
    ordered = sorted(connections, key=lambda c: c.pid)
    return sorted(ordered, key=lambda c: _sort_value(c, key), reverse=descending)


@dataclass(frozen=True, slots=True)
class LockWait:
    """A session waiting for a lock and the sessions that block it (None: not visible)."""

    waiting: Connection
    blockers: tuple[tuple[int, Connection | None], ...]


def lock_waits(snapshot: Snapshot) -> list[LockWait]:
    """Every session waiting for a lock, longest wait first, with its blockers."""
    by_pid = {c.pid: c for c in snapshot.connections}
    waits = [
        LockWait(waiting=c, blockers=tuple((p, by_pid.get(p)) for p in c.blocking_pids))
        for c in snapshot.waiting_connections
    ]
    return sorted(waits, key=lambda w: -(w.waiting.state_seconds or 0.0))


@dataclass(frozen=True, slots=True)
class UtilizationBar:
    """The utilization bar: connections against usable slots, and the thresholds.

    Percentages are of the usable slots; ``fill_percent`` is capped at 100 for drawing.
    ``level`` is ``ok``, ``warning`` or ``critical`` by the thresholds.
    """

    connections: int
    usable: int
    percent: float
    warning_percent: float | None
    critical_percent: float | None

    @property
    def fill_percent(self) -> float:
        """The width of the filled part, 0-100."""
        return max(0.0, min(100.0, self.percent))

    @property
    def level(self) -> str:
        """``critical``, ``warning`` or ``ok``."""
        return level(self.percent, self.warning_percent, self.critical_percent).label


def utilization_bar(
    snapshot: Snapshot, thresholds: Thresholds | Mapping[str, Any] | None
) -> UtilizationBar:
    """The bar of ``snapshot`` with ``UTILIZATION_WARNING`` / ``UTILIZATION_CRITICAL``."""
    t = resolve_thresholds(thresholds)

    def percent(value: float | None) -> float | None:
        return None if value is None else float(value)

    return UtilizationBar(
        connections=snapshot.total_connections,
        usable=snapshot.binding_limit().limit,
        percent=snapshot.utilization_percent,
        warning_percent=percent(t.utilization_warning),
        critical_percent=percent(t.utilization_critical),
    )
