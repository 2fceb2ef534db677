"""PostgreSQL's statements: the snapshot's pipeline, the cheap count, the termination
statements and their parameters. Each read names its columns in :mod:`.rows`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbconnmgr.core.termination import Candidate, Criteria

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


def criteria_params(criteria: Criteria) -> dict[str, Any]:
    """The bound parameters of :data:`_MATCH` for ``criteria`` (None: any)."""
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


def running_params(candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The parameters of :data:`STILL_RUNNING_SQL` and :data:`QUERY_STILL_RUNNING_SQL`."""
    return {
        "pids": [c.pid for c in candidates],
        "starts": [c.backend_start for c in candidates],
        "changes": [c.state_change for c in candidates],
    }
