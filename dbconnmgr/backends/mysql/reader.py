"""MariaDB / MySQL backend: SHOW FULL PROCESSLIST, INNODB_TRX and SHOW GLOBAL STATUS.

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

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend, gc_paused, setup_error
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


class _Read(NamedTuple):
    """What one snapshot read: the rows of each statement (see the SQL above)."""

    server: tuple[Any, ...]
    grants: tuple[tuple[str, str], ...]
    threads: _Threads
    status: dict[str, int]
    #: (thread id, age in seconds, waits for a lock); None when the reader may not read them.
    transactions: tuple[tuple[Any, ...], ...] | None
    #: For each thread waiting for a lock, the threads holding it.
    blockers: dict[int, tuple[int, ...]]


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
        role_limit_name="MAX_USER_CONNECTIONS of account",
        states=("active", "idle", "idle in transaction", "unknown"),
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

    def _read(self, *, precise: bool = False) -> _Read:
        """Every statement of a snapshot in one round trip (one more when a transaction
        waits for a lock, or when the reader lacks PROCESS: see the SQL above).

        The processlist goes first: the server runs the later statements while this
        process turns its rows into columns (the other order measured slower).
        """
        threads_sql = PRECISE_THREADS_SQL if precise else THREADS_SQL
        status_sql = [STATUS_SQL.replace("{name}", name) for name in STATUS_COUNTERS]
        statements = [threads_sql, SERVER_SQL, GRANTS_SQL, *status_sql, TRANSACTIONS_SQL]
        status: dict[str, int] = {}
        blockers: dict[int, tuple[int, ...]] = {}
        with self._cursor() as cursor:
            cursor.execute(";".join(statements))
            threads = _thread_columns(cursor.fetchall())
            cursor.nextset()
            server = cursor.fetchone()
            cursor.nextset()
            grants = cursor.fetchall()
            for _ in status_sql:
                cursor.nextset()
                status.update(_status_values(cursor.fetchall()))
            transactions: tuple[tuple[Any, ...], ...] | None
            try:
                cursor.nextset()
                transactions = cursor.fetchall()
            except Exception as exc:
                if not (getattr(exc, "args", None) and exc.args[0] == _NEEDS_PRIVILEGE):
                    raise
                self.reads_transactions, transactions = False, None
                cursor.execute(";".join(STATUS_SQL.replace("{name}", name)
                                        for name in RESTRICTED_STATUS_COUNTERS))  # fmt: skip
                while True:
                    status.update(_status_values(cursor.fetchall()))
                    if not cursor.nextset():
                        break
            if transactions and any(waits for _, _, waits in transactions):
                cursor.execute(BLOCKERS_SQL)
                for waiter, blocker in cursor.fetchall():
                    blockers[waiter] = (*blockers.get(waiter, ()), blocker)
        return _Read(server, grants, threads, status, transactions, blockers)

    def snapshot(self) -> Snapshot:
        """Read every client thread, the limits and the status counters in one round trip."""
        with gc_paused():  # the driver's rows are freed before the collector resumes
            return self._snapshot(precise=False)

    def _snapshot(self, *, precise: bool) -> Snapshot:
        read = self._read(precise=precise)
        (taken_at, own_id, version, max_connections, extra_max_connections,
         max_user_connections, wait_timeout, account, database) = read.server  # fmt: skip
        user, _, host = account.partition("@")
        own_grantee = f"'{user}'@'{host}'"
        # INNODB_TRX needs PROCESS, the privilege that shows every thread (granted directly
        # or through a role).
        sees_all = read.transactions is not None
        is_admin = any(grantee == own_grantee for grantee, _ in read.grants)
        admins = {_grantee_user(grantee) for grantee, _ in read.grants}
        status = read.status
        max_user_connections = int(max_user_connections or 0)
        limits = ServerLimits(
            version=version,
            version_num=_version_num(version),
            max_connections=int(max_connections) + 1,
            superuser_reserved_connections=1,
            reserved_connections=0,
            role_limits={user: max_user_connections} if max_user_connections > 0 else {},
            current_user=user,
            is_superuser=is_admin,
            current_database=database,
            superusers_bypass_limits=False,
        )
        connections = _connections(read.threads, read.transactions or (), read.blockers, admins)
        if sees_all:  # what Threads_connected and Threads_running count, from the same list
            status["THREADS_CONNECTED"] = len(read.threads.pid)
            status["THREADS_RUNNING"] = read.threads.state.count("active")
        else:
            # Without PROCESS the processlist shows only the reader's own threads: the
            # others are counted (Threads_connected) and kept as hidden rows, never dropped.
            hidden = max(0, status.get("THREADS_CONNECTED", 0) - len(connections))
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
            "max_connections_setting": int(max_connections),
            "extra_max_connections": int(extra_max_connections),
            "max_user_connections": max_user_connections,
            "wait_timeout": int(wait_timeout),
            "threads_connected": status.get("THREADS_CONNECTED"),
            "threads_running": status.get("THREADS_RUNNING"),
            "max_used_connections": status.get("MAX_USED_CONNECTIONS"),
            "aborted_connects": status.get("ABORTED_CONNECTS"),
            "connection_errors_max_connections": status.get("CONNECTION_ERRORS_MAX_CONNECTIONS"),
        }
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=datetime.fromisoformat(taken_at).replace(tzinfo=UTC),
            limits=limits,
            connections=tuple(connections),
            own_pid=int(own_id),
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
        snapshot = self._snapshot(precise=True)  # TIME_MS: --idle-for may be fractional
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


#: The common state of a thread outside any transaction, by its COMMAND.
_COMMAND_STATE = {"Sleep": "idle"}
_NONE_WHEN_SLEEPING: dict[str, Any] = {"Sleep": None}


class _Threads(NamedTuple):
    """The processlist's rows as columns, with what needs no other statement worked out.

    Built while the server still runs the snapshot's later statements (:meth:`_read`)."""

    pid: tuple[int, ...]
    user: tuple[str, ...]
    db: tuple[str | None, ...]
    client: list[str]
    #: ``idle`` or ``active``; ``idle in transaction`` is decided once INNODB_TRX is read.
    state: list[str]
    query: list[str | None]
    running: list[float | None]
    seconds: tuple[float, ...]


def _thread_columns(rows: Sequence[Sequence[Any]]) -> _Threads:
    """Columns of SHOW FULL PROCESSLIST's rows (Id, User, Host, db, Command, Time, State,
    Info), built column-wise with C-level map/zip: cheap at 1,000 rows."""
    columns = tuple(zip(*rows, strict=True))
    if columns and "Daemon" in columns[4]:  # background threads hold no slot
        columns = tuple(zip(*(row for row in rows if row[4] != "Daemon"), strict=True))
    if not columns:
        return _Threads((), (), (), [], [], [], [], ())
    pid, user, host, db, command, seconds, _, info = columns[:8]
    # Ages and query texts of running threads only: None for Sleep (C-level dict.get).
    queries = list(map(_NONE_WHEN_SLEEPING.get, command, info))
    if max(map(len, filter(None, queries)), default=0) > QUERY_TEXT_LIMIT:
        queries = [q[:QUERY_TEXT_LIMIT] if q else q for q in queries]
    return _Threads(
        pid=pid,
        user=user,
        db=db,
        client=_clients(host),
        state=list(map(_COMMAND_STATE.get, command, repeat("active", len(pid)))),
        query=queries,
        running=list(map(_NONE_WHEN_SLEEPING.get, command, seconds)),
        seconds=seconds,
    )


def _connections(
    threads: _Threads,
    transactions: Sequence[Sequence[Any]],
    blockers: dict[int, tuple[int, ...]],
    admins: set[str],
) -> list[Connection]:
    """The Connection tuples: ``threads`` with the InnoDB transactions (thread id, age,
    waits for a lock), the threads each waiting one waits for, and the admin accounts."""
    pid, states, n = threads.pid, threads.state, len(threads.pid)
    trx_seconds: dict[int, float] = {}
    waiting: dict[int, tuple[int, ...]] = {}
    if transactions:
        for thread_id, age, waits in transactions:
            trx_seconds[thread_id] = age
            if waits:
                waiting[thread_id] = blockers.get(thread_id, ())
        states = states.copy()  # ``threads`` stays as read
        for i, thread_id in enumerate(pid):
            if thread_id in trx_seconds and states[i] == "idle":
                states[i] = "idle in transaction"
    wait_type: Iterable[str | None] = repeat(None, n)
    wait_event: Iterable[str | None] = repeat(None, n)
    if waiting:
        wait_type = [("Lock" if p in waiting else None) for p in pid]
        wait_event = [("row lock" if p in waiting else None) for p in pid]
    connections = zip(
        pid, threads.db, threads.user, repeat("", n), threads.client, states, wait_type,
        wait_event, map(waiting.get, pid, repeat(())) if waiting else repeat((), n),
        threads.query, repeat(True, n), map(admins.__contains__, threads.user),
        repeat(None, n), map(trx_seconds.get, pid) if trx_seconds else repeat(None, n),
        threads.running, threads.seconds,
        strict=True,
    )  # fmt: skip
    return list(map(_new_connection, connections))


#: ``Connection._make`` without its Python-level length check (each row has every field).
_new_connection = partial(tuple.__new__, Connection)


def _clients(hosts: Sequence[str | None]) -> list[str]:
    """:func:`_client` of every host, at C speed for the usual ``IPv4:port``."""
    named = [h or "" for h in hosts] if None in hosts else cast("Sequence[str]", hosts)
    addresses = list(map(itemgetter(0), map(str.rpartition, named, repeat(":"))))
    joined = "".join(addresses)
    if "" in addresses or ":" in joined or "[" in joined:  # a socket, IPv6, no host
        addresses = [
            a if a and ":" not in a and a[0] != "[" else _client(h)
            for a, h in zip(addresses, named, strict=True)
        ]
    return addresses


def _status_values(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, int]]:
    """``SHOW GLOBAL STATUS`` rows as (NAME, value), the numeric ones only (a LIKE pattern
    may also match a date or ON/OFF variable)."""
    return ((name.upper(), int(value)) for name, value in rows if value.isdigit())


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
