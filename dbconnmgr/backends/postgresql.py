"""PostgreSQL backend: pg_stat_activity, pg_settings, pg_database and pg_roles."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend
from dbconnmgr.exceptions import ProblemKind, ServerUnavailable
from dbconnmgr.snapshot import Connection, ServerLimits, Snapshot
from dbconnmgr.termination import Candidate, Criteria, Selection, ServerAnswer

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

    def select_for_termination(self, criteria: Criteria) -> Selection:
        """Read the client backends matching ``criteria``, oldest state change first."""
        with self._cursor() as cursor:
            self._fresh_activity(cursor)
            cursor.execute(SELECT_FOR_TERMINATION_SQL, _criteria_params(criteria))
            rows = cursor.fetchall()
        first = rows[0]
        taken_at, own_pid, role, is_superuser, database, hidden = first[:6]
        candidates = tuple(
            Candidate(
                pid=row[6],
                backend_start=row[7],
                user=row[8],
                application_name=row[9] or "",
                database=row[10],
                client_addr=row[11],
                state=row[12],
                state_seconds=row[13],
                is_superuser=row[14],
                can_signal=row[15],
            )
            for row in rows
            if row[6] is not None
        )
        return Selection(
            taken_at=taken_at,
            own_pid=own_pid,
            db_role=role,
            is_superuser=is_superuser,
            database=database,
            candidates=candidates,
            hidden=hidden,
        )

    def terminate(
        self, criteria: Criteria, candidates: Sequence[Candidate]
    ) -> dict[int, ServerAnswer]:
        """One statement: re-check every candidate and signal those that still match."""
        if not candidates:
            return {}
        params = _criteria_params(criteria)
        params["pids"] = [c.pid for c in candidates]
        params["starts"] = [c.backend_start for c in candidates]
        with self._cursor() as cursor:
            self._fresh_activity(cursor)
            cursor.execute(TERMINATE_SQL, params)
            rows = cursor.fetchall()
        return {
            pid: ServerAnswer(pid=pid, outcome=outcome, state=state, state_seconds=seconds)
            for pid, outcome, state, seconds in rows
        }

    def still_running(self, candidates: Sequence[Candidate], timeout: float) -> set[int]:
        """Poll pg_stat_activity until the candidates have left it or ``timeout`` passes."""
        if not candidates:
            return set()
        params = {
            "pids": [c.pid for c in candidates],
            "starts": [c.backend_start for c in candidates],
        }
        deadline = time.monotonic() + timeout
        pause = 0.005
        with self._cursor() as cursor:
            while True:
                self._fresh_activity(cursor)
                cursor.execute(STILL_RUNNING_SQL, params)
                running = {pid for (pid,) in cursor.fetchall()}
                if not running or time.monotonic() >= deadline:
                    return running
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.02)

    def _fresh_activity(self, cursor: Any) -> None:
        """pg_stat_activity is read once per transaction: inside atomic(), drop that copy."""
        if self.connection.in_atomic_block:
            cursor.execute("SELECT pg_stat_clear_snapshot()")


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


# -- termination (close-idle, force-close) --------------------------------------------------
# Every filter is a bound parameter; NULL means "any". The same condition is used to select
# and, again, in the statement that signals: a backend that changed in between is spared.
_MATCH = """
    s.backend_type = 'client backend'
    AND s.pid <> pg_backend_pid()
    AND NOT (s.pid = ANY(%(exclude_pids)s::int[]))
    AND (%(states)s::text[] IS NULL OR s.state = ANY(%(states)s::text[]))
    AND (%(older_than)s::float8 IS NULL
         OR s.state_change <= clock_timestamp() - make_interval(secs => %(older_than)s::float8))
    AND (%(application)s::text IS NULL OR s.application_name = %(application)s::text)
    AND (%(user)s::text IS NULL OR s.usename = %(user)s::text)
    AND (%(database)s::text IS NULL OR s.datname = %(database)s::text)
    AND (NOT %(this_database)s::bool OR s.datname = current_database())
    AND (NOT %(this_user)s::bool OR s.usename = current_user)
"""

# The rules of pg_signal_backend() (src/backend/storage/ipc/signalfuncs.c): a superuser's
# backend only by a superuser; others by members of the backend's role or of
# pg_signal_backend. Checked here so that a refusal is an answer, not an error that aborts
# the whole statement (a superuser target raises 42501). CASE keeps pg_has_role() away from
# a role that no longer exists (it would raise).
_ALLOWED = """
    (current_setting('is_superuser') = 'on'
     OR (NOT coalesce(r.rolsuper, false)
         AND (CASE WHEN r.oid IS NULL THEN false ELSE pg_has_role(r.oid, 'USAGE') END
              OR pg_has_role('pg_signal_backend', 'USAGE'))))
"""

# Rows the role may not inspect show NULL backend_type and state; those matching the name
# filters are counted as hidden, never acted upon.
SELECT_FOR_TERMINATION_SQL = """
SELECT
    statement_timestamp(),
    pg_backend_pid(),
    current_user::text,
    current_setting('is_superuser') = 'on',
    current_database()::text,
    (SELECT count(*)::int FROM pg_stat_activity s
      WHERE s.backend_type IS NULL AND s.datid IS NOT NULL AND s.usesysid IS NOT NULL
        AND (%(application)s::text IS NULL OR s.application_name = %(application)s::text)
        AND (%(user)s::text IS NULL OR s.usename = %(user)s::text)
        AND (%(database)s::text IS NULL OR s.datname = %(database)s::text)
        AND (NOT %(this_database)s::bool OR s.datname = current_database())
        AND (NOT %(this_user)s::bool OR s.usename = current_user)),
    c.*
FROM (SELECT 1) one LEFT JOIN LATERAL (
    SELECT s.pid, s.backend_start, s.usename::text, s.application_name, s.datname::text,
           host(s.client_addr), s.state,
           extract(epoch FROM clock_timestamp() - s.state_change)::float8,
           coalesce(r.rolsuper, false), coalesce({allowed}, false)
    FROM pg_stat_activity s LEFT JOIN pg_roles r ON r.oid = s.usesysid
    WHERE {match}
    ORDER BY s.state_change, s.pid
) c ON true
""".replace("{match}", _MATCH).replace("{allowed}", _ALLOWED)

# The one terminating statement. CASE evaluates its branches in order, so
# pg_terminate_backend() runs only for a backend that is still there (same pid AND same
# backend_start: a reused pid is another backend), still matches, and may be signalled.
TERMINATE_SQL = """
WITH cur AS (
    SELECT w.pid,
           s.pid IS NOT NULL AS present,
           s.state,
           extract(epoch FROM clock_timestamp() - s.state_change)::float8 AS state_seconds,
           coalesce({match}, false) AS matches,
           coalesce(r.rolsuper, false) AS target_super,
           coalesce({allowed}, false) AS allowed
    FROM unnest(%(pids)s::int[], %(starts)s::timestamptz[]) AS w(pid, backend_start)
    LEFT JOIN pg_stat_activity s ON s.pid = w.pid AND s.backend_start = w.backend_start
    LEFT JOIN pg_roles r ON r.oid = s.usesysid
)
SELECT pid,
       CASE
           WHEN NOT present THEN 'already_gone'
           WHEN NOT matches THEN 'no_longer_matching'
           WHEN target_super AND NOT %(include_superusers)s::bool THEN 'protected'
           WHEN NOT allowed THEN 'permission_denied'
           WHEN pg_terminate_backend(pid) THEN 'signalled'
           ELSE 'already_gone'
       END,
       state,
       state_seconds
FROM cur
""".replace("{match}", "(" + _MATCH + ")").replace("{allowed}", _ALLOWED)

STILL_RUNNING_SQL = """
SELECT s.pid
FROM pg_stat_activity s
JOIN unnest(%(pids)s::int[], %(starts)s::timestamptz[]) AS w(pid, backend_start)
  ON s.pid = w.pid AND s.backend_start = w.backend_start
"""


def _criteria_params(criteria: Criteria) -> dict[str, Any]:
    return {
        "exclude_pids": list(criteria.exclude_pids),
        "states": list(criteria.states) if criteria.states is not None else None,
        "older_than": criteria.older_than,
        "application": criteria.application_name,
        "user": criteria.user,
        "database": criteria.database_name,
        "this_database": criteria.current_database_only,
        "this_user": criteria.current_user_only,
        "include_superusers": criteria.include_superusers,
    }
