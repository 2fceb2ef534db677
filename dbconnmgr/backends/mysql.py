"""MariaDB / MySQL backend: information_schema.PROCESSLIST, INNODB_TRX and GLOBAL_STATUS.

Tested on MariaDB 10.11 with mysqlclient (Django's recommended driver). The common model's
states come from the processlist (docs/mysql.md has the table):

- ``idle``: ``COMMAND = 'Sleep'`` and no InnoDB transaction;
- ``idle in transaction``: ``COMMAND = 'Sleep'`` with a row in ``INNODB_TRX``;
- ``active``: any other command (Query, Execute, Connect, Killed...).

Slots: MySQL admits ``max_connections`` ordinary sessions plus one more for an account
with SUPER / CONNECTION ADMIN, so ``max_connections`` here is ``@@max_connections + 1`` of
which 1 is reserved (``usable_connections`` is the setting itself). An account's
``MAX_USER_CONNECTIONS`` (or the global ``max_user_connections``) is the role limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend, setup_error
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.snapshot import ClientCount, Connection, ServerLimits, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import (
    ActionNotPossible,
    InsufficientPrivilege,
    ProblemKind,
    ServerUnavailable,
)

#: Characters of query text kept per connection.
QUERY_TEXT_LIMIT = 500

#: The server status counters LIMITS_SQL reads with every snapshot (information_schema names).
STATUS_COUNTERS = (
    "THREADS_CONNECTED",
    "THREADS_RUNNING",
    "MAX_USED_CONNECTIONS",
    "ABORTED_CONNECTS",
    "CONNECTION_ERRORS_MAX_CONNECTIONS",
)

LIMITS_SQL = """
SELECT JSON_OBJECT(
    'taken_at', DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'),
    'own_id', CONNECTION_ID(),
    'version', VERSION(),
    'max_connections', @@GLOBAL.max_connections,
    'extra_max_connections', IFNULL(@@GLOBAL.extra_max_connections, 0),
    'max_user_connections', @@SESSION.max_user_connections,
    'wait_timeout', @@GLOBAL.wait_timeout,
    'user', SUBSTRING_INDEX(CURRENT_USER(), '@', 1),
    'database', IFNULL(DATABASE(), ''),
    'privileges', (SELECT JSON_ARRAYAGG(PRIVILEGE_TYPE) FROM information_schema.USER_PRIVILEGES
                   WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                                         SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')),
    'admins', (SELECT JSON_ARRAYAGG(DISTINCT GRANTEE) FROM information_schema.USER_PRIVILEGES
               WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')),
    'status', (SELECT JSON_OBJECTAGG(VARIABLE_NAME, VARIABLE_VALUE)
               FROM information_schema.GLOBAL_STATUS
               WHERE VARIABLE_NAME IN ('THREADS_CONNECTED', 'THREADS_RUNNING',
                                       'MAX_USED_CONNECTIONS', 'ABORTED_CONNECTS',
                                       'CONNECTION_ERRORS_MAX_CONNECTIONS'))
)
"""

# Second statement, sent with the first (one round trip): every client thread. Background
# threads (COMMAND 'Daemon') hold no slot. An InnoDB transaction shows in INNODB_TRX once
# it has read or written an InnoDB table; a blocked one is in state 'LOCK WAIT'.
ACTIVITY_SQL = """
SELECT p.ID, p.DB, p.USER, p.HOST,
       CASE WHEN p.COMMAND <> 'Sleep' THEN 'active'
            WHEN t.trx_id IS NULL THEN 'idle'
            ELSE 'idle in transaction' END,
       CASE WHEN t.trx_state = 'LOCK WAIT' THEN 'Lock' END,
       CASE WHEN t.trx_state = 'LOCK WAIT' THEN
           (SELECT GROUP_CONCAT(b.trx_mysql_thread_id)
            FROM information_schema.INNODB_LOCK_WAITS w
            JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
            WHERE w.requesting_trx_id = t.trx_id)
       END,
       CASE WHEN p.COMMAND <> 'Sleep' THEN LEFT(p.INFO, %(query_limit)s) END,
       TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) * 1e-6,
       CASE WHEN p.COMMAND <> 'Sleep' THEN p.TIME_MS * 1e-3 END,
       p.TIME_MS * 1e-3
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.COMMAND <> 'Daemon'
"""

# Without the PROCESS privilege INNODB_TRX may not be read at all (error 1227) and the
# processlist shows the reader's own threads only: the same columns, no transactions.
RESTRICTED_ACTIVITY_SQL = """
SELECT p.ID, p.DB, p.USER, p.HOST,
       CASE WHEN p.COMMAND <> 'Sleep' THEN 'active' ELSE 'idle' END,
       NULL, NULL,
       CASE WHEN p.COMMAND <> 'Sleep' THEN LEFT(p.INFO, %(query_limit)s) END,
       NULL,
       CASE WHEN p.COMMAND <> 'Sleep' THEN p.TIME_MS * 1e-3 END,
       p.TIME_MS * 1e-3
FROM information_schema.PROCESSLIST p
WHERE p.COMMAND <> 'Daemon'
"""

#: MySQL's ER_SPECIFIC_ACCESS_DENIED_ERROR ("you need the PROCESS privilege").
_NEEDS_PRIVILEGE = 1227

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


def _state(command: str, in_transaction: bool) -> str:
    if command == "Sleep":
        return "idle in transaction" if in_transaction else "idle"
    return "active"


def _client(host: str | None) -> str:
    """``ip:port`` -> ``ip``; ``localhost`` (a Unix socket) -> ``local``."""
    if not host:
        return "unknown"
    if host == "localhost":
        return "local"
    address = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return address.strip("[]")


def _grantee_user(grantee: str) -> str:
    """``'user'@'host'`` -> ``user``."""
    return grantee.split("@", 1)[0].strip("'")


class MySQLBackend(ConnectionBackend):
    """Connection snapshots of a MariaDB (10.11, tested) or MySQL server."""

    vendor = "mysql"
    capabilities = Capabilities(
        display_name="MariaDB/MySQL",
        can_terminate=True,
        can_terminate_atomically=False,
        can_cancel=True,
        has_reserved_slots=True,
        reports_lock_waits=True,
        reports_visibility=True,
        counts_refused_connections=True,
        reports_application_name=False,
        reports_session_start=False,
        full_visibility_grant="the PROCESS privilege",
    )

    def __init__(self, alias: str, connection: Any) -> None:
        super().__init__(alias, connection)
        #: For each thread id terminate() killed, the server's time (epoch seconds) of the
        #: processlist read that re-checked it and of the end of its KILL: the race window.
        self.signalled_at: dict[int, tuple[float, float]] = {}
        #: False once the server refused INNODB_TRX to this reader (no PROCESS privilege).
        self.reads_transactions = True

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """The driver's cursor under Django's wrapper (multi-statement), errors classified."""
        try:
            with self.connection.cursor() as cursor:
                yield cursor.cursor  # the MySQLdb cursor: nextset() for multi-statements
        except ImproperlyConfigured as exc:
            raise setup_error(exc, self.alias) from None
        except (DatabaseError, InterfaceError) as exc:
            raise classify_error(exc, self.alias) from exc
        except Exception as exc:  # MySQLdb's own errors, raised past Django's wrapper
            if type(exc).__module__.startswith("MySQLdb"):
                raise classify_error(exc, self.alias) from exc
            raise

    def _read(self) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        """The limits row and the thread rows, two statements sent in one round trip (two
        round trips for a reader without PROCESS, which may not read INNODB_TRX)."""
        limit = str(QUERY_TEXT_LIMIT)
        with self._cursor() as cursor:
            cursor.execute(LIMITS_SQL + ";" + ACTIVITY_SQL.replace("%(query_limit)s", limit))
            (raw,) = cursor.fetchone()
            try:
                cursor.nextset()
            except Exception as exc:
                if not (exc.args and exc.args[0] == _NEEDS_PRIVILEGE):
                    raise
                self.reads_transactions = False
                cursor.execute(RESTRICTED_ACTIVITY_SQL.replace("%(query_limit)s", limit))
            rows = list(cursor.fetchall())
            while cursor.nextset():
                pass
        return json.loads(raw), rows

    def snapshot(self) -> Snapshot:
        """Read every client thread, the limits and the status counters in one round trip."""
        info, rows = self._read()
        privileges = set(info.get("privileges") or ())
        sees_all = "PROCESS" in privileges
        is_admin = bool(privileges & {"SUPER", "CONNECTION ADMIN"})
        admins = {_grantee_user(g) for g in info.get("admins") or ()}
        status = {k.upper(): int(v) for k, v in (info.get("status") or {}).items()}
        user = info["user"]
        role_limits = (
            {user: int(info["max_user_connections"])}
            if int(info["max_user_connections"] or 0) > 0
            else {}
        )
        limits = ServerLimits(
            version=info["version"],
            version_num=_version_num(info["version"]),
            max_connections=int(info["max_connections"]) + 1,
            superuser_reserved_connections=1,
            reserved_connections=0,
            role_limits=role_limits,
            current_user=user,
            is_superuser=is_admin,
            current_database=info["database"],
        )
        connections = _connections(rows, admins)
        # Without PROCESS the processlist shows only the reader's own threads: the others
        # are counted (Threads_connected) and kept as hidden rows, never silently dropped.
        hidden = max(0, status.get("THREADS_CONNECTED", 0) - len(connections))
        if not sees_all:
            connections += [
                Connection(
                    pid=-(n + 1),
                    database=None,
                    user=None,
                    application_name="",
                    client="unknown",
                    state="unknown",
                    wait_event_type=None,
                    wait_event=None,
                    blocking_pids=(),
                    query=None,
                    visible=False,
                    is_superuser=False,
                )
                for n in range(hidden)
            ]
        extras = {
            "max_connections_setting": int(info["max_connections"]),
            "extra_max_connections": int(info["extra_max_connections"]),
            "max_user_connections": int(info["max_user_connections"] or 0),
            "wait_timeout": int(info["wait_timeout"]),
            "threads_connected": status.get("THREADS_CONNECTED"),
            "threads_running": status.get("THREADS_RUNNING"),
            "max_used_connections": status.get("MAX_USED_CONNECTIONS"),
            "aborted_connects": status.get("ABORTED_CONNECTS"),
            "connection_errors_max_connections": status.get("CONNECTION_ERRORS_MAX_CONNECTIONS"),
        }
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=datetime.fromisoformat(info["taken_at"]).replace(tzinfo=UTC),
            limits=limits,
            connections=tuple(connections),
            own_pid=int(info["own_id"]),
            visibility="full" if sees_all else "restricted",
            extras=extras,
            visibility_grant=self.capabilities.full_visibility_grant,
        )

    def count_client_connections(self) -> ClientCount:
        """``Threads_connected`` and ``max_connections`` in one short statement."""
        with self._cursor() as cursor:
            cursor.execute(CLIENT_COUNT_SQL)
            count, max_connections = cursor.fetchone()
        return ClientCount(
            client_connections=int(count),
            max_connections=int(max_connections) + 1,
            usable_connections=int(max_connections),
        )

    # -- termination ---------------------------------------------------------------------
    def select_for_termination(self, criteria: Criteria) -> Selection:
        """The client threads matching ``criteria``, longest in their state first."""
        if criteria.application_name is not None:
            raise ActionNotPossible(
                f"database {self.alias!r}: {self.capabilities.display_name} sessions carry no "
                "application name: select them by --user or --database instead"
            )
        snapshot = self.snapshot()
        reader = snapshot.limits.current_user
        if criteria.states is not None and not self.reads_transactions:
            raise InsufficientPrivilege(
                f"database {self.alias!r}: account {reader} lacks the PROCESS privilege, "
                "without which MariaDB/MySQL hide whether a session is inside a transaction: "
                "an idle session cannot be told from one idle in a transaction; grant PROCESS "
                "(GRANT PROCESS ON *.* TO ...)"
            )
        candidates = [
            Candidate(
                pid=c.pid,
                backend_start=snapshot.taken_at,  # thread ids are not reused: id suffices
                user=c.user,
                application_name="",
                database=c.database,
                client_addr=c.client,
                state=c.state,
                state_seconds=c.state_seconds,
                is_superuser=c.is_superuser,
                can_signal=snapshot.limits.is_superuser or c.user == reader,
            )
            for c in snapshot.others()
            if c.visible and _matches(c, criteria, snapshot)
        ]
        candidates.sort(key=lambda c: (-(c.state_seconds or 0.0), c.pid))
        return Selection(
            taken_at=snapshot.taken_at,
            own_pid=snapshot.own_pid,
            db_role=reader,
            is_superuser=snapshot.limits.is_superuser,
            database=snapshot.database,
            candidates=tuple(candidates),
            hidden=snapshot.hidden_connections,
        )

    def terminate(
        self, criteria: Criteria, candidates: Sequence[Candidate]
    ) -> dict[int, ServerAnswer]:
        """``KILL CONNECTION`` (``KILL QUERY`` when ``criteria.signal`` is ``cancel``) each
        candidate that, re-checked just before, still matches.

        MySQL cannot make KILL conditional: one compound statement re-reads the
        processlist for every :data:`RECHECK_CHUNK` candidates (same id, same user, same
        state, in it at least ``older_than`` s) and kills those that still match right
        after; the window left is between that read and each KILL.
        """
        answers: dict[int, ServerAnswer] = {}
        eligible: list[Candidate] = []
        for c in candidates:
            if c.is_superuser and not criteria.include_superusers:
                answers[c.pid] = ServerAnswer(c.pid, "protected", c.state, c.state_seconds)
            elif not c.can_signal:
                answers[c.pid] = ServerAnswer(c.pid, "permission_denied", c.state, c.state_seconds)
            else:
                eligible.append(c)
        if not eligible:
            return answers
        min_ms = round((criteria.older_than or 0.0) * 1000)
        trx = _TRX if self.reads_transactions else _NO_TRX
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
            kill = _KILL_QUERY if criteria.signal == "cancel" else _KILL
            for c in chunk:
                parts.append(kill)
                params += [c.pid, c.pid, c.pid]
        parts.append("END")
        with self._cursor() as cursor:
            cursor.execute("\n".join(parts), params)
            while cursor.nextset():
                pass
            cursor.execute("SELECT @dbconnmgr_killed")
            (killed_text,) = cursor.fetchone()
            killed = {
                int(pid): (float(checked), float(done))
                for pid, checked, done in (
                    x.split(":") for x in (killed_text or "").split(",") if x
                )
            }
            self.signalled_at.update(killed)
            ids = ",".join(str(int(c.pid)) for c in eligible)
            cursor.execute(
                "SELECT p.ID, p.COMMAND, p.TIME_MS / 1000, t.trx_id IS NOT NULL "  # noqa: S608
                f"FROM information_schema.PROCESSLIST p LEFT JOIN {trx} t"
                f" ON t.trx_mysql_thread_id = p.ID WHERE p.ID IN ({ids})"
            )
            now = {int(r[0]): (_state(r[1], bool(r[3])), float(r[2])) for r in cursor.fetchall()}
        for c in eligible:
            state, seconds = now.get(c.pid, (None, None))
            if c.pid in killed:
                outcome = "signalled"
            elif c.pid not in now:
                outcome = "already_gone"
            else:
                outcome = "no_longer_matching"
            answers[c.pid] = ServerAnswer(c.pid, outcome, state, seconds)
        return answers

    @classmethod
    def time_limited_options(cls, options: dict[str, Any], seconds: float) -> dict[str, Any]:
        """See :func:`time_limit_options`."""
        return time_limit_options(options, seconds)

    def still_running(
        self, candidates: Sequence[Candidate], timeout: float, *, queries: bool = False
    ) -> set[int]:
        """Poll the processlist until the candidates have left it (with ``queries``: until
        they no longer run a statement) or ``timeout`` passes."""
        if not candidates:
            return set()
        ids = ",".join(str(int(c.pid)) for c in candidates)
        running_only = " AND COMMAND <> 'Sleep'" if queries else ""
        sql = f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ({ids}){running_only}"  # noqa: S608
        deadline = time.monotonic() + timeout
        pause = 0.005
        with self._cursor() as cursor:
            while True:
                cursor.execute(sql)
                running = {int(pid) for (pid,) in cursor.fetchall()}
                if not running or time.monotonic() >= deadline:
                    return running
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.02)

    def cancel(self, pid: int) -> None:
        """``KILL QUERY``: end the thread's running statement, keep its session."""
        with self._cursor() as cursor:
            cursor.execute("KILL QUERY %s", [int(pid)])


def _connections(rows: Sequence[Sequence[Any]], admins: set[str]) -> list[Connection]:
    """Build Connection tuples column-wise (C-level map/zip: cheap at 1,000 rows)."""
    if not rows:
        return []
    (pid, db, user, host, state, wait_type, blockers, query, trx_s, query_s,
     state_s) = zip(*rows, strict=True)  # fmt: skip
    n = len(rows)
    columns = zip(
        pid, db, user, repeat("", n), map(_client, host), state, wait_type,
        map(_wait_event, wait_type), map(_blockers, blockers), query, repeat(True, n),
        map(admins.__contains__, user), repeat(None, n), trx_s, query_s, state_s,
        strict=True,
    )  # fmt: skip
    return list(map(Connection._make, columns))


def _wait_event(wait_type: str | None) -> str | None:
    return "row lock" if wait_type else None


def _blockers(text: str | None) -> tuple[int, ...]:
    return tuple(int(b) for b in text.split(",")) if text else ()


def _matches(c: Connection, criteria: Criteria, snapshot: Snapshot) -> bool:
    limits = snapshot.limits
    return not (
        c.pid in criteria.exclude_pids
        or (criteria.states is not None and c.state not in criteria.states)
        or (criteria.older_than is not None and (c.state_seconds or 0.0) < criteria.older_than)
        or (criteria.user is not None and c.user != criteria.user)
        or (criteria.database_name is not None and c.database != criteria.database_name)
        or (criteria.current_database_only and c.database != limits.current_database)
        or (criteria.current_user_only and c.user != limits.current_user)
        or (criteria.only_pids is not None and c.pid not in criteria.only_pids)
    )


def _version_num(version: str) -> int:
    """``10.11.6-MariaDB-...`` -> 101106 (like PostgreSQL's server_version_num)."""
    numbers = []
    for part in version.split("-", 1)[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0] * 10000 + numbers[1] * 100 + numbers[2]


# Client and server error numbers (MySQL's errmsg), as mysqlclient gives them in args[0].
_CODES: dict[int, tuple[ProblemKind, str]] = {
    1040: ("full", "the server is full (max_connections reached: error 1040)"),
    1203: ("full", "the account's connection limit is reached (max_user_connections)"),
    1226: ("full", "the account's connection limit is reached (MAX_USER_CONNECTIONS)"),
    1045: ("auth", "authentication failed (wrong user or password)"),
    1698: ("auth", "authentication failed (access denied for this user)"),
    1044: ("setup", "the account may not use the database"),
    1049: ("auth", "the database does not exist"),
    1130: ("auth", "this host may not connect to the server"),
    2002: ("unreachable", "cannot connect: no server on that socket or port"),
    2003: ("unreachable", "cannot connect: connection refused"),
    2005: ("unreachable", "cannot connect: unknown host name"),
    2006: ("unreachable", "the server has gone away"),
    2013: ("unreachable", "the connection to the server was lost"),
    1969: ("other", "the read took longer than its max_statement_time"),
    1205: ("other", "another session holds a lock the read needs (lock wait timeout)"),
}


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """Turn a driver error met while connecting or reading into :class:`ServerUnavailable`.

    Errors that are not about reaching the server are returned as they are.
    """
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else None
    text = str(args[1]) if len(args) > 1 else str(exc)
    first_line = (text.strip().splitlines() or [type(exc).__name__])[0]
    if code is not None and code in _CODES:
        kind, message = _CODES[code]
        if code in (2002, 2003) and "timed out" in text.lower():
            kind, message = "timeout", "timed out connecting to the server"
        return ServerUnavailable(
            f"database {alias!r}: {message} ({first_line})",
            kind=kind,
            alias=alias,
            detail=first_line,
        )
    return exc


def time_limit_options(options: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``options`` with an ``init_command`` that ends any statement after ``seconds``
    (MariaDB's ``max_statement_time``) and a lock wait a little earlier."""
    lock = max(1, int(seconds * 0.9))
    bound = (
        f"SET SESSION max_statement_time={seconds:g}, lock_wait_timeout={lock}, "
        f"innodb_lock_wait_timeout={lock}"
    )
    existing = options.get("init_command")
    return {**options, "init_command": f"{existing}; {bound}" if existing else bound}


__all__ = ["MySQLBackend", "classify_error", "time_limit_options"]
