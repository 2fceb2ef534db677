"""PgBouncer's side of a pooled connection: plain data read from its admin console.

Behind PgBouncer, ``pg_stat_activity`` shows only the server connections the pooler opened;
what the application's clients wait for lives in the pooler. :class:`PoolerSnapshot` holds
what the console said (SHOW POOLS, SHOW DATABASES, SHOW CONFIG, SHOW CLIENTS); the health
findings about it are in :func:`evaluate_pooler`. Pure: no I/O, no Django.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbconnmgr.core.budget import Service
from dbconnmgr.core.findings import Finding, Severity
from dbconnmgr.core.thresholds import Thresholds, level, limits_text, resolve_thresholds

__all__ = [
    "Pool",
    "PoolerSnapshot",
    "PoolerUnavailable",
    "evaluate_pooler",
    "maxwait_finding",
    "pooler_service",
    "pooler_unavailable_finding",
    "saturation_findings",
    "server_connections_finding",
    "waiting_finding",
]


@dataclass(frozen=True)
class Pool:
    """One PgBouncer pool: a (database, user) pair.

    Attributes:
        database: the pooler's database name (as clients name it).
        user: the role the pool logs in as.
        pool_mode: ``session``, ``transaction`` or ``statement``.
        pool_size: server connections the pool may open (the database's, else the default).
        reserve_pool_size: extra server connections for clients that waited too long.
        active_clients: clients linked to a server connection (or idle, in session mode).
        waiting_clients: clients waiting for a server connection.
        active_servers: server connections linked to a client.
        idle_servers: server connections ready for a client.
        used_servers: server connections idle for longer than server_check_delay.
        other_servers: server connections being tested or logging in.
        maxwait_seconds: how long the oldest waiting client has waited.
    """

    database: str
    user: str
    pool_mode: str
    pool_size: int
    reserve_pool_size: int
    active_clients: int
    waiting_clients: int
    active_servers: int
    idle_servers: int
    used_servers: int
    other_servers: int
    maxwait_seconds: float

    @property
    def server_connections(self) -> int:
        """Server connections the pool holds now (each takes a PostgreSQL slot)."""
        return self.active_servers + self.idle_servers + self.used_servers + self.other_servers

    @property
    def max_server_connections(self) -> int:
        """The most server connections this pool may open: pool_size plus the reserve."""
        return self.pool_size + self.reserve_pool_size

    @property
    def saturation_percent(self) -> float:
        """Active server connections as a % of pool_size (100.0 for a zero-size pool in use)."""
        if self.pool_size <= 0:
            return 100.0 if self.active_servers or self.waiting_clients else 0.0
        return round(self.active_servers * 100.0 / self.pool_size, 1)


@dataclass(frozen=True)
class PoolerSnapshot:
    """What PgBouncer's admin console said at one moment.

    Attributes:
        alias: the Django database alias the pooler is configured for.
        console: where the console was read (``host:port``, never a password).
        version: ``SHOW VERSION`` (``PgBouncer 1.18.0``).
        taken_at: when the console was read (the client's clock: the console has none).
        pools: every pool but the console's own (``pgbouncer``) one.
        config: the SHOW CONFIG settings this module uses, as PgBouncer gives them.
        database_max_connections: ``max_db_connections`` per database that sets one.
        clients_by_application: client connections per (application_name, state).
    """

    alias: str
    console: str
    version: str
    taken_at: datetime
    pools: tuple[Pool, ...]
    config: Mapping[str, str]
    database_max_connections: Mapping[str, int] = field(default_factory=dict)
    clients_by_application: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def setting(self, key: str, default: int = 0) -> int:
        """A numeric SHOW CONFIG setting (``default`` when absent or not a number)."""
        try:
            return int(self.config.get(key, default))
        except ValueError:
            return default

    @property
    def pool_mode(self) -> str:
        """The default pool_mode."""
        return str(self.config.get("pool_mode", "session"))

    @property
    def client_connections(self) -> int:
        """Client connections to real databases (the console's own excluded)."""
        return sum(p.active_clients + p.waiting_clients for p in self.pools)

    @property
    def waiting_clients(self) -> int:
        """Clients waiting for a server connection, every pool together."""
        return sum(p.waiting_clients for p in self.pools)

    @property
    def maxwait_seconds(self) -> float:
        """The longest any client has waited, every pool together."""
        return max((p.maxwait_seconds for p in self.pools), default=0.0)

    @property
    def server_connections(self) -> int:
        """Server connections PgBouncer holds now."""
        return sum(p.server_connections for p in self.pools)

    def max_server_connections(self) -> int:
        """The most server connections PgBouncer may open for the pools it has.

        Each (database, user) pool may open pool_size + reserve_pool_size; a database's
        ``max_db_connections`` and a user's ``max_user_connections`` cap the sum of its pools.
        Pools for pairs that have not connected yet are not counted.
        """
        by_database: Counter[str] = Counter()
        by_user: Counter[str] = Counter()
        for pool in self.pools:
            by_database[pool.database] += pool.max_server_connections
            by_user[pool.user] += pool.max_server_connections
        global_db = self.setting("max_db_connections")
        global_user = self.setting("max_user_connections")

        def capped(total: int, cap: int) -> int:
            return min(total, cap) if cap > 0 else total

        per_database = sum(
            capped(total, self.database_max_connections.get(db) or global_db)
            for db, total in by_database.items()
        )
        per_user = sum(capped(total, global_user) for total in by_user.values())
        return min(per_database, per_user)

    def by_application(self, limit: int | None = None) -> list[tuple[str, int, dict[str, int]]]:
        """Client connections per application_name, largest first: (name, count, by state)."""
        totals: Counter[str] = Counter()
        states: dict[str, Counter[str]] = {}
        for (name, state), count in self.clients_by_application.items():
            totals[name] += count
            states.setdefault(name, Counter())[state] += count
        ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [(name, count, dict(states[name])) for name, count in ordered]


@dataclass(frozen=True)
class PoolerUnavailable:
    """The console could not be read: why, in one line.

    Attributes:
        alias: the Django database alias.
        console: where it was to be read (``host:port``).
        kind: ``unreachable``, ``auth`` (wrong password, or a user in neither admin_users
            nor stats_users), ``not_console`` (the URL names a database, not ``pgbouncer``)
            or ``other``.
        message: one line for a person.
    """

    alias: str
    console: str
    kind: str
    message: str


def pooler_unavailable_finding(problem: PoolerUnavailable) -> Finding:
    """UNKNOWN: the PgBouncer part could not be checked (the server part still reports)."""
    return Finding(
        "pgbouncer_unavailable",
        Severity.UNKNOWN,
        problem.message,
        {"kind": problem.kind, "console": problem.console},
    )


def evaluate_pooler(
    pooler: PoolerSnapshot,
    thresholds: Thresholds | Mapping[str, Any] | None,
    usable_connections: int | None,
) -> list[Finding]:
    """The PgBouncer checks (``dbconnmgr.core.checks.CHECKS`` declares each one).

    Args:
        pooler: what the console said.
        thresholds: the thresholds (``PGBOUNCER_*`` keys; None: the defaults).
        usable_connections: PostgreSQL's slots usable by ordinary roles (None when the
            server could not be read: the capacity check is then not judged).
    """
    t = resolve_thresholds(thresholds)
    return [
        waiting_finding(pooler, t),
        maxwait_finding(pooler, t),
        *saturation_findings(pooler, t),
        server_connections_finding(pooler, usable_connections),
    ]


def waiting_finding(pooler: PoolerSnapshot, t: Thresholds) -> Finding:
    """``pgbouncer_waiting``: clients waiting for a server connection, every pool together."""
    waiting = pooler.waiting_clients
    warn, crit = t.pgbouncer_waiting_warning, t.pgbouncer_waiting_critical
    busiest = sorted(pooler.pools, key=lambda p: (-p.waiting_clients, p.database, p.user))
    where = ", ".join(
        f"{p.database}/{p.user} {p.waiting_clients}" for p in busiest if p.waiting_clients
    )
    text = (
        f"{waiting} client(s) waiting for a server connection ({where})"
        if waiting
        else "no client waiting for a server connection"
    )
    return Finding(
        "pgbouncer_waiting",
        level(waiting, warn, crit) if waiting else Severity.OK,
        text + _suffix(limits_text("at", warn, crit, " waiting")),
        {"waiting_clients": waiting, "warning": warn, "critical": crit},
    )


def maxwait_finding(pooler: PoolerSnapshot, t: Thresholds) -> Finding:
    """``pgbouncer_maxwait``: how long the oldest waiting client has waited."""
    maxwait = pooler.maxwait_seconds
    warn, crit = t.pgbouncer_maxwait_warning, t.pgbouncer_maxwait_critical
    return Finding(
        "pgbouncer_maxwait",
        level(maxwait, warn, crit),
        f"the oldest waiting client has waited {maxwait:g}s"
        + _suffix(limits_text("at", warn, crit, "s")),
        {"maxwait_seconds": maxwait, "warning": warn, "critical": crit},
    )


def saturation_findings(pooler: PoolerSnapshot, t: Thresholds) -> list[Finding]:
    """``pgbouncer_saturation``, one per pool: its active servers against its pool_size."""
    warn, crit = t.pgbouncer_saturation_warning, t.pgbouncer_saturation_critical
    findings = []
    for pool in sorted(pooler.pools, key=lambda p: (p.database, p.user)):
        percent = pool.saturation_percent
        findings.append(
            Finding(
                "pgbouncer_saturation",
                level(percent, warn, crit),
                f"pool {pool.database}/{pool.user}: {pool.active_servers} of its "
                f"{pool.pool_size} server connections in use ({percent:g}%)"
                + _suffix(limits_text("at", warn, crit, "%")),
                {
                    "database": pool.database,
                    "user": pool.user,
                    "active_servers": pool.active_servers,
                    "pool_size": pool.pool_size,
                    "saturation_percent": percent,
                    "warning": warn,
                    "critical": crit,
                },
                subject=f"{pool.database}/{pool.user}",
            )
        )
    return findings


def _suffix(text: str) -> str:
    return f"; {text}" if text else ""


def server_connections_finding(pooler: PoolerSnapshot, usable: int | None) -> Finding:
    """``pgbouncer_server_connections``: what PgBouncer may open against the usable slots."""
    possible = pooler.max_server_connections()
    data = {
        "max_server_connections": possible,
        "server_connections": pooler.server_connections,
        "usable_connections": usable,
    }
    if usable is None:
        return Finding(
            "pgbouncer_server_connections",
            Severity.UNKNOWN,
            f"PgBouncer may open {possible} server connections; PostgreSQL's usable slots "
            "could not be read",
            data,
        )
    if possible > usable:
        return Finding(
            "pgbouncer_server_connections",
            Severity.CRITICAL,
            f"PgBouncer may open {possible} server connections (pool sizes plus reserve) but "
            f"PostgreSQL has {usable} usable slots: lower the pool sizes or set "
            "max_db_connections",
            data,
        )
    return Finding(
        "pgbouncer_server_connections",
        Severity.OK,
        f"PgBouncer may open {possible} server connections of PostgreSQL's {usable} usable slots",
        data,
    )


def pooler_service(pooler: PoolerSnapshot) -> Service:
    """The budget line of the services that connect through ``pooler``.

    Behind PgBouncer, the server sees PgBouncer's server connections, not the services'
    threads: the demand is what PgBouncer may open (:meth:`PoolerSnapshot.
    max_server_connections`), or one default pool plus its reserve when no client has
    connected yet.
    """
    possible = pooler.max_server_connections() or (
        pooler.setting("default_pool_size") + pooler.setting("reserve_pool_size")
    )
    return Service("pgbouncer", processes=1, threads=1, pool_max_size=max(possible, 1))


def maxwait_from(row: Mapping[str, Any]) -> float:
    """SHOW POOLS' maxwait (seconds) plus maxwait_us (microseconds, 1.8+), one decimal."""
    seconds = float(row.get("maxwait") or 0) + float(row.get("maxwait_us") or 0) / 1e6
    return math.floor(seconds * 10) / 10
