"""PostgreSQL backend: pg_stat_activity, pg_settings, pg_database and pg_roles."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend
from dbconnmgr.exceptions import ProblemKind, ServerUnavailable
from dbconnmgr.snapshot import Connection, ServerLimits, Snapshot

#: Characters of query text kept per connection.
QUERY_TEXT_LIMIT = 500

# One statement, one round trip. The server limits ride along on every row (LEFT JOIN so
# that they arrive even when no client row is visible); the client only decodes the first.
# Only client backends hold max_connections slots. A row the role may not see has a NULL
# backend_type: it is still a client slot when it has both a database and a user (background
# processes have neither), so it is kept and marked hidden rather than silently dropped.
# pg_blocking_pids() takes the lock manager's locks: call it only for backends that wait.
SNAPSHOT_SQL = """
WITH lim AS (
    SELECT
        statement_timestamp() AS taken_at,
        pg_backend_pid() AS own_pid,
        current_setting('server_version') AS version,
        current_setting('server_version_num')::int AS version_num,
        current_setting('max_connections')::int AS max_connections,
        current_setting('superuser_reserved_connections')::int AS su_reserved,
        coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
        current_user::text AS reader,
        current_setting('is_superuser') = 'on' AS reader_is_superuser,
        pg_has_role('pg_read_all_stats', 'USAGE') AS reader_sees_all,
        (SELECT json_object_agg(datname, datconnlimit) FROM pg_database
          WHERE datconnlimit >= 0 AND datallowconn)::text AS database_limits,
        (SELECT json_object_agg(rolname, rolconnlimit) FROM pg_roles
          WHERE rolconnlimit >= 0 AND rolcanlogin)::text AS role_limits
)
SELECT lim.*, a.*
FROM lim LEFT JOIN (
    SELECT
        s.pid,
        s.datname::text,
        s.usename::text,
        s.application_name,
        host(s.client_addr),
        s.backend_start,
        s.xact_start,
        s.query_start,
        s.state,
        s.state_change,
        s.wait_event_type,
        s.wait_event,
        CASE WHEN s.wait_event_type = 'Lock' THEN pg_blocking_pids(s.pid) END,
        left(s.query, %(query_limit)s),
        s.backend_type IS NOT NULL,
        coalesce(r.rolsuper, false)
    FROM pg_stat_activity s LEFT JOIN pg_roles r ON r.oid = s.usesysid
    WHERE s.backend_type = 'client backend'
       OR (s.backend_type IS NULL AND s.datid IS NOT NULL AND s.usesysid IS NOT NULL)
) a ON true
"""

_LIMIT_COLUMNS = 12


class PostgreSQLBackend(ConnectionBackend):
    """Connection snapshots of a PostgreSQL server (9.6 and later, tested on 15 and 18)."""

    vendor = "postgresql"

    def snapshot(self) -> Snapshot:
        """Read every client backend and the server's limits in one statement."""
        with self._cursor() as cursor:
            _fast_timestamps(cursor)
            cursor.execute(SNAPSHOT_SQL, {"query_limit": QUERY_TEXT_LIMIT})
            rows = cursor.fetchall()
        return self._build(rows)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            with self.connection.cursor() as cursor:
                yield cursor
        except (DatabaseError, InterfaceError) as exc:
            raise classify_error(exc, self.alias) from exc

    def _build(self, rows: Sequence[Sequence[Any]]) -> Snapshot:
        first = rows[0]
        (taken_at, own_pid, version, version_num, max_conn, su_reserved, reserved, reader,
         reader_is_superuser, reader_sees_all, db_limits, role_limits,
         ) = first[:_LIMIT_COLUMNS]  # fmt: skip
        limits = ServerLimits(
            version=version,
            version_num=version_num,
            max_connections=max_conn,
            superuser_reserved_connections=su_reserved,
            reserved_connections=reserved,
            database_limits=json.loads(db_limits) if db_limits else {},
            role_limits=json.loads(role_limits) if role_limits else {},
            current_user=reader,
            is_superuser=reader_is_superuser,
        )
        connections = tuple(
            _connection(row, taken_at) for row in rows if row[_LIMIT_COLUMNS] is not None
        )
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=taken_at,
            limits=limits,
            connections=connections,
            own_pid=own_pid,
            visibility="full" if reader_sees_all else "restricted",
        )


def _fast_timestamps(cursor: Any) -> None:
    """Decode this cursor's timestamptz columns with psycopg's own (C) loader.

    Django registers a pure-Python loader (it re-attaches its time zone to every value):
    at 1,000 connections it costs about 10 ms of CPU per snapshot, most of a monitor's
    budget. With USE_TZ the connection runs in UTC, so psycopg's loader yields the same
    aware UTC datetimes. The registration is local to this cursor.
    """
    adapters = getattr(getattr(cursor, "cursor", None), "adapters", None)
    if adapters is None or not settings.USE_TZ:
        return
    from psycopg.types.datetime import TimestamptzLoader

    adapters.register_loader("timestamptz", TimestamptzLoader)


def _seconds(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _connection(row: Sequence[Any], now: datetime) -> Connection:
    (pid, database, user, application_name, client_addr, backend_start, xact_start, query_start,
     state, state_change, wait_event_type, wait_event, blocking, query, visible,
     is_superuser) = row[_LIMIT_COLUMNS:]  # fmt: skip
    state = state or "unknown"
    return Connection(
        pid=pid,
        database=database,
        user=user,
        application_name=application_name or "",
        client_addr=client_addr,
        backend_start=backend_start,
        xact_start=xact_start,
        query_start=query_start,
        state=state,
        state_change=state_change,
        wait_event_type=wait_event_type,
        wait_event=wait_event,
        blocking_pids=tuple(blocking) if blocking else (),
        query=query if visible else None,
        visible=visible,
        is_superuser=is_superuser,
        backend_seconds=_seconds(now, backend_start),
        transaction_seconds=_seconds(now, xact_start),
        query_seconds=_seconds(now, query_start) if state == "active" else None,
        state_seconds=_seconds(now, state_change),
    )


# Fragments of libpq / server messages, lower-cased. psycopg 3 gives sqlstate None for
# connection failures, so the text is all there is (wording varies by version).
_PATTERNS: tuple[tuple[str, ProblemKind, str], ...] = (
    ("too many clients", "full", "the server is full (max_connections reached)"),
    ("remaining connection slots are reserved", "reserved",
     "the server is full for ordinary roles: only reserved slots are left"),
    ("too many connections for role", "full", "the role's connection limit is reached"),
    ("too many connections for database", "full", "the database's connection limit is reached"),
    ("password authentication failed", "auth", "authentication failed (wrong user or password)"),
    ("no password supplied", "auth", "authentication failed (no password supplied)"),
    ("pg_hba.conf", "auth", "the server's pg_hba.conf rejects this connection"),
    ("does not exist", "auth", "the role or database does not exist"),
    ("timeout expired", "timeout", "timed out connecting to the server"),
    ("connection refused", "unreachable", "cannot connect: connection refused"),
    ("could not translate host name", "unreachable", "cannot connect: unknown host name"),
    ("name or service not known", "unreachable", "cannot connect: unknown host name"),
    ("no route to host", "unreachable", "cannot connect: no route to host"),
    ("network is unreachable", "unreachable", "cannot connect: network is unreachable"),
    ("no such file or directory", "unreachable", "cannot connect: no server on that socket"),
    ("server closed the connection", "unreachable", "the server closed the connection"),
    ("terminating connection", "unreachable", "the server terminated the connection"),
    ("the database system is starting up", "unreachable", "the server is starting up"),
    ("the database system is shutting down", "unreachable", "the server is shutting down"),
    ("the connection is closed", "unreachable", "the connection to the server was lost"),
    ("consuming input failed", "unreachable", "the connection to the server was lost"),
)  # fmt: skip


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """Turn a driver error met while connecting or reading into :class:`ServerUnavailable`.

    Errors that are not about reaching the server (a bug in SQL, say) are returned as they
    are, so they keep their traceback.
    """
    text = str(exc).strip()
    lowered = text.lower()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    for fragment, kind, message in _PATTERNS:
        if fragment in lowered:
            return ServerUnavailable(
                f"database {alias!r}: {message} ({first_line})",
                kind=kind,
                alias=alias,
                detail=first_line,
            )
    if "connection" in lowered and ("failed" in lowered or "closed" in lowered):
        return ServerUnavailable(
            f"database {alias!r}: cannot connect ({first_line})",
            kind="unreachable",
            alias=alias,
            detail=first_line,
        )
    return exc
