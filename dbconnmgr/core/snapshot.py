"""Plain data read from the server: connections, limits, and aggregations over them.

Nothing here does I/O. A :class:`Snapshot` is produced by a backend in one round trip and
every figure (counts by state, application, user, database, client) is computed from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Literal, NamedTuple

#: The common model's session states: every value of PostgreSQL's ``pg_stat_activity.state``
#: (the richest engine; the others map their sessions onto these, docs/mysql.md), plus
#: ``unknown`` for rows the reading role may not see. Every document counts each of them
#: (:meth:`Snapshot.by_state`), whatever the engine; an engine's ``Capabilities.states``
#: names those it can report. Kept in this order for display.
STATES: tuple[str, ...] = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
    "unknown",
)
IDLE_IN_TRANSACTION_STATES = frozenset({"idle in transaction", "idle in transaction (aborted)"})

Visibility = Literal["full", "restricted"]


@dataclass(frozen=True, slots=True)
class Counters:
    """Which of a snapshot's ``extras`` are server counters, as its engine declares them.

    Attributes:
        cumulative: counters that only grow while the server runs: samples report how
            much each grew since the previous sample (``<name>_since_last_sample``).
        refused: the one that counts every connection attempt the server refused or that
            failed (full, bad credentials, handshake timeout); None: the engine has none,
            and no ``refused_connections`` finding is made.
        full_refused: the one that counts refusals because the server was full, where the
            server keeps it; its growth makes a refusal critical.
    """

    cumulative: tuple[str, ...] = ()
    refused: str | None = None
    full_refused: str | None = None


#: An engine that reports no counters (the default of :attr:`Snapshot.counters`).
NO_COUNTERS = Counters()


class Connection(NamedTuple):
    """One client backend: a session that holds one of the server's connection slots.

    Times are ages in seconds measured by the server's clock at the moment of the snapshot
    (``now - backend_start``, ``now - xact_start``, ``now - query_start``,
    ``now - state_change``), never the client's, so clock skew cannot distort them;
    :meth:`Snapshot.timestamp` turns an age back into the server's timestamp.
    Fields the reading role may not see are None and ``state`` is ``"unknown"``.
    ``client`` is the client's IP address, ``local`` for a Unix socket, or ``unknown``.
    A NamedTuple, not a dataclass: a snapshot builds one per session, and this is several
    times cheaper at 1,000 sessions (bench/bench_status.py).
    """

    pid: int
    database: str | None
    user: str | None
    application_name: str
    client: str
    state: str
    wait_event_type: str | None
    wait_event: str | None
    blocking_pids: Sequence[int]
    query: str | None
    visible: bool
    is_superuser: bool
    backend_seconds: float | None = None
    transaction_seconds: float | None = None
    query_seconds: float | None = None
    state_seconds: float | None = None

    @property
    def running_seconds(self) -> float | None:
        """How long the current query has run; None unless the session is active."""
        return self.query_seconds if self.state == "active" else None

    @property
    def is_idle_in_transaction(self) -> bool:
        """True for ``idle in transaction`` and ``idle in transaction (aborted)``."""
        return self.state in IDLE_IN_TRANSACTION_STATES

    @property
    def is_waiting_on_lock(self) -> bool:
        """True when the backend waits for a heavyweight lock."""
        return self.wait_event_type == "Lock"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The server's connection limits as the reading role sees them.

    ``superusers_bypass_limits``: the database and role limits do not apply to a
    superuser (PostgreSQL); MySQL applies an account's MAX_USER_CONNECTIONS to every
    account, SUPER included (measured on MariaDB 10.11: error 1226).
    """

    version: str
    version_num: int
    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: int
    database_limits: dict[str, int] = field(default_factory=dict)
    role_limits: dict[str, int] = field(default_factory=dict)
    current_user: str = ""
    is_superuser: bool = False
    current_database: str = ""
    superusers_bypass_limits: bool = True

    @property
    def reader_exempt_from_limits(self) -> bool:
        """The reading role is a superuser the database and role limits do not bind."""
        return self.is_superuser and self.superusers_bypass_limits

    def binding_caps(self, database: str | None) -> tuple[tuple[LimitScope, int], ...]:
        """The connection limits beyond the server's usable slots that bind the reading role
        on ``database``: the database's, then the role's, where set (none where the reader
        is exempt, :attr:`reader_exempt_from_limits`). The one answer for the snapshot's
        headrooms and the budget."""
        if self.reader_exempt_from_limits:
            return ()
        caps: list[tuple[LimitScope, int]] = []
        db_limit = self.database_limits.get(database) if database else None
        if db_limit is not None and db_limit >= 0:
            caps.append(("database", db_limit))
        role_limit = self.role_limits.get(self.current_user)
        if role_limit is not None and role_limit >= 0:
            caps.append(("role", role_limit))
        return tuple(caps)

    @property
    def usable_connections(self) -> int:
        """Slots an ordinary (non-superuser) role can use: max minus the reserved ones."""
        return max(
            0,
            self.max_connections - self.superuser_reserved_connections - self.reserved_connections,
        )


#: Which limit binds an alias first: the server's usable slots, the database's
#: ``datconnlimit`` or the role's ``rolconnlimit``.
LimitScope = Literal["server", "database", "role"]


class Headroom(NamedTuple):
    """The connections counted against one limit and the limit itself."""

    scope: LimitScope
    connections: int
    limit: int

    @property
    def free(self) -> int:
        """Slots left under this limit (never negative)."""
        return max(0, self.limit - self.connections)

    @property
    def percent(self) -> float:
        """:func:`utilization` of this limit."""
        return utilization(self.connections, self.limit)


def utilization(connections: int, slots: int) -> float:
    """``connections`` as a percentage of ``slots``, one decimal; may exceed 100.

    No slots at all: 100.0 when connections are present (nothing more fits), 0.0 otherwise.
    Every utilization figure of dbconnmgr goes through this function.
    """
    if slots <= 0:
        return 100.0 if connections > 0 else 0.0
    return round(connections * 100.0 / slots, 1)


@dataclass(frozen=True, slots=True)
class Group:
    """Connections sharing one value of a key (an application, a user...)."""

    name: str
    count: int
    by_state: dict[str, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every client connection of a server at one moment, with the server's limits.

    Attributes:
        alias: the Django database alias it was read through.
        vendor: ``postgresql``...
        taken_at: the server's clock when the snapshot was read.
        own_pid: the backend pid of the connection that read it. That connection is in
            ``connections`` but no count, grouping, age or utilization includes it.
        visibility: ``full`` when the reading role may see every session's details,
            ``restricted`` otherwise (other roles' states and queries are hidden).
        extras: figures only this vendor reports (MySQL's refused-connection counters...),
            plain JSON values; the documents put them under the vendor's own key.
        visibility_grant: what to grant the reading role so that it sees every session
            (the backend's words, for the ``visibility`` finding).
        counters: which ``extras`` are server counters (the engine's declaration).
    """

    alias: str
    vendor: str
    taken_at: datetime
    limits: ServerLimits
    connections: tuple[Connection, ...]
    own_pid: int
    visibility: Visibility
    extras: dict[str, Any] = field(default_factory=dict)
    visibility_grant: str = ""
    counters: Counters = NO_COUNTERS
    _others: tuple[Connection, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        connections = self.connections
        pids = list(map(_PID, connections))
        if pids.count(self.own_pid) == 1:  # the usual case, at C speed
            at = pids.index(self.own_pid)
            others = tuple(connections[:at]) + tuple(connections[at + 1 :])
        else:
            others = tuple(c for c in connections if c.pid != self.own_pid)
        object.__setattr__(self, "_others", others)

    # -- totals ------------------------------------------------------------------------------
    @property
    def database(self) -> str:
        """The server's name of the database the alias connects to (``current_database()``)."""
        return self.limits.current_database

    @property
    def total_connections(self) -> int:
        """Client connections holding a slot, the reading connection excluded."""
        return len(self._others)

    @property
    def max_connections(self) -> int:
        """The server's ``max_connections``."""
        return self.limits.max_connections

    @property
    def usable_connections(self) -> int:
        """Slots an ordinary role can use server-wide (max_connections minus reserved)."""
        return self.limits.usable_connections

    def headrooms(self) -> tuple[Headroom, ...]:
        """Every limit that applies to the alias: the server's usable slots, then the
        database's and the role's connection limits when they are set (a superuser reader
        is not bound by them where ``limits.reader_exempt_from_limits``)."""
        result = [Headroom("server", self.total_connections, self.limits.usable_connections)]
        for scope, limit in self.limits.binding_caps(self.database):
            if scope == "database":
                count = sum(1 for c in self._others if c.database == self.database)
            else:
                count = sum(1 for c in self._others if c.user == self.limits.current_user)
            result.append(Headroom(scope, count, limit))
        return tuple(result)

    def binding_limit(self) -> Headroom:
        """The limit that leaves the alias the fewest free slots (the server's on a tie)."""
        return min(self.headrooms(), key=lambda h: (h.free, -h.percent))

    @property
    def limited_by(self) -> LimitScope:
        """Which limit :attr:`free_connections` and :attr:`utilization_percent` come from."""
        return self.binding_limit().scope

    @property
    def free_connections(self) -> int:
        """Slots the alias's role can still open: the fewest left under any limit that
        applies (server usable slots, database and role connection limits); never negative."""
        return self.binding_limit().free

    @property
    def utilization_percent(self) -> float:
        """Connections as a percentage of the usable slots, one decimal (may exceed 100).

        Usable slots are max_connections minus the reserved ones; when the database's or the
        role's connection limit leaves fewer free slots, that limit's figure is used
        (:attr:`limited_by` says which). No usable slots with connections present is 100.0.
        """
        return self.binding_limit().percent

    @property
    def max_connections_utilization_percent(self) -> float:
        """Connections as a percentage of max_connections, one decimal."""
        return utilization(self.total_connections, self.limits.max_connections)

    @property
    def hidden_connections(self) -> int:
        """Connections whose details the reading role may not see."""
        return sum(1 for c in self._others if not c.visible)

    @property
    def waiting_connections(self) -> tuple[Connection, ...]:
        """Connections waiting on a lock."""
        return tuple(c for c in self._others if c.is_waiting_on_lock)

    @property
    def active_connections(self) -> int:
        """Connections in state ``active``."""
        return self.count_state("active")

    @property
    def idle_connections(self) -> int:
        """Connections in state ``idle``."""
        return self.count_state("idle")

    @property
    def idle_in_transaction_connections(self) -> int:
        """Connections idle in a transaction, aborted ones included."""
        return self.count_state(*IDLE_IN_TRANSACTION_STATES)

    @property
    def idle_in_transaction_aborted_connections(self) -> int:
        """Connections idle in an aborted transaction."""
        return self.count_state("idle in transaction (aborted)")

    # -- aggregations ------------------------------------------------------------------------
    def by_state(self) -> dict[str, int]:
        """Counts for every state in :data:`STATES`, zeros included, in display order."""
        counts = Counter(map(_STATE, self._others))
        result = {state: counts.pop(state, 0) for state in STATES}
        result.update(counts)  # a state a future server version invents is not lost
        return result

    def count_state(self, *states: str) -> int:
        """How many connections are in any of ``states``."""
        return sum(1 for c in self._others if c.state in states)

    def group_by(
        self, key: str | Callable[[Connection], str | None], limit: int | None = None
    ) -> list[Group]:
        """Group connections by a field name or a function, largest first, top ``limit``."""
        return group_connections(self._others, key, limit)

    def by_application(self, limit: int | None = None) -> list[Group]:
        """Connections per ``application_name`` (empty name shown as ``(none)``)."""
        return self.group_by("application_name", limit)

    def by_user(self, limit: int | None = None) -> list[Group]:
        """Connections per role."""
        return self.group_by("user", limit)

    def by_database(self, limit: int | None = None) -> list[Group]:
        """Connections per database."""
        return self.group_by("database", limit)

    def by_client(self, limit: int | None = None) -> list[Group]:
        """Connections per client address (``local`` for Unix sockets)."""
        return self.group_by("client", limit)

    def timestamp(self, seconds_ago: float | None) -> datetime | None:
        """The server time ``seconds_ago`` before the snapshot (e.g. a transaction start)."""
        return None if seconds_ago is None else self.taken_at - timedelta(seconds=seconds_ago)

    def others(self) -> tuple[Connection, ...]:
        """Every connection except the one that read this snapshot: what every count,
        grouping and age of the snapshot is computed from."""
        return self._others

    def oldest_transaction(self) -> Connection | None:
        """The connection whose transaction started first (the reader's own excluded)."""
        return _max_by(self.others(), lambda c: c.transaction_seconds)

    def longest_idle_in_transaction(self) -> Connection | None:
        """The connection idle in a transaction for the longest time, if any."""
        return _max_by(
            (c for c in self._others if c.is_idle_in_transaction), lambda c: c.state_seconds
        )

    def longest_running_query(self) -> Connection | None:
        """The ``active`` connection whose query has run the longest (reader excluded).

        An idle session's ``query_start`` is its last query's: it does not count.
        """
        return _max_by(self._others, lambda c: c.running_seconds)


def group_connections(
    connections: Iterable[Connection],
    key: str | Callable[[Connection], str | None],
    limit: int | None = None,
) -> list[Group]:
    """Group ``connections`` by a field name or function (None: ``unknown``, "": ``(none)``).

    Counts (key, state) pairs with Counter over C-level iterators: at 1,000 connections this
    is several times cheaper than a Python loop per connection.
    """
    conns = connections if isinstance(connections, tuple) else tuple(connections)
    getter = attrgetter(key) if isinstance(key, str) else key
    pairs = Counter(zip(map(getter, conns), map(_STATE, conns), strict=True))
    groups: dict[str, Counter[str]] = {}
    for (value, state), count in pairs.items():
        name = "unknown" if value is None else (value or "(none)")
        groups.setdefault(name, Counter())[state] += count
    ordered = sorted(groups.items(), key=lambda item: (-item[1].total(), item[0]))
    if limit is not None:
        ordered = ordered[:limit]
    return [
        Group(name=name, count=states.total(), by_state=dict(sorted(states.items())))
        for name, states in ordered
    ]


_STATE = attrgetter("state")
_PID = attrgetter("pid")


def _max_by(
    connections: Iterable[Connection], age: Callable[[Connection], float | None]
) -> Connection | None:
    best: Connection | None = None
    best_age = -1.0
    for conn in connections:
        value = age(conn)
        if value is not None and value > best_age:
            best, best_age = conn, value
    return best


@dataclass(frozen=True, slots=True)
class ClientCount:
    """How many client connections the server holds, and how many it allows.

    The cheap figure :func:`dbconnmgr.connection_monitor` reads on each side of a block:
    no per-connection rows, one short statement. ``client_connections`` excludes the
    connection that read it.
    """

    client_connections: int
    max_connections: int
    usable_connections: int

    @property
    def utilization_percent(self) -> float:
        """Client connections as a percentage of the usable (non-reserved) slots."""
        return utilization(self.client_connections, self.usable_connections)
