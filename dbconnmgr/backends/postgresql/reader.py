"""PostgreSQL backend: pg_stat_get_activity(), pg_settings, pg_database and pg_roles."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend, setup_error
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.snapshot import ClientCount, Connection, ServerLimits, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import ProblemKind, ServerUnavailable
from dbconnmgr.internals import quiet_pipeline_exit

#: Characters of query text kept per connection.
QUERY_TEXT_LIMIT = 500

# Two statements sent together in one pipeline: one network round trip. (Joining the limits
# onto every row was measured 3x slower at 1,000 rows: repeated columns decoded per row.)
# The oid -> name maps let ACTIVITY_SQL skip the pg_stat_activity view's joins.
# Activity is cached per transaction: clearing it here makes ACTIVITY_SQL, which runs after
# this statement, read fresh data even inside the caller's atomic() block.
LIMITS_SQL = """
SELECT
    statement_timestamp(),
    pg_backend_pid(),
    current_setting('server_version'),
    current_setting('server_version_num')::int,
    current_setting('max_connections')::int,
    current_setting('superuser_reserved_connections')::int,
    coalesce(current_setting('reserved_connections', true), '0')::int,
    current_user::text,
    current_setting('is_superuser') = 'on',
    current_database()::text,
    pg_has_role('pg_read_all_stats', 'USAGE'),
    (SELECT json_object_agg(datname, datconnlimit) FROM pg_database
      WHERE datconnlimit >= 0 AND datallowconn)::text,
    (SELECT json_object_agg(rolname, rolconnlimit) FROM pg_roles
      WHERE rolconnlimit >= 0 AND rolcanlogin)::text,
    (SELECT json_object_agg(oid, datname) FROM pg_database)::text,
    (SELECT json_object_agg(oid, json_build_array(rolname, rolsuper)) FROM pg_roles)::text
FROM pg_stat_clear_snapshot()
"""

# pg_stat_get_activity(NULL) is what the pg_stat_activity view wraps. Reading it directly
# and naming databases and roles on the client was measured about 1.6x faster at 1,000
# rows than the view's joins.
# Only client backends hold max_connections slots. A row the role may not see has a NULL
# backend_type: it is still a client slot when it has both a database and a user (background
# processes have neither), so it is kept and marked hidden rather than silently dropped.
# pg_blocking_pids() takes the lock manager's locks: call it only for backends that wait.
# Ages are float8 seconds by the server's clock: no per-row timestamp decoding.
ACTIVITY_SQL = """
SELECT
    s.pid,
    s.datid::int8,
    s.usesysid::int8,
    coalesce(s.application_name, ''),
    CASE WHEN s.backend_type IS NULL THEN 'unknown'
         ELSE coalesce(host(s.client_addr), 'local') END,
    coalesce(s.state, 'unknown'),
    s.wait_event_type,
    s.wait_event,
    CASE WHEN s.wait_event_type = 'Lock' THEN pg_blocking_pids(s.pid) ELSE '{}' END,
    CASE WHEN s.backend_type IS NOT NULL THEN left(s.query, %(query_limit)s) END,
    s.backend_type IS NOT NULL,
    date_part('epoch', statement_timestamp() - s.backend_start),
    date_part('epoch', statement_timestamp() - s.xact_start),
    date_part('epoch', statement_timestamp() - s.query_start),
    date_part('epoch', statement_timestamp() - s.state_change)
FROM pg_stat_get_activity(NULL) s
WHERE s.backend_type = 'client backend'
   OR (s.backend_type IS NULL AND s.datid IS NOT NULL AND s.usesysid IS NOT NULL)
"""

# The cheap count read by connection_monitor on each side of a block: one row, no
# per-connection data. pg_stat_get_activity(NULL) is what the pg_stat_activity view reads,
# without the view's joins to pg_database and pg_authid (measured here: planning 0.03 ms
# instead of 0.2 ms). Backend status is read once per transaction and then cached, so
# inside an atomic block a second read would repeat the first: pg_stat_clear_snapshot() in
# FROM runs before the InitPlan that counts, which then reads fresh data. Client rows are
# counted as in ACTIVITY_SQL (hidden rows of other roles included).
CLIENT_COUNT_SQL = """
SELECT
    (SELECT count(*) FROM pg_stat_get_activity(NULL) s
      WHERE (s.backend_type = 'client backend'
             OR (s.backend_type IS NULL AND s.datid IS NOT NULL AND s.usesysid IS NOT NULL))
        AND s.pid <> pg_backend_pid()),
    current_setting('max_connections')::int,
    current_setting('superuser_reserved_connections')::int,
    coalesce(current_setting('reserved_connections', true), '0')::int
FROM pg_stat_clear_snapshot()
"""


def time_limit_settings(seconds: float) -> dict[str, int]:
    """PostgreSQL settings (milliseconds) that end any statement after ``seconds``.

    ``lock_timeout`` fires a little earlier than ``statement_timeout``, so that a wait for
    a lock (the usual cause) is named as such in the error.
    """
    ms = max(2, round(seconds * 1000))
    return {"statement_timeout": ms, "lock_timeout": max(1, ms * 9 // 10)}


class PostgreSQLBackend(ConnectionBackend):
    """Connection snapshots of a PostgreSQL server (tested on 15 and 18)."""

    vendor = "postgresql"
    capabilities = Capabilities(
        display_name="PostgreSQL",
        can_terminate=True,
        can_terminate_atomically=True,
        can_cancel=True,
        has_reserved_slots=True,
        reports_lock_waits=True,
        reports_visibility=True,
        counts_refused_connections=False,
        full_visibility_grant="pg_read_all_stats (or pg_monitor)",
    )

    def snapshot(self) -> Snapshot:
        """Read every client backend and the server's limits in one round trip."""
        params = {"query_limit": QUERY_TEXT_LIMIT}
        with self._raw_connection() as raw:
            limits_cursor = raw.cursor()
            rows_cursor = raw.cursor()
            if psycopg.Pipeline.is_supported():
                # An outage mid-pipeline is classified and reported once: psycopg's own
                # warning about the pipeline's failing exit would only repeat it.
                with quiet_pipeline_exit() as quiet, raw.pipeline() as pipeline:
                    quiet(pipeline)
                    limits_cursor.execute(LIMITS_SQL)
                    rows_cursor.execute(ACTIVITY_SQL, params)
            else:  # libpq < 14: two round trips, same result
                limits_cursor.execute(LIMITS_SQL)
                rows_cursor.execute(ACTIVITY_SQL, params)
            first = limits_cursor.fetchone()
            rows = rows_cursor.fetchall()
        assert first is not None  # a SELECT without FROM always returns its row
        return self._build(first, rows)

    @contextmanager
    def _raw_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The psycopg connection under Django's wrapper, errors classified.

        Django's cursor() connects (or takes a pooled connection) and checks thread sharing;
        the statements then go straight to psycopg so they can share one pipeline.
        """
        try:
            with self.connection.cursor():
                yield self.connection.connection
        except ImproperlyConfigured as exc:  # missing NAME...
            raise setup_error(exc, self.alias) from None
        except (DatabaseError, InterfaceError, psycopg.Error) as exc:
            raise classify_error(exc, self.alias) from exc

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A Django cursor (counted by execute wrappers), errors classified."""
        try:
            with self.connection.cursor() as cursor:
                yield cursor
        except ImproperlyConfigured as exc:
            raise setup_error(exc, self.alias) from None
        except (DatabaseError, InterfaceError) as exc:
            raise classify_error(exc, self.alias) from exc

    def _build(self, first: Sequence[Any], rows: Sequence[Sequence[Any]]) -> Snapshot:
        (taken_at, own_pid, version, version_num, max_conn, su_reserved, reserved, reader,
         reader_is_superuser, database, reader_sees_all, db_limits, role_limits, db_names,
         role_names) = first  # fmt: skip
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
            current_database=database,
        )
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=taken_at,
            limits=limits,
            connections=_connections(rows, db_names, role_names),
            own_pid=own_pid,
            visibility="full" if reader_sees_all else "restricted",
            visibility_grant=self.capabilities.full_visibility_grant,
        )

    @classmethod
    def time_limited_options(cls, options: dict[str, Any], seconds: float) -> dict[str, Any]:
        """``options`` with ``-c statement_timeout/lock_timeout`` appended to libpq's
        ``options`` (never replacing what is there)."""
        bound = " ".join(f"-c {k}={v}" for k, v in time_limit_settings(seconds).items())
        return {**options, "options": f"{options.get('options') or ''} {bound}".strip()}

    @classmethod
    def limit_transaction(cls, cursor: Any, seconds: float) -> None:
        """``statement_timeout`` and ``lock_timeout`` for the open transaction only."""
        for name, ms in time_limit_settings(seconds).items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, str(ms)])

    def count_client_connections(self) -> ClientCount:
        """Count client backends (the reading one excluded) and read the slot limits in one
        short statement."""
        with self._cursor() as cursor:
            cursor.execute(CLIENT_COUNT_SQL)
            count, max_connections, su_reserved, reserved = cursor.fetchone()
        return ClientCount(
            client_connections=count,
            max_connections=max_connections,
            usable_connections=max(0, max_connections - su_reserved - reserved),
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
                state_change=row[16],
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
        """One statement: re-check every candidate and signal those that still match
        (pg_cancel_backend instead of pg_terminate_backend when ``criteria.signal`` is
        ``cancel``)."""
        if not candidates:
            return {}
        params = _criteria_params(criteria)
        params["pids"] = [c.pid for c in candidates]
        params["starts"] = [c.backend_start for c in candidates]
        sql = CANCEL_SQL if criteria.signal == "cancel" else TERMINATE_SQL
        with self._cursor() as cursor:
            self._fresh_activity(cursor)
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return {
            pid: ServerAnswer(pid=pid, outcome=outcome, state=state, state_seconds=seconds)
            for pid, outcome, state, seconds in rows
        }

    def still_running(
        self, candidates: Sequence[Candidate], timeout: float, *, queries: bool = False
    ) -> set[int]:
        """Poll pg_stat_activity until the candidates have left it (with ``queries``: left
        the active state they were selected in) or ``timeout`` passes."""
        if not candidates:
            return set()
        params = {
            "pids": [c.pid for c in candidates],
            "starts": [c.backend_start for c in candidates],
            "changes": [c.state_change for c in candidates],
        }
        sql = QUERY_STILL_RUNNING_SQL if queries else STILL_RUNNING_SQL
        deadline = time.monotonic() + timeout
        pause = 0.005
        with self._cursor() as cursor:
            while True:
                self._fresh_activity(cursor)
                cursor.execute(sql, params)
                running = {pid for (pid,) in cursor.fetchall()}
                if not running or time.monotonic() >= deadline:
                    return running
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.02)

    def _fresh_activity(self, cursor: Any) -> None:
        """pg_stat_activity is read once per transaction: inside atomic(), drop that copy."""
        if self.connection.in_atomic_block:
            cursor.execute("SELECT pg_stat_clear_snapshot()")


def _connections(
    rows: Sequence[Sequence[Any]], db_names_json: str | None, role_names_json: str | None
) -> tuple[Connection, ...]:
    """Build Connection tuples column-wise, so names are looked up by C-level map/zip."""
    if not rows:
        return ()
    databases = {int(oid): name for oid, name in json.loads(db_names_json or "{}").items()}
    roles = json.loads(role_names_json or "{}")
    users = {int(oid): name for oid, (name, _) in roles.items()}
    superusers = {int(oid) for oid, (_, is_super) in roles.items() if is_super}
    (pid, datid, usesysid, app, client, state, wait_type, wait, blocking, query, visible,
     backend_s, xact_s, query_s, state_s) = zip(*rows, strict=True)  # fmt: skip
    columns = zip(
        pid, map(databases.get, datid), map(users.get, usesysid), app, client, state,
        wait_type, wait, blocking, query, visible, map(superusers.__contains__, usesysid),
        backend_s, xact_s, query_s, state_s,
        strict=True,
    )  # fmt: skip
    return tuple(map(Connection._make, columns))


# Fragments of libpq / server messages, lower-cased. psycopg 3 gives sqlstate None for
# connection failures, so the text is all there is (wording varies by version).
_PATTERNS: tuple[tuple[str, ProblemKind, str], ...] = (
    ("too many clients", "full", "the server is full (max_connections reached)"),
    ("remaining connection slots are reserved", "reserved",
     "the server is full for ordinary roles: only reserved slots are left"),
    ("too many connections for role", "full", "the role's connection limit is reached"),
    ("too many connections for database", "full", "the database's connection limit is reached"),
    # Setup: the alias's configuration or the role's privileges (UNKNOWN, never CRITICAL).
    ("permission denied for database", "setup",
     "the role lacks the CONNECT privilege on the database"),
    ("is not permitted to log in", "setup", "the role may not log in (NOLOGIN)"),
    ("invalid command-line argument", "setup", "bad OPTIONS['options'] for the server"),
    ("unrecognized configuration parameter", "setup", "bad OPTIONS['options'] for the server"),
    ("invalid value for parameter", "setup", "bad OPTIONS['options'] for the server"),
    ("invalid sslmode value", "setup", "bad OPTIONS['sslmode']"),
    ("invalid connection option", "setup", "unknown connection option in OPTIONS"),
    ("invalid dsn", "setup", "invalid connection settings"),
    ("invalid integer value", "setup", "invalid connection settings"),
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
    ("canceling statement due to lock timeout", "other",
     "another session holds a lock the read needs (lock_timeout reached)"),
    ("canceling statement due to statement timeout", "other",
     "the read took longer than its statement_timeout (a lock or an overloaded server?)"),
)  # fmt: skip

_POOL_TIMEOUT_MESSAGE = (
    "the connection pool gave no connection in time (is the server up, with free slots?)"
)


def _pool_timeout_types() -> tuple[type[BaseException], ...]:
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # no pool installed: nothing can raise it
        return ()
    return (PoolTimeout,)


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """True when ``exc`` or an exception it was raised from is one of ``types``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and types:
        if isinstance(current, types):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """Turn a driver error met while connecting or reading into :class:`ServerUnavailable`.

    Errors that are not about reaching the server (a bug in SQL, say) are returned as they
    are, so they keep their traceback.
    """
    text = str(exc).strip()
    lowered = text.lower()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    # Django wraps psycopg_pool's PoolTimeout in its own OperationalError (as __cause__).
    if _caused_by(exc, _pool_timeout_types()):
        return ServerUnavailable(
            f"database {alias!r}: {_POOL_TIMEOUT_MESSAGE} ({first_line})",
            kind="timeout",
            alias=alias,
            detail=first_line,
        )
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
    AND (%(only_pids)s::int[] IS NULL OR s.pid = ANY(%(only_pids)s::int[]))
    AND (%(only_starts)s::timestamptz[] IS NULL
         OR (s.pid, s.backend_start) IN (
             SELECT * FROM unnest(%(only_pids)s::int[], %(only_starts)s::timestamptz[])))
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
           coalesce(r.rolsuper, false), coalesce({allowed}, false), s.state_change
    FROM pg_stat_activity s LEFT JOIN pg_roles r ON r.oid = s.usesysid
    WHERE {match}
    ORDER BY s.state_change, s.pid
) c ON true
""".replace("{match}", _MATCH).replace("{allowed}", _ALLOWED)

# The one signalling statement ({signal}: pg_terminate_backend, or pg_cancel_backend for
# cancel). CASE evaluates its branches in order, so the signal is sent only to a backend that
# is still there (same pid AND same backend_start: a reused pid is another backend), still
# matches, and may be signalled.
_SIGNAL_SQL = """
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
           WHEN {signal}(pid) THEN 'signalled'
           ELSE 'already_gone'
       END,
       state,
       state_seconds
FROM cur
""".replace("{match}", "(" + _MATCH + ")").replace("{allowed}", _ALLOWED)

TERMINATE_SQL, CANCEL_SQL = (
    _SIGNAL_SQL.replace("{signal}", "pg_terminate_backend"),
    _SIGNAL_SQL.replace("{signal}", "pg_cancel_backend"),
)

STILL_RUNNING_SQL = """
SELECT s.pid
FROM pg_stat_activity s
JOIN unnest(%(pids)s::int[], %(starts)s::timestamptz[]) AS w(pid, backend_start)
  ON s.pid = w.pid AND s.backend_start = w.backend_start
"""

# A cancelled query is gone when its backend left the active state it was selected in
# (same backend, still active since the same moment: the same query still runs).
QUERY_STILL_RUNNING_SQL = """
SELECT s.pid
FROM pg_stat_activity s
JOIN unnest(%(pids)s::int[], %(starts)s::timestamptz[], %(changes)s::timestamptz[])
  AS w(pid, backend_start, state_change)
  ON s.pid = w.pid AND s.backend_start = w.backend_start
WHERE s.state = 'active' AND s.state_change = w.state_change
"""


def _criteria_params(criteria: Criteria) -> dict[str, Any]:
    return {
        "exclude_pids": list(criteria.exclude_pids),
        "only_pids": list(criteria.only_pids) if criteria.only_pids is not None else None,
        "only_starts": (
            list(criteria.only_backend_starts) if criteria.only_backend_starts is not None else None
        ),
        "states": list(criteria.states) if criteria.states is not None else None,
        "older_than": criteria.older_than,
        "application": criteria.application_name,
        "user": criteria.user,
        "database": criteria.database_name,
        "this_database": criteria.current_database_only,
        "this_user": criteria.current_user_only,
        "include_superusers": criteria.include_superusers,
    }
