"""MariaDB / MySQL backend: SHOW FULL PROCESSLIST, INNODB_TRX and SHOW GLOBAL STATUS.

The statements are in :mod:`.sql`, their rows by name in :mod:`.rows`, mysqlclient's
facts (errors, thread ids, time limits) in :mod:`.driver`; this module sends them.

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

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from dbconnmgr.backends.base import ConnectionBackend, gc_paused
from dbconnmgr.backends.mysql import driver, rows, sql
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.snapshot import ClientCount, Connection, Snapshot
from dbconnmgr.core.termination import (
    Candidate,
    Criteria,
    Selection,
    ServerAnswer,
    split_signallable,
)
from dbconnmgr.exceptions import ActionNotPossible, InsufficientPrivilege, ServerUnavailable


class _Read(NamedTuple):
    """What one snapshot read: the rows of each statement (see :mod:`.sql`)."""

    server: rows.ServerRow
    grants: tuple[tuple[str, str], ...]
    threads: rows.Threads
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

    @staticmethod
    def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
        """See :func:`.driver.classify_error`."""
        return driver.classify_error(exc, alias)

    @classmethod
    def is_driver_error(cls, exc: BaseException) -> bool:
        """See :func:`.driver.is_driver_error`."""
        return driver.is_driver_error(exc)

    @classmethod
    def driver_pid(cls, raw: Any) -> int | None:
        """See :func:`.driver.driver_pid`."""
        return driver.driver_pid(raw)

    def _driver_cursor(self, cursor: Any) -> Any:
        """The MySQLdb cursor under Django's: ``nextset()`` for multi-statements."""
        return cursor.cursor

    def _read(self, *, precise: bool = False) -> _Read:
        """Every statement of a snapshot in one round trip (one more when a transaction
        waits for a lock, or when the reader lacks PROCESS: see the SQL above).

        The processlist goes first: the server runs the later statements while this
        process turns its rows into columns (the other order measured slower).
        """
        threads_sql = sql.PRECISE_THREADS_SQL if precise else sql.THREADS_SQL
        status_sql = [sql.STATUS_SQL.replace("{name}", name) for name in sql.STATUS_COUNTERS]
        statements = [threads_sql, sql.SERVER_SQL, sql.GRANTS_SQL, *status_sql,
                      sql.TRANSACTIONS_SQL]  # fmt: skip
        status: dict[str, int] = {}
        blockers: dict[int, tuple[int, ...]] = {}
        with self._cursor() as cursor:
            cursor.execute(";".join(statements))
            threads = rows.thread_columns(cursor.fetchall())
            cursor.nextset()
            server = rows.ServerRow._make(cursor.fetchone())
            cursor.nextset()
            grants = cursor.fetchall()
            for _ in status_sql:
                cursor.nextset()
                status.update(rows.status_values(cursor.fetchall()))
            transactions: tuple[tuple[Any, ...], ...] | None
            try:
                cursor.nextset()
                transactions = cursor.fetchall()
            except Exception as exc:
                if not driver.needs_privilege(exc):
                    raise
                self.reads_transactions, transactions = False, None
                cursor.execute(";".join(sql.STATUS_SQL.replace("{name}", name)
                                        for name in sql.RESTRICTED_STATUS_COUNTERS))  # fmt: skip
                while True:
                    status.update(rows.status_values(cursor.fetchall()))
                    if not cursor.nextset():
                        break
            if transactions and any(waits for _, _, waits in transactions):
                cursor.execute(sql.BLOCKERS_SQL)
                for waiter, blocker in cursor.fetchall():
                    blockers[waiter] = (*blockers.get(waiter, ()), blocker)
        return _Read(server, grants, threads, status, transactions, blockers)

    def snapshot(self) -> Snapshot:
        """Read every client thread, the limits and the status counters in one round trip."""
        with gc_paused():  # the driver's rows are freed before the collector resumes
            return self._snapshot(precise=False)

    def _snapshot(self, *, precise: bool) -> Snapshot:
        read = self._read(precise=precise)
        server = read.server
        user, _, host = server.account.partition("@")
        own_grantee = f"'{user}'@'{host}'"
        # INNODB_TRX needs PROCESS, the privilege that shows every thread (granted directly
        # or through a role).
        sees_all = read.transactions is not None
        is_admin = any(grantee == own_grantee for grantee, _ in read.grants)
        admins = {rows.grantee_user(grantee) for grantee, _ in read.grants}
        status = read.status
        connections = rows.connections(read.threads, read.transactions or (), read.blockers, admins)
        if sees_all:  # what Threads_connected and Threads_running count, from the same list
            status["THREADS_CONNECTED"] = len(read.threads.pid)
            status["THREADS_RUNNING"] = read.threads.state.count("active")
        else:
            # Without PROCESS the processlist shows only the reader's own threads: the
            # others are counted (Threads_connected) and kept as hidden rows, never dropped.
            hidden = max(0, status.get("THREADS_CONNECTED", 0) - len(connections))
            connections += rows.hidden_connections(hidden)
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=datetime.fromisoformat(server.taken_at).replace(tzinfo=UTC),
            limits=rows.server_limits(server, is_admin=is_admin),
            connections=tuple(connections),
            own_pid=int(server.own_id),
            visibility="full" if sees_all else "restricted",
            extras=rows.extras(server, status),
            counters=rows.COUNTERS,
            visibility_grant=self.capabilities.full_visibility_grant,
        )

    def count_client_connections(self) -> ClientCount:
        """``Threads_connected`` and ``max_connections`` in one short statement."""
        with self._cursor() as cursor:
            cursor.execute(sql.CLIENT_COUNT_SQL)
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
        answers, eligible = split_signallable(candidates, criteria)
        if not eligible:
            return answers
        statement, params = sql.kill_statement(
            criteria, eligible, reads_transactions=self.reads_transactions
        )
        with self._cursor() as cursor:
            cursor.execute(statement, params)
            while cursor.nextset():
                pass
            cursor.execute(sql.KILLED_SQL)
            killed = rows.killed_moments(cursor.fetchone()[0])
            self.signalled_at.update(killed)
            cursor.execute(sql.states_now_sql(eligible, reads_transactions=self.reads_transactions))
            now = rows.states_now(cursor.fetchall())
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
        """See :func:`.driver.time_limit_options`."""
        return driver.time_limit_options(options, seconds)

    def _running(self, cursor: Any, candidates: Sequence[Candidate], *, queries: bool) -> set[int]:
        """The candidates still in the processlist (with ``queries``: still running a
        statement)."""
        cursor.execute(sql.still_running_sql(candidates, queries=queries))
        return {int(pid) for (pid,) in cursor.fetchall()}

    def cancel(self, pid: int) -> None:
        """``KILL QUERY``: end the thread's running statement, keep its session."""
        with self._cursor() as cursor:
            cursor.execute("KILL QUERY %s", [int(pid)])


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
