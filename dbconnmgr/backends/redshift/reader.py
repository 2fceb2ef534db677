"""Amazon Redshift backend: STV_SESSIONS, STV_RECENTS, SVV_TRANSACTIONS and the WLM views.

Redshift speaks PostgreSQL's protocol but keeps its sessions in its own system views
(docs/redshift.md has the pages and the state table):

- ``active``: the session runs a query (a ``Running`` row in STV_RECENTS);
- ``idle in transaction``: no running query, an open transaction (a granted
  ``ExclusiveLock`` on its own ``transactionid`` in SVV_TRANSACTIONS);
- ``idle``: neither.

How long a session has been idle comes from SYS_QUERY_HISTORY: the end of its last query
(else its start, for a session that never ran one). The cluster's connection limit cannot be
read (no ``max_connections`` on Redshift): it is the alias's ``NODE_TYPE`` or
``MAX_CONNECTIONS`` setting (:mod:`dbconnmgr.backends.redshift.limits`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, timedelta, tzinfo
from typing import Any

from dbconnmgr.backends.base import ConnectionBackend, gc_paused
from dbconnmgr.backends.redshift import driver
from dbconnmgr.backends.redshift.limits import ClusterLimit, LimitError, cluster_limit
from dbconnmgr.backends.redshift.rows import (
    SessionRead,
    WlmQueue,
    _candidate,
    _exact_times,
    _sees_all,
    _utc,
    blockers_by_waiter,
    matches,
    parse_read,
    server_clock,
    session_connections,
    version_number,
    wlm_document,
    wlm_queues,
)
from dbconnmgr.backends.redshift.sql import (
    CLIENT_COUNT_SQL,
    LOCKS_SQL,
    SERVER_SQL,
    SESSION_HISTORY_SQL,
    SNAPSHOT_SQL,
    USERS_SQL,
    WLM_HISTORY_SQL,
    WLM_SLOTS_SQL,
    WLM_SQL,
    recheck_sql,
)
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.retained import QueueApex, RetainedPeaks, hour_floor, hourly_levels, queue_apex
from dbconnmgr.core.samples import hourly_peaks
from dbconnmgr.core.snapshot import ClientCount, Connection, ServerLimits, Snapshot
from dbconnmgr.core.termination import (
    Candidate,
    Criteria,
    Selection,
    ServerAnswer,
    split_signallable,
)
from dbconnmgr.exceptions import ActionNotPossible, ServerUnavailable

#: Attribute of Django's connection wrapper: its reader was a superuser at the last snapshot.
_SUPERUSER_MARK = "dbconnmgr_redshift_superuser"

#: Candidates re-checked per round trip, just before their signals (docs/redshift.md,
#: "The race window").
RECHECK_CHUNK = 4

_SIGNAL_FUNCTION = {"terminate": "PG_TERMINATE_BACKEND", "cancel": "PG_CANCEL_BACKEND"}


class RedshiftBackend(ConnectionBackend):
    """Connection snapshots of an Amazon Redshift cluster (or Serverless workgroup)."""

    vendor = "redshift"
    capabilities = Capabilities(
        display_name="Amazon Redshift",
        can_terminate=True,
        can_terminate_atomically=False,
        can_cancel=True,
        has_reserved_slots=False,
        reports_lock_waits=True,
        reports_visibility=True,
        counts_refused_connections=False,
        reports_application_name=False,
        reports_session_start=True,
        reports_retained_history=True,
        reports_query_queues=True,
        full_visibility_grant=(
            "SYSLOG ACCESS UNRESTRICTED (ALTER USER name SYSLOG ACCESS UNRESTRICTED)"
        ),
        role_limit_name="CONNECTION LIMIT of user",
        states=("active", "idle", "idle in transaction", "unknown"),
    )

    def __init__(self, alias: str, connection: Any) -> None:
        super().__init__(alias, connection)
        #: For each pid terminate() signalled: this process's clock (epoch seconds) when its
        #: re-check was sent and when the signal returned: the race window's upper bound.
        self.signalled_at: dict[int, tuple[float, float]] = {}

    def _limit(self) -> ClusterLimit:
        options = self.connection.settings_dict.get("OPTIONS") or {}
        try:
            return cluster_limit(options, self.alias)
        except LimitError as exc:
            raise ServerUnavailable(
                str(exc), kind="setup", alias=self.alias, detail=str(exc)
            ) from None

    # -- the driver ------------------------------------------------------------------------
    classify_error = staticmethod(driver.classify_error)

    @classmethod
    def driver_pid(cls, raw: Any) -> int | None:
        """See :func:`dbconnmgr.backends.redshift.driver.driver_pid`."""
        return driver.driver_pid(raw)

    def _driver_cursor(self, cursor: Any) -> Any:
        # psycopg's own cursor: nextset() walks the result sets of several statements
        return cursor.cursor

    def _results(self, sql: str) -> list[list[tuple[Any, ...]]]:
        """Every result set of the statements in ``sql`` (one round trip)."""
        with self._cursor() as cursor:
            cursor.execute(sql)
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
        return results

    # -- snapshot ------------------------------------------------------------------------
    def read(self) -> tuple[SessionRead, dict[int, tuple[int, ...]], list[WlmQueue] | None]:
        """One snapshot's reads: one round trip (one more when a session waits for a lock).

        The WLM queues' views are superuser-only: the first snapshot of a process learns
        whether the reader is one and reads them in a second round trip; later snapshots
        of a superuser send them with the rest (remembered on Django's connection).
        """
        known_superuser = getattr(self.connection, _SUPERUSER_MARK, False)
        if known_superuser:
            try:
                results = self._results(SNAPSHOT_SQL + ";\n" + WLM_SQL)
            except Exception:  # no longer a superuser? read as one who is not, then learn
                known_superuser = False
                results = self._results(SNAPSHOT_SQL)
        else:
            results = self._results(SNAPSHOT_SQL)
        read = parse_read(results[:4])
        reader = read.reader
        superuser = bool(reader and reader.superuser)
        setattr(self.connection, _SUPERUSER_MARK, superuser)
        queues = None
        if superuser:
            queues = wlm_queues(results[4:6] if known_superuser else self._results(WLM_SQL))
        blockers = blockers_by_waiter(self._results(LOCKS_SQL)[0]) if read.waits else {}
        return read, blockers, queues

    def snapshot(self) -> Snapshot:
        """Every session, the limits and the WLM queues (see :meth:`read`)."""
        limit = self._limit()
        with gc_paused():
            read, blockers, queues = self.read()
            connections = session_connections(read, blockers)
        reader = read.reader
        is_superuser = bool(reader and reader.superuser)
        limits = ServerLimits(
            version=read.version,
            version_num=version_number(read.version),
            max_connections=limit.max_connections,
            superuser_reserved_connections=0,
            reserved_connections=0,
            database_limits={k: v for k, v in read.databases.items() if v is not None},
            role_limits={
                k: v.connection_limit
                for k, v in read.users.items()
                if v.connection_limit is not None
            },
            current_user=read.current_user,
            is_superuser=is_superuser,
            current_database=read.current_database,
            superusers_bypass_limits=True,
        )
        extras: dict[str, Any] = {
            "max_connections_source": limit.source,
            "node_type": limit.node_type,
            "syslog_access": "UNRESTRICTED" if reader and reader.unrestricted else "RESTRICTED",
            "wlm": wlm_document(queues),
        }
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=read.now,
            limits=limits,
            connections=tuple(connections),
            own_pid=read.own_pid,
            visibility="full" if read.sees_all else "restricted",
            extras=extras,
            visibility_grant=self.capabilities.full_visibility_grant,
        )

    def count_client_connections(self) -> ClientCount:
        """STV_SESSIONS counted, the reader's own session excluded."""
        limit = self._limit()
        with self._cursor() as cursor:
            cursor.execute(CLIENT_COUNT_SQL)
            (count,) = cursor.fetchone()
        return ClientCount(
            client_connections=max(0, int(count) - 1),
            max_connections=limit.max_connections,
            usable_connections=limit.max_connections,
        )

    # -- termination ---------------------------------------------------------------------
    def select_for_termination(self, criteria: Criteria) -> Selection:
        """The sessions matching ``criteria``, longest in their state first."""
        if criteria.application_name is not None:
            raise ActionNotPossible(
                f"database {self.alias!r}: {self.capabilities.display_name} sessions carry no "
                "application name in STV_SESSIONS: select them by --user or --database instead"
            )
        read, _, _ = self._read_sessions()
        reader = read.reader
        is_superuser = bool(reader and reader.superuser)
        exact = _exact_times(read)
        candidates = [
            _candidate(c, *exact[c.pid], read, is_superuser)
            for c in session_connections(read)
            if matches(c, criteria, read)
        ]
        candidates.sort(key=lambda c: (-(c.state_seconds or 0.0), c.pid))
        return Selection(
            taken_at=read.now,
            own_pid=read.own_pid,
            db_role=read.current_user,
            is_superuser=is_superuser,
            database=read.current_database,
            candidates=tuple(candidates),
            hidden=0,
        )

    def _read_sessions(self) -> tuple[SessionRead, dict[int, tuple[int, ...]], None]:
        return parse_read(self._results(SNAPSHOT_SQL)), {}, None

    def terminate(
        self, criteria: Criteria, candidates: Sequence[Candidate]
    ) -> dict[int, ServerAnswer]:
        """Signal each candidate that, re-checked just before, still matches.

        Redshift documents no way to make PG_TERMINATE_BACKEND conditional in the statement
        that checks the session, so for every :data:`RECHECK_CHUNK` candidates one round trip
        re-reads their sessions (same pid and start, same user, same state, in it for at
        least ``older_than`` s) and the next signals those that still match; the window left
        is between the two (measured in ``signalled_at``).
        """
        answers, eligible = split_signallable(candidates, criteria)
        function = _SIGNAL_FUNCTION[criteria.signal]
        for start in range(0, len(eligible), RECHECK_CHUNK):
            chunk = eligible[start : start + RECHECK_CHUNK]
            # when the re-check was sent: the server reads the views after this, at a moment
            # this process cannot see, so the window is counted from here (an upper bound)
            checked = time.time()
            read = parse_read(self._results(recheck_sql([c.pid for c in chunk])))
            now = {s.pid: s for s in session_connections(read)}
            exact = _exact_times(read)
            chosen: list[Connection] = []
            for c in chunk:
                current = now.get(c.pid)
                if current is None or exact[c.pid][0] != c.backend_start:
                    answers[c.pid] = ServerAnswer(c.pid, "already_gone")
                elif (
                    current.user != c.user
                    or not matches(current, criteria, read)
                    # a cancel is for the query selected, not a newer one
                    or (criteria.signal == "cancel" and exact[c.pid][1] != c.state_change)
                ):
                    answers[c.pid] = ServerAnswer(
                        c.pid, "no_longer_matching", current.state, current.state_seconds
                    )
                else:
                    chosen.append(current)
            if not chosen:
                continue
            self._results(";".join(f"SELECT {function}({int(s.pid)})" for s in chosen))
            done = time.time()
            for s in chosen:
                self.signalled_at[s.pid] = (checked, done)
                answers[s.pid] = ServerAnswer(s.pid, "signalled", s.state, s.state_seconds)
        return answers

    # -- retained history ----------------------------------------------------------------
    def retained_peaks(self, days: int, tz: tzinfo) -> RetainedPeaks:
        """The busiest hours from what the cluster itself keeps (no recorded samples
        needed): per clock hour the most sessions open at once (SYS_SESSION_HISTORY), and,
        for a superuser, the WLM apex per queue and hour as ``wlm_apex_hourly.sql``
        computes it (STL_WLM_QUERY). Redshift keeps about seven days of both.
        """
        with self._cursor() as cursor:
            cursor.execute(SERVER_SQL + ";\n" + USERS_SQL)
            server = cursor.fetchall()
            cursor.nextset()
            users = cursor.fetchall()
            now = server_clock(server[0][0]).replace(tzinfo=None)
            since = now - timedelta(days=days)
            cursor.execute(SESSION_HISTORY_SQL, [since])
            sessions = cursor.fetchall()
            current_user = str(server[0][3])
            superuser = any(str(u[0]) == current_user and u[1] for u in users)
            apex: list[QueueApex] | None = None
            if superuser:
                cursor.execute(WLM_SLOTS_SQL)
                slots = {int(c): int(n) for c, n in cursor.fetchall()}
                cursor.execute(WLM_HISTORY_SQL, [since])
                rows = [(int(c), a, b, int(n)) for c, a, b, n in cursor.fetchall()]
        intervals = [
            (start, now if end is None or status == "active" else end, 1)
            for start, end, status in sessions
        ]
        # the window starts where the history does: hours before it are unknown, not zero
        first = min((start for start, _, _ in intervals), default=now)
        window = max(since, hour_floor(first))
        levels = hourly_levels(intervals, window, now)
        report = hourly_peaks(((hour.replace(tzinfo=UTC), peak) for hour, peak in levels), tz)
        if superuser:
            apex = queue_apex(rows, slots, since, now)
        return RetainedPeaks(
            sessions=report, wlm_apex=apex, since=window.replace(tzinfo=UTC),
            until=now.replace(tzinfo=UTC), visibility="full" if _sees_all(users, current_user)
            else "restricted",
        )  # fmt: skip

    def _running(self, cursor: Any, candidates: Sequence[Candidate], *, queries: bool) -> set[int]:
        """STV_SESSIONS (with ``queries``: STV_RECENTS' running queries) for the candidates:
        a reused pid, or a newer query, is not the one selected."""
        ids = ", ".join(str(int(c.pid)) for c in candidates)
        sql = (
            f"SELECT pid, starttime FROM stv_recents WHERE status = 'Running' AND pid IN ({ids})"  # noqa: S608
            if queries
            else f"SELECT process, starttime FROM stv_sessions WHERE process IN ({ids})"  # noqa: S608
        )
        wanted = {c.pid: c.state_change if queries else c.backend_start for c in candidates}
        cursor.execute(sql)
        return {
            int(pid)
            for pid, started in cursor.fetchall()
            if wanted.get(int(pid)) in (None, _utc(started))
        }
