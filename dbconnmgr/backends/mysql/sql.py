"""MariaDB / MySQL statements: the snapshot's round trip, the cheap count and the
compound statement that re-checks and kills. Their rows become the common model in
:mod:`.rows`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbconnmgr.core.termination import Candidate, Criteria

# One snapshot sends these statements in one round trip (mysqlclient enables
# multi-statements). Plain rows, not one JSON document: subqueries over information_schema
# inside a JSON_OBJECT measured several times dearer than the same reads as statements.
SERVER_SQL = """
SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'), CONNECTION_ID(), VERSION(),
       @@GLOBAL.max_connections, IFNULL(@@GLOBAL.extra_max_connections, 0),
       @@SESSION.max_user_connections, @@GLOBAL.wait_timeout, CURRENT_USER(),
       IFNULL(DATABASE(), '')
"""
#: The accounts that may take the admin slot (and are protected from termination by
#: default). Without SELECT on the mysql schema the server shows the reader's own only.
GRANTS_SQL = """
SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')
"""
#: Every thread. SHOW FULL PROCESSLIST costs less than a read of
#: information_schema.PROCESSLIST, which fills a temporary table of every column first (a
#: plain aggregate over it costs more than this whole list: bench/bench_mysql.py), but its
#: Time is in whole seconds. Termination selects by the table's TIME_MS instead: its
#: --idle-for may be fractional and its re-check compares milliseconds. Same columns.
THREADS_SQL = "SHOW FULL PROCESSLIST"
PRECISE_THREADS_SQL = """
SELECT ID, USER, HOST, DB, COMMAND, TIME_MS * 1e-3, STATE, INFO
FROM information_schema.PROCESSLIST
"""
#: The status counters the processlist cannot give. MariaDB computes every variable a
#: global status read names: a WHERE clause makes it compute all of them, a LIKE pattern
#: only those it matches, and every further status statement measured dearer than the
#: first (bench/bench_mysql.py). So two patterns: Aborted_connects and
#: Max_used_connections (with their two ``_preauth`` / ``_time`` siblings), then
#: Connection_errors_max_connections. Threads_connected and Threads_running are counted
#: from the processlist when the reader sees every thread, and read
#: (RESTRICTED_STATUS_COUNTERS, one more round trip) when it does not.
STATUS_COUNTERS = (r"%ed\_conne%", r"Connection\_errors\_max\_connections")
RESTRICTED_STATUS_COUNTERS = ("Threads_connected", "Threads_running")
STATUS_SQL = "SHOW GLOBAL STATUS LIKE '{name}'"
#: Every InnoDB transaction, sent last: it needs the PROCESS privilege (error 1227), and a
#: failed statement ends the round trip. A transaction shows here once it has read or
#: written an InnoDB table; a blocked one is in state 'LOCK WAIT'.
TRANSACTIONS_SQL = """
SELECT trx_mysql_thread_id, TIMESTAMPDIFF(MICROSECOND, trx_started, NOW(6)) * 1e-6,
       trx_state = 'LOCK WAIT'
FROM information_schema.INNODB_TRX
"""
#: Who blocks whom, read (one more round trip) only when a transaction waits for a lock.
BLOCKERS_SQL = """
SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
"""

CLIENT_COUNT_SQL = """
SELECT VARIABLE_VALUE, @@GLOBAL.max_connections
FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'
"""

#: The condition each thread must still meet when it is signalled. The processlist is
#: re-read for every RECHECK_CHUNK candidates, just before their KILLs, in the same
#: compound statement (docs/mysql.md, "The race window"): reading it costs about 1 ms at
#: 1,000 threads, so once per id would cost a second per 1,000. A reader without PROCESS
#: may not read INNODB_TRX: {trx} is then a join to nothing.
RECHECK_CHUNK = 4
_RECHECK = """
SET @dbconnmgr_match = (
    SELECT GROUP_CONCAT(p.ID) FROM information_schema.PROCESSLIST p
    LEFT JOIN {trx} t ON t.trx_mysql_thread_id = p.ID
    WHERE {conditions});
SET @dbconnmgr_checked = UNIX_TIMESTAMP(SYSDATE(6));
"""
_ONE_CANDIDATE = "(p.ID = %s AND p.USER = %s AND ({state}) AND p.TIME_MS >= %s)"
_KILL = (
    "IF FIND_IN_SET(%s, @dbconnmgr_match) THEN KILL CONNECTION %s; "
    "SET @dbconnmgr_killed = CONCAT(@dbconnmgr_killed, ',', %s, ':', @dbconnmgr_checked, "
    "':', UNIX_TIMESTAMP(SYSDATE(6))); END IF;"
)
#: The same for ``--action=cancel``: end the running statement, keep the session.
_KILL_QUERY = _KILL.replace("KILL CONNECTION", "KILL QUERY")
_TRX = "information_schema.INNODB_TRX"
_NO_TRX = "(SELECT NULL AS trx_mysql_thread_id, NULL AS trx_id)"

_STATE_SQL = {
    "idle": "p.COMMAND = 'Sleep' AND t.trx_id IS NULL",
    "idle in transaction": "p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL",
    "active": "p.COMMAND <> 'Sleep'",
}


def kill_statement(
    criteria: Criteria, eligible: Sequence[Candidate], *, reads_transactions: bool
) -> tuple[str, list[Any]]:
    """The compound statement (and its parameters) that re-reads the processlist for every
    :data:`RECHECK_CHUNK` candidates and kills each that still matches right after,
    recording the moments in ``@dbconnmgr_killed`` (``id:checked:done,...``)."""
    min_ms = round((criteria.older_than or 0.0) * 1000)
    trx = _TRX if reads_transactions else _NO_TRX
    kill = _KILL_QUERY if criteria.signal == "cancel" else _KILL
    parts = ["BEGIN NOT ATOMIC", "DECLARE CONTINUE HANDLER FOR 1094 BEGIN END;",
             "SET @dbconnmgr_killed = '';"]  # fmt: skip
    params: list[Any] = []
    for start in range(0, len(eligible), RECHECK_CHUNK):
        chunk = eligible[start : start + RECHECK_CHUNK]
        conditions = " OR ".join(
            _ONE_CANDIDATE.replace("{state}", _STATE_SQL.get(c.state, "FALSE")) for c in chunk
        )
        parts.append(_RECHECK.replace("{trx}", trx).replace("{conditions}", conditions))
        for c in chunk:
            params += [c.pid, c.user, min_ms]
        for c in chunk:
            parts.append(kill)
            params += [c.pid, c.pid, c.pid]
    parts.append("END")
    return "\n".join(parts), params


#: What ``@dbconnmgr_killed`` recorded, read right after :func:`kill_statement`.
KILLED_SQL = "SELECT @dbconnmgr_killed"


def states_now_sql(candidates: Sequence[Candidate], *, reads_transactions: bool) -> str:
    """ID, COMMAND, TIME_MS in seconds and "in a transaction" of ``candidates`` now."""
    trx = _TRX if reads_transactions else _NO_TRX
    ids = ",".join(str(int(c.pid)) for c in candidates)
    return (
        "SELECT p.ID, p.COMMAND, p.TIME_MS / 1000, t.trx_id IS NOT NULL "  # noqa: S608
        f"FROM information_schema.PROCESSLIST p LEFT JOIN {trx} t"
        f" ON t.trx_mysql_thread_id = p.ID WHERE p.ID IN ({ids})"
    )


def still_running_sql(candidates: Sequence[Candidate], *, queries: bool) -> str:
    """The ids of ``candidates`` still in the processlist (``queries``: running a statement)."""
    ids = ",".join(str(int(c.pid)) for c in candidates)
    running_only = " AND COMMAND <> 'Sleep'" if queries else ""
    return f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ({ids}){running_only}"  # noqa: S608
