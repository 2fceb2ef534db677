"""Amazon Redshift's rows as the common model: sessions, states, ages, WLM queues.

Pure functions of the rows the statements of :mod:`dbconnmgr.backends.redshift.sql` return
(docs/redshift.md has the state table).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from dbconnmgr.backends.redshift.sql import QUERY_TEXT_LIMIT
from dbconnmgr.core.attribution import code_of
from dbconnmgr.core.snapshot import Connection
from dbconnmgr.core.termination import Candidate, Criteria

_OPEN_TRANSACTION = ("ExclusiveLock", "transactionid")


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
        # ages without a call for what is absent (an idle session has no query or
        # transaction start, and is often idle since it began): a fifth of this loop
        backend_age = _seconds(started)
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
                    backend_age,
                    None if txn_start is None else _seconds(txn_start),
                    None if query_start is None else _seconds(query_start),
                    backend_age if since is started else _seconds(since),
                    code_of(query),  # the code label of its statement (core/attribution)
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
