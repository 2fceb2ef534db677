"""Every figure of a snapshot, declared once: its JSON key, label, unit and metric.

The status and health documents, the status table, the admin page, monitor samples and
``/metrics`` all read a snapshot's figures through :class:`Figures`, built once per
snapshot (or in its unreachable form, every figure None). Adding a figure is one
:class:`Figure` in :data:`FIGURES` plus its key in the documents' layouts below (and its
TypedDict key in :mod:`dbconnmgr.core.documents`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dbconnmgr.core.snapshot import Connection, Snapshot
from dbconnmgr.core.wlm import queues_of

#: What a figure counts or measures, for display (``seconds`` are shown as ``4m05s``).
Unit = Literal["connections", "percent", "seconds", "text", "limits", "boolean", "pid", "queues"]


@dataclass(frozen=True, slots=True)
class Metric:
    """A Prometheus gauge of one figure, labelled by ``alias``; the value is the figure's
    divided by ``per`` (100 turns a percentage into a 0-1 ratio)."""

    name: str
    help: str
    per: float = 1.0


@dataclass(frozen=True, slots=True)
class Session:
    """The session that sets a figure (the oldest transaction...), and its age."""

    name: str
    pick: Callable[[Snapshot], Connection | None]
    age: Callable[[Connection], float | None]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a snapshot.

    Attributes:
        name: its key in the JSON documents and in :class:`Figures`.
        label: its name in the status table and on the admin page.
        unit: what it counts or measures.
        read: computes it from a snapshot (not used when ``session`` is set).
        session: the figure is the age of this session, in seconds, one decimal.
        metrics: the Prometheus gauges of ``/metrics`` that export it.
        table: a row of the status table's header (sessions shown with who they are).
        admin: shown in the admin page's figures.
    """

    name: str
    label: str
    unit: Unit
    read: Callable[[Snapshot], Any] | None = None
    session: Session | None = None
    metrics: tuple[Metric, ...] = ()
    table: bool = False
    admin: bool = False


OLDEST_TRANSACTION = Session(
    "oldest_transaction", Snapshot.oldest_transaction, lambda c: c.transaction_seconds
)
LONGEST_IDLE_IN_TRANSACTION = Session(
    "longest_idle_in_transaction", Snapshot.longest_idle_in_transaction, lambda c: c.state_seconds
)
LONGEST_QUERY = Session(
    "longest_query", Snapshot.longest_running_query, lambda c: c.running_seconds
)
#: The sessions the documents describe (``session_brief``) next to their age.
SESSIONS: tuple[Session, ...] = (OLDEST_TRANSACTION, LONGEST_IDLE_IN_TRANSACTION, LONGEST_QUERY)

#: Every figure. The order is the status table's, the admin page's and ``/metrics``'s.
FIGURES: tuple[Figure, ...] = (
    Figure("database", "Database", "text", lambda s: s.database),
    Figure("version", "Server version", "text", lambda s: s.limits.version),
    Figure("version_num", "Server version number", "text", lambda s: s.limits.version_num),
    Figure(
        "max_connections",
        "max_connections",
        "connections",
        lambda s: s.limits.max_connections,
        metrics=(Metric("pg_settings_max_connections", "the server's max_connections"),),
    ),
    Figure(
        "superuser_reserved_connections",
        "superuser_reserved",
        "connections",
        lambda s: s.limits.superuser_reserved_connections,
    ),
    Figure(
        "reserved_connections", "reserved", "connections", lambda s: s.limits.reserved_connections
    ),
    Figure(
        "usable_connections",
        "usable",
        "connections",
        lambda s: s.limits.usable_connections,
        metrics=(
            Metric(
                "dbconnmgr_usable_connections",
                "slots ordinary roles can use (max_connections minus reserved; the binding limit)",
            ),
        ),
    ),
    Figure("database_limits", "Database limits", "limits", lambda s: s.limits.database_limits),
    Figure("role_limits", "Role limits", "limits", lambda s: s.limits.role_limits),
    Figure("current_user", "Read as", "text", lambda s: s.limits.current_user),
    Figure(
        "current_user_is_superuser", "Read as superuser", "boolean", lambda s: s.limits.is_superuser
    ),
    Figure(
        "total_connections",
        "in use",
        "connections",
        lambda s: s.total_connections,
        metrics=(Metric("dbconnmgr_client_connections", "client backends using slots"),),
    ),
    Figure("free_connections", "free", "connections", lambda s: s.free_connections),
    Figure("limited_by", "Limited by", "text", lambda s: s.limited_by),
    Figure(
        "utilization_percent",
        "of usable",
        "percent",
        lambda s: s.utilization_percent,
        metrics=(
            Metric(
                "dbconnmgr_utilization_ratio", "client connections / usable slots (0-1)", per=100.0
            ),
        ),
    ),
    Figure(
        "max_connections_utilization_percent",
        "of max_connections",
        "percent",
        lambda s: s.max_connections_utilization_percent,
    ),
    Figure(
        "active_connections",
        "Active",
        "connections",
        lambda s: s.active_connections,
        metrics=(
            Metric("dbconnmgr_active_sessions", "sessions running a query now"),
            Metric(
                "dbconnmgr_aas",
                "average active sessions, instantaneous: sessions running a query at this "
                "scrape (the scrape's own excluded); avg_over_time(dbconnmgr_aas[5m]) is the "
                "AAS over 5m",
            ),
        ),
    ),
    Figure("idle_connections", "Idle", "connections", lambda s: s.idle_connections),
    Figure(
        "idle_in_transaction_connections",
        "Idle in transaction",
        "connections",
        lambda s: s.idle_in_transaction_connections,
    ),
    Figure(
        "idle_in_transaction_aborted_connections",
        "Idle in aborted transaction",
        "connections",
        lambda s: s.idle_in_transaction_aborted_connections,
    ),
    Figure(
        "waiting_connections",
        "Waiting on locks",
        "connections",
        lambda s: len(s.waiting_connections),
        table=True,
        admin=True,
    ),
    Figure(
        "oldest_transaction_seconds",
        "Oldest transaction",
        "seconds",
        session=OLDEST_TRANSACTION,
        table=True,
        admin=True,
    ),
    Figure(
        "longest_idle_in_transaction_seconds",
        "Longest idle in txn",
        "seconds",
        session=LONGEST_IDLE_IN_TRANSACTION,
        table=True,
        admin=True,
    ),
    Figure(
        "longest_query_seconds",
        "Longest query",
        "seconds",
        session=LONGEST_QUERY,
        admin=True,
    ),
    Figure(
        "oldest_connection_seconds",
        "Oldest connection",
        "seconds",
        lambda s: _round(max(_ages(s, "backend_seconds"), default=None)),
        metrics=(
            Metric(
                "dbconnmgr_oldest_connection_seconds",
                "age of the oldest client connection (the scrape's own excluded)",
            ),
        ),
        table=True,
        admin=True,
    ),
    Figure("visibility", "Visibility", "text", lambda s: s.visibility),
    Figure("hidden_connections", "Hidden", "connections", lambda s: s.hidden_connections),
    Figure("own_pid", "Own pid", "pid", lambda s: s.own_pid),
    # the query queues (Redshift's WLM) as plain data, None for engines without them: what
    # a recorded sample keeps of them (the documents carry them under the vendor's key)
    Figure("wlm", "WLM queues", "queues", lambda s: _plain(queues_of(s))),
)
BY_NAME: Mapping[str, Figure] = {f.name: f for f in FIGURES}

# -- where each document puts them (the documents' key order, kept as published) -----------
#: ``server`` of the status document.
STATUS_SERVER_KEYS: tuple[str, ...] = (
    "version",
    "version_num",
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "usable_connections",
    "database_limits",
    "role_limits",
    "current_user",
    "current_user_is_superuser",
)
#: Top-level figures of the status document before its groupings (``by_state``...).
STATUS_KEYS: tuple[str, ...] = (
    "total_connections",
    "free_connections",
    "limited_by",
    "utilization_percent",
    "max_connections_utilization_percent",
)
#: Top-level figures of the status document after its groupings; a session's figure is
#: followed by the session's brief (``longest_query_seconds``, ``longest_query``).
STATUS_TAIL_KEYS: tuple[str, ...] = (
    "longest_idle_in_transaction_seconds",
    "oldest_transaction_seconds",
    "longest_query_seconds",
    "oldest_connection_seconds",
    "waiting_connections",
    "visibility",
    "hidden_connections",
    "own_pid",
)
#: ``server_info`` of the health document (after ``reachable``).
SERVER_INFO_KEYS: tuple[str, ...] = (
    "version",
    "total_connections",
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "usable_connections",
    "free_connections",
    "limited_by",
    "utilization_percent",
    "max_connections_utilization_percent",
    "active_connections",
    "idle_connections",
    "idle_in_transaction_connections",
    "idle_in_transaction_aborted_connections",
    "waiting_connections",
    "hidden_connections",
    "visibility",
    "longest_idle_in_transaction_seconds",
    "oldest_transaction_seconds",
    "longest_query_seconds",
)
#: Figures a recorded sample (``dbconnmgr.models.ConnectionSample``) stores, one column each.
RECORDED_KEYS: tuple[str, ...] = (
    "total_connections",
    "active_connections",
    "idle_in_transaction_connections",
    "waiting_connections",
    "max_connections",
    "usable_connections",
    "utilization_percent",
    "wlm",
)


def _plain(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if document is None else dict(document)


def _ages(snapshot: Snapshot, field: str) -> Iterator[float]:
    """One age field of every connection the reader may see (the reader's own excluded)."""
    for conn in snapshot.others():
        age = getattr(conn, field)
        if age is not None:
            yield age


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


class Figures(Mapping[str, Any]):
    """The value of every :data:`FIGURES` entry for one snapshot (a read-only mapping).

    Build it with :meth:`of` (each figure computed once) or :meth:`unreachable` (every
    figure and session None). Templates read ``figures.total_connections``.
    """

    __slots__ = ("_sessions", "_values", "reachable")

    def __init__(
        self,
        values: dict[str, Any],
        sessions: dict[str, tuple[Connection | None, float | None]],
        reachable: bool,
    ) -> None:
        self._values = values
        self._sessions = sessions
        self.reachable = reachable

    @classmethod
    def of(cls, snapshot: Snapshot) -> Figures:
        """Every figure of ``snapshot``."""
        sessions: dict[str, tuple[Connection | None, float | None]] = {}
        for session in SESSIONS:
            conn = session.pick(snapshot)
            sessions[session.name] = (conn, None if conn is None else session.age(conn))
        values: dict[str, Any] = {}
        for figure in FIGURES:
            if figure.session is not None:
                values[figure.name] = _round(sessions[figure.session.name][1])
            elif figure.read is not None:
                values[figure.name] = figure.read(snapshot)
        return cls(values, sessions, reachable=True)

    @classmethod
    def unreachable(cls) -> Figures:
        """The figures of a server that could not be read: every one None."""
        return cls(
            dict.fromkeys(BY_NAME), {s.name: (None, None) for s in SESSIONS}, reachable=False
        )

    def session(self, name: str) -> tuple[Connection | None, float | None]:
        """The session named in :data:`SESSIONS` and its age in seconds (unrounded)."""
        return self._sessions[name]

    def pick(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """The figures named by ``keys``, in that order."""
        return {key: self._values[key] for key in keys}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def shown(self, where: Literal["table", "admin"]) -> list[tuple[str, str]]:
        """``(label, text)`` of the figures shown in the status table or on the admin page."""
        return [
            (figure.label, self.text(figure))
            for figure in FIGURES
            if (figure.table if where == "table" else figure.admin)
        ]

    def text(self, figure: Figure) -> str:
        """How the table and the admin page show one figure (a session: who it is too)."""
        if figure.session is not None:
            return describe_session(*self.session(figure.session.name))
        return format_value(figure, self._values[figure.name])


def format_seconds(seconds: float | None) -> str:
    """``3h02m``, ``4m05s``, ``12.3s``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_value(figure: Figure, value: Any) -> str:
    """One figure's value as text, by its unit (``-`` for None)."""
    if value is None:
        return "-"
    if figure.unit == "seconds":
        return format_seconds(value)
    if figure.unit == "percent":
        return f"{value}%"
    return str(value)


def describe_session(conn: Connection | None, seconds: float | None) -> str:
    """``4m05s (pid 123, app_user, web, idle in transaction, view:shop.views.export)`` (the
    code label when the session carries one); ``none`` without a session."""
    if conn is None:
        return "none"
    app = conn.application_name or "(none)"
    code = f", {conn.code}" if conn.code else ""
    return f"{format_seconds(seconds)} (pid {conn.pid}, {conn.user}, {app}, {conn.state}{code})"


__all__ = [
    "BY_NAME",
    "FIGURES",
    "SESSIONS",
    "Figure",
    "Figures",
    "Metric",
    "Session",
    "describe_session",
    "format_seconds",
    "format_value",
]
