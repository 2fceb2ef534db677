"""Amazon Redshift's statements: what dbconnmgr sends to a cluster (docs/redshift.md).

Every view is cited to its AWS page there and in tests/redshift/catalog.py. No statement
mixes a system table with a leader-node-only function (NOW(), CURRENT_TIMESTAMP, AGE()...:
page c_SQL_functions_leader_node_only).
"""

from __future__ import annotations

from collections.abc import Sequence

QUERY_TEXT_LIMIT = 500

# One snapshot: these statements in one round trip (psycopg runs several statements of one
# query string without parameters, one result set each). No leader-node-only function
# (NOW, CURRENT_TIMESTAMP, AGE...) is mixed with a system table: Redshift refuses that
# combination (page c_SQL_functions_leader_node_only). TIMEOFDAY() reads the clock with
# microseconds (GETDATE() has whole seconds), in a statement of its own.
SERVER_SQL = "SELECT TIMEOFDAY(), PG_BACKEND_PID(), VERSION(), CURRENT_USER, CURRENT_DATABASE()"
#: Every user's superuser flag, CONNECTION LIMIT and SYSLOG ACCESS (a regular user: their own).
USERS_SQL = (
    "SELECT TRIM(user_name), superuser, TRIM(connection_limit), TRIM(syslog_access) "
    "FROM svv_user_info"
)
DATABASES_SQL = "SELECT TRIM(datname), TRIM(datconnlimit) FROM pg_database_info"
#: Every session with what decides its state, in one statement (one scan of each view, no
#: GROUP BY over the sessions' rows): its running query (STV_RECENTS), its open transaction
#: and whether it waits for a table lock (SVV_TRANSACTIONS), and when its last query ended
#: (SYS_QUERY_HISTORY, whose ``session_id`` is the process id of the query's session).
#: Process ids are reused, so only a query of this session counts: the latest end per
#: process id is this session's when it is not before the session began (every query of an
#: earlier session with the same id ended before that session did, so before this one
#: began); otherwise the session has run none. So SYS_QUERY_HISTORY is aggregated once per
#: process id and joined as one row, instead of joining every history row of a session
#: and grouping the sessions' rows by all their columns (a sort of every session: about a
#: tenth of the statement's time at 500 sessions on the emulation, docs/redshift.md).
_SESSIONS_TEMPLATE = """
SELECT s.process, TRIM(s.user_name), TRIM(s.db_name), s.starttime,
       r.starttime, r.query, t.txn_start, t.waits,
       CASE WHEN h.last_end >= s.starttime THEN h.last_end END
FROM stv_sessions s
LEFT JOIN (SELECT pid, MIN(starttime) AS starttime, MAX(TRIM(query)) AS query
           FROM stv_recents WHERE status = 'Running' GROUP BY pid) r ON r.pid = s.process
LEFT JOIN (SELECT pid,
                  MIN(CASE WHEN lockable_object_type = 'transactionid'
                           AND lock_mode = 'ExclusiveLock' AND granted
                      THEN txn_start END) AS txn_start,
                  MAX(CASE WHEN granted THEN 0 ELSE 1 END) AS waits
           FROM svv_transactions GROUP BY pid) t ON t.pid = s.process
LEFT JOIN (SELECT session_id, MAX(end_time) AS last_end
           FROM sys_query_history WHERE end_time IS NOT NULL
           GROUP BY session_id) h ON h.session_id = s.process
{filter}
"""
SESSIONS_SQL = _SESSIONS_TEMPLATE.replace("{filter}", "")
SNAPSHOT_SQL = ";\n".join((SERVER_SQL, USERS_SQL, DATABASES_SQL, SESSIONS_SQL))
#: Who holds the table locks that sessions wait for: read (one more round trip) only when
#: a session waits.
LOCKS_SQL = (
    "SELECT pid, relation, granted FROM svv_transactions WHERE lockable_object_type = 'relation'"
)
#: The WLM queues (user queues are service class 6 and up, 100 and up with automatic WLM;
#: 5 is the superuser queue) and the queries in them. The queues' views are superuser-only:
#: read, in one more round trip, by a superuser only.
WLM_SQL = ";\n".join(
    (
        "SELECT c.service_class, TRIM(c.name), c.num_query_tasks, s.num_queued_queries, "
        "s.num_executing_queries FROM stv_wlm_service_class_config c "
        "LEFT JOIN stv_wlm_service_class_state s ON s.service_class = c.service_class "
        "WHERE c.service_class > 4 ORDER BY c.service_class",
        "SELECT service_class, "
        "SUM(CASE WHEN TRIM(state) IN ('Queued', 'QueuedWaiting') THEN 1 ELSE 0 END), "
        "MAX(CASE WHEN TRIM(state) IN ('Queued', 'QueuedWaiting') THEN queue_time END), "
        "SUM(CASE WHEN TRIM(state) IN ('Running', 'Returning') THEN slot_count ELSE 0 END) "
        "FROM stv_wlm_query_state GROUP BY service_class",
    )
)
#: Retained sessions (SYS_SESSION_HISTORY, where AWS recommends reading them; it holds the
#: open ones too, ``status = 'active'``), from %s on (a bound parameter: the server's clock
#: minus the days asked; Redshift's date arithmetic is not PostgreSQL's).
SESSION_HISTORY_SQL = (
    "SELECT start_time, end_time, TRIM(status) FROM sys_session_history "
    "WHERE end_time IS NULL OR end_time >= %s OR TRIM(status) = 'active'"
)
#: Retained time of queries in the user queues (service class above 4, users above 1), as
#: ``wlm_apex_hourly.sql`` reads STL_WLM_QUERY; and the queues' slots. Superuser-only.
WLM_HISTORY_SQL = (
    "SELECT service_class, service_class_start_time, service_class_end_time, slot_count "
    "FROM stl_wlm_query WHERE service_class > 4 AND userid > 1 "
    "AND service_class_end_time >= %s"
)
WLM_SLOTS_SQL = (
    "SELECT service_class, num_query_tasks FROM stv_wlm_service_class_config "
    "WHERE service_class > 4"
)
#: Sessions counted (the reader's own among them: the caller subtracts it).
CLIENT_COUNT_SQL = "SELECT COUNT(*) FROM stv_sessions"


def recheck_sql(pids: Sequence[int]) -> str:
    """The snapshot's statements for ``pids`` only: the re-check before a signal."""
    ids = ", ".join(str(int(pid)) for pid in pids)
    sessions = _SESSIONS_TEMPLATE.replace("{filter}", f"WHERE s.process IN ({ids})")
    return ";\n".join((SERVER_SQL, USERS_SQL, DATABASES_SQL, sessions))
