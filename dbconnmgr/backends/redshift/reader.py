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
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError

from dbconnmgr.backends.base import ConnectionBackend, gc_paused, setup_error
from dbconnmgr.backends.postgresql.reader import classify_error as classify_postgresql_error
from dbconnmgr.backends.redshift.limits import ClusterLimit, LimitError, cluster_limit
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.retained import (
    QueueApex,
    RetainedPeaks,
    hour_floor,
    hourly_levels,
    queue_apex,
)
from dbconnmgr.core.samples import hourly_peaks
from dbconnmgr.core.snapshot import ClientCount, Connection, ServerLimits, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import ActionNotPossible, ServerUnavailable

#: Characters of query text kept per connection (STV_RECENTS keeps 600).
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
#: Every session with what decides its state, in one statement (one scan of each view):
#: its running query (STV_RECENTS), its open transaction and whether it waits for a table
#: lock (SVV_TRANSACTIONS), and when its last query ended (SYS_QUERY_HISTORY: the process
#: id of the query's session; only queries since this session began, as pids are reused).
_SESSIONS_TEMPLATE = """
SELECT s.process, TRIM(s.user_name), TRIM(s.db_name), s.starttime,
       r.starttime, r.query, t.txn_start, t.waits, MAX(h.end_time)
FROM stv_sessions s
LEFT JOIN (SELECT pid, MIN(starttime) AS starttime, MAX(TRIM(query)) AS query
           FROM stv_recents WHERE status = 'Running' GROUP BY pid) r ON r.pid = s.process
LEFT JOIN (SELECT pid,
                  MIN(CASE WHEN lockable_object_type = 'transactionid'
                           AND lock_mode = 'ExclusiveLock' AND granted
                      THEN txn_start END) AS txn_start,
                  MAX(CASE WHEN granted THEN 0 ELSE 1 END) AS waits
           FROM svv_transactions GROUP BY pid) t ON t.pid = s.process
LEFT JOIN sys_query_history h
       ON h.session_id = s.process AND h.start_time >= s.starttime AND h.end_time IS NOT NULL
{filter}
GROUP BY s.process, s.user_name, s.db_name, s.starttime, r.starttime, r.query, t.txn_start,
         t.waits
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

_OPEN_TRANSACTION = ("ExclusiveLock", "transactionid")


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """PostgreSQL's classification, plus Redshift's own refusal when the cluster is full
    (``connection limit "500" exceeded for non-bootstrap users``)."""
    lowered = str(exc).lower()
    if "connection limit" in lowered and "exceeded" in lowered:
        first_line = str(exc).strip().splitlines()[0]
        return ServerUnavailable(
            f"database {alias!r}: the cluster's connection limit is reached ({first_line})",
            kind="full",
            alias=alias,
            detail=first_line,
        )
    return classify_postgresql_error(exc, alias)


def version_number(version: str) -> int:
    """``PostgreSQL 8.0.2 on i686-pc-linux-gnu, ..., Redshift 1.0.12103`` -> 80002, like
    PostgreSQL's server_version_num (the emulation's 18.6 -> 180006)."""
    words = version.split()
    numbers = [int(x) for x in (words[1] if len(words) > 1 else "").split(".") if x.isdigit()]
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0] * 10000 + numbers[1] * 100 + numbers[2]


def wlm_document(queues: list[WlmQueue] | None) -> dict[str, Any]:
    """The ``wlm`` figures of the ``redshift`` key (docs/json.md): the queues, or why not."""
    if queues is None:
        return {"visible": False, "queues": [], "queued_queries": None, "query_slots": None}
    manual = [q.slots for q in queues if q.slots is not None and q.service_class > 5]
    return {
        "visible": True,
        "queues": [q._asdict() for q in queues],
        "queued_queries": sum(q.queued for q in queues),
        "query_slots": sum(manual) if manual else None,
    }


def server_clock(timeofday: str) -> datetime:
    """TIMEOFDAY()'s text (``Thu Sep 19 22:53:50.333525 2008 UTC``, the same format on
    PostgreSQL) as an aware UTC datetime. A session in another time zone than UTC (Redshift's
    default, Django's with USE_TZ) gives a local time with an abbreviation that cannot be
    converted reliably: this process's clock in UTC is used then."""
    text = timeofday.strip()
    head, _, zone = text.rpartition(" ")
    if zone in ("UTC", "GMT"):
        try:
            return datetime.strptime(head, "%a %b %d %H:%M:%S.%f %Y").replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def connection_limit(text: str | None) -> int | None:
    """A CONNECTION LIMIT as Redshift shows it (``UNLIMITED``, ``-1`` or a number) -> the
    number, None when unlimited."""
    value = (text or "").strip()
    if not value or value.upper() == "UNLIMITED":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


class UserInfo(NamedTuple):
    """One SVV_USER_INFO row."""

    superuser: bool
    connection_limit: int | None
    unrestricted: bool


class SessionRead(NamedTuple):
    """What one snapshot read, before it becomes :class:`Connection` rows."""

    now: datetime
    own_pid: int
    version: str
    current_user: str
    current_database: str
    users: dict[str, UserInfo]
    databases: dict[str, int | None]
    #: SESSIONS_SQL's rows.
    sessions: list[tuple[Any, ...]]

    @property
    def reader(self) -> UserInfo | None:
        """The reading user's own SVV_USER_INFO row."""
        return self.users.get(self.current_user)

    @property
    def sees_all(self) -> bool:
        """Whether every session is listed: a superuser, or SYSLOG ACCESS UNRESTRICTED."""
        reader = self.reader
        return bool(reader and (reader.superuser or reader.unrestricted))

    @property
    def waits(self) -> bool:
        """Whether any session waits for a table lock."""
        return any(row[7] for row in self.sessions)


def parse_read(results: Sequence[Sequence[tuple[Any, ...]]]) -> SessionRead:
    """The snapshot statements' result sets (SNAPSHOT_SQL's order) as a SessionRead."""
    server, users, databases, sessions = results
    timeofday, own_pid, version, current_user, current_database = server[0]
    return SessionRead(
        now=server_clock(timeofday),
        own_pid=int(own_pid),
        version=str(version),
        current_user=str(current_user),
        current_database=str(current_database),
        users={
            str(name): UserInfo(bool(su), connection_limit(limit), syslog == "UNRESTRICTED")
            for name, su, limit, syslog in users
        },
        databases={str(name): connection_limit(limit) for name, limit in databases},
        sessions=list(sessions),
    )


def blockers_by_waiter(rows: Sequence[tuple[Any, ...]]) -> dict[int, tuple[int, ...]]:
    """LOCKS_SQL's rows -> for each session waiting for a table, the sessions holding a lock
    on it (which lock modes conflict is not checked: every holder is named)."""
    holders: dict[int, set[int]] = defaultdict(set)
    wanted: dict[int, set[int]] = defaultdict(set)
    for pid, relation, granted in rows:
        if relation is None:
            continue
        (holders if granted else wanted)[int(relation)].add(int(pid))
    result: dict[int, set[int]] = defaultdict(set)
    for relation, waiters in wanted.items():
        for waiter in waiters:
            result[waiter].update(holders.get(relation, set()) - {waiter})
    return {pid: tuple(sorted(pids)) for pid, pids in result.items()}


def session_state(
    query_start: datetime | None, txn_start: datetime | None, last_end: datetime | None,
    started: datetime,
) -> tuple[str, datetime]:  # fmt: skip
    """The common state of a session and when it began (docs/redshift.md, "States")."""
    if query_start is not None:
        return "active", query_start
    if txn_start is not None:
        # idle since its last query ended, or since the transaction began without one
        return "idle in transaction", max(last_end, txn_start) if last_end else txn_start
    return "idle", last_end if last_end is not None else started


def session_connections(
    read: SessionRead, blockers: dict[int, tuple[int, ...]] | None = None
) -> list[Connection]:
    """The common model's connections from one read."""
    now = read.now.replace(tzinfo=None)  # the views' timestamps are naive UTC

    def _seconds(since: datetime | None) -> float | None:
        # never negative: the clock and the views are read apart
        return None if since is None else max(0.0, (now - since).total_seconds())

    superusers = {name for name, info in read.users.items() if info.superuser}
    blockers = blockers or {}
    result: list[Connection] = []
    append = result.append
    # tuple.__new__ with the fields in order: several times cheaper than keyword
    # arguments at 500 sessions (the same row layout as Connection's fields)
    make = tuple.__new__
    for (
        pid,
        user,
        database,
        started,
        query_start,
        query,
        txn_start,
        waits,
        last_end,
    ) in read.sessions:
        state, since = session_state(query_start, txn_start, last_end, started)
        append(
            make(
                Connection,
                (
                    pid,
                    database,
                    user,
                    "",
                    "unknown",
                    state,
                    "Lock" if waits else None,
                    "relation" if waits else None,
                    blockers.get(pid, ()),
                    query[:QUERY_TEXT_LIMIT] if query is not None else None,
                    True,
                    user in superusers,
                    _seconds(started),
                    _seconds(txn_start),
                    _seconds(query_start),
                    _seconds(since),
                ),
            )
        )
    return result


def matches(c: Connection, criteria: Criteria, read: SessionRead) -> bool:
    """Whether session ``c`` meets ``criteria`` (the name filters, the state and its age)."""
    return not (
        c.pid in criteria.exclude_pids
        or c.pid == read.own_pid
        or (criteria.states is not None and c.state not in criteria.states)
        or (criteria.older_than is not None and (c.state_seconds or 0.0) < criteria.older_than)
        or (criteria.user is not None and c.user != criteria.user)
        or (criteria.database_name is not None and c.database != criteria.database_name)
        or (criteria.current_database_only and c.database != read.current_database)
        or (criteria.current_user_only and c.user != read.current_user)
        or (criteria.only_pids is not None and c.pid not in criteria.only_pids)
    )


def recheck_sql(pids: Sequence[int]) -> str:
    """The snapshot's statements for ``pids`` only: the re-check before a signal."""
    ids = ", ".join(str(int(pid)) for pid in pids)
    sessions = _SESSIONS_TEMPLATE.replace("{filter}", f"WHERE s.process IN ({ids})")
    return ";\n".join((SERVER_SQL, USERS_SQL, DATABASES_SQL, sessions))


#: Attribute of Django's connection wrapper: its reader was a superuser at the last snapshot.
_SUPERUSER_MARK = "dbconnmgr_redshift_superuser"

#: Candidates re-checked per round trip, just before their signals (docs/redshift.md,
#: "The race window").
RECHECK_CHUNK = 4

_SIGNAL_FUNCTION = {"terminate": "PG_TERMINATE_BACKEND", "cancel": "PG_CANCEL_BACKEND"}


class WlmQueue(NamedTuple):
    """One WLM queue (service class) as read now."""

    service_class: int
    name: str
    slots: int | None  # None: automatic WLM (num_query_tasks -1)
    queued: int
    executing: int
    slots_in_use: int
    longest_queued_seconds: float | None


def wlm_queues(results: Sequence[Sequence[tuple[Any, ...]]]) -> list[WlmQueue]:
    """WLM_SQL's two result sets -> the queues, service class order."""
    config, queries = results
    per_class = {int(r[0]): r for r in queries}
    queues = []
    for service_class, name, tasks, queued, executing in config:
        row = per_class.get(int(service_class))
        longest_us = row[2] if row is not None else None
        queues.append(
            WlmQueue(
                service_class=int(service_class),
                name=str(name),
                slots=None if tasks is None or int(tasks) < 0 else int(tasks),
                queued=int(queued if queued is not None else (row[1] if row else 0) or 0),
                executing=int(executing or 0),
                slots_in_use=int(row[3] or 0) if row is not None else 0,
                longest_queued_seconds=None if longest_us is None else int(longest_us) / 1e6,
            )
        )
    return queues


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
        full_visibility_grant=(
            "SYSLOG ACCESS UNRESTRICTED (ALTER USER name SYSLOG ACCESS UNRESTRICTED)"
        ),
        role_limit_name="CONNECTION LIMIT of user",
        states=("active", "idle", "idle in transaction", "unknown"),
    )

    def __init__(self, alias: str, connection: Any) -> None:
        super().__init__(alias, connection)
        #: For each pid terminate() signalled: this process's clock (epoch seconds) when the
        #: re-check's rows arrived and when the signal returned: the race window's bound.
        self.signalled_at: dict[int, tuple[float, float]] = {}

    def _limit(self) -> ClusterLimit:
        options = self.connection.settings_dict.get("OPTIONS") or {}
        try:
            return cluster_limit(options, self.alias)
        except LimitError as exc:
            raise ServerUnavailable(
                str(exc), kind="setup", alias=self.alias, detail=str(exc)
            ) from None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """psycopg's cursor under Django's wrapper (several statements, one result set
        each), errors classified."""
        try:
            with self.connection.cursor() as cursor:
                yield cursor.cursor
        except ImproperlyConfigured as exc:
            raise setup_error(exc, self.alias) from None
        except (DatabaseError, InterfaceError) as exc:
            raise classify_error(exc, self.alias) from exc

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
        answers: dict[int, ServerAnswer] = {}
        eligible: list[Candidate] = []
        for c in candidates:
            if c.is_superuser and not criteria.include_superusers:
                answers[c.pid] = ServerAnswer(c.pid, "protected", c.state, c.state_seconds)
            elif not c.can_signal:
                answers[c.pid] = ServerAnswer(c.pid, "permission_denied", c.state, c.state_seconds)
            else:
                eligible.append(c)
        function = _SIGNAL_FUNCTION[criteria.signal]
        for start in range(0, len(eligible), RECHECK_CHUNK):
            chunk = eligible[start : start + RECHECK_CHUNK]
            read = parse_read(self._results(recheck_sql([c.pid for c in chunk])))
            checked = time.time()
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

    def still_running(
        self, candidates: Sequence[Candidate], timeout: float, *, queries: bool = False
    ) -> set[int]:
        """Poll STV_SESSIONS (with ``queries``: STV_RECENTS' running queries) until the
        candidates have left it or ``timeout`` passes."""
        if not candidates:
            return set()
        ids = ", ".join(str(int(c.pid)) for c in candidates)
        sql = (
            f"SELECT pid, starttime FROM stv_recents WHERE status = 'Running' AND pid IN ({ids})"  # noqa: S608
            if queries
            else f"SELECT process, starttime FROM stv_sessions WHERE process IN ({ids})"  # noqa: S608
        )
        # the session (or the query) each candidate was: a reused pid or a newer query is not it
        wanted = {c.pid: c.state_change if queries else c.backend_start for c in candidates}
        deadline = time.monotonic() + timeout
        pause = 0.005
        with self._cursor() as cursor:
            while True:
                cursor.execute(sql)
                running = {
                    int(pid)
                    for pid, started in cursor.fetchall()
                    if wanted.get(int(pid)) in (None, _utc(started))
                }
                if not running or time.monotonic() >= deadline:
                    return running
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.02)


def _sees_all(users: Sequence[tuple[Any, ...]], current_user: str) -> bool:
    for name, superuser, _, syslog in users:
        if str(name) == current_user:
            return bool(superuser) or syslog == "UNRESTRICTED"
    return False


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _exact_times(read: SessionRead) -> dict[int, tuple[datetime, datetime]]:
    """Per session, its start and the start of its state, exact (UTC): what a candidate is
    told apart by (a reused pid, a newer query)."""
    result = {}
    for pid, _, _, started, query_start, _, txn_start, _, last_end in read.sessions:
        _, since = session_state(query_start, txn_start, last_end, started)
        result[int(pid)] = (_utc(started), _utc(since))
    return result


def _candidate(
    c: Connection,
    started: datetime,
    state_change: datetime,
    read: SessionRead,
    reader_is_superuser: bool,
) -> Candidate:
    return Candidate(
        pid=c.pid,
        backend_start=started,
        user=c.user,
        application_name="",
        database=c.database,
        client_addr=None,
        state=c.state,
        state_seconds=c.state_seconds,
        is_superuser=c.is_superuser,
        can_signal=reader_is_superuser or c.user == read.current_user,
        state_change=state_change,
    )
