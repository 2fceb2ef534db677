"""MariaDB / MySQL rows, by name: the processlist as columns, the server row, the status
counters, and the common model's values built from them (docs/mysql.md has the states)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple, cast

from dbconnmgr.core.snapshot import Connection, Counters, ServerLimits

#: Characters of query text kept per connection.
QUERY_TEXT_LIMIT = 500

#: The counters among :func:`extras`. ``aborted_connects`` counts every connection attempt
#: the server refused or that failed (full, bad credentials, handshake timeout): MariaDB
#: counts a "Too many connections" (1040) refusal only there (its
#: Connection_errors_max_connections stays 0, measured on 10.11); MySQL also counts those
#: in ``connection_errors_max_connections``.
COUNTERS = Counters(
    cumulative=("aborted_connects", "connection_errors_max_connections"),
    refused="aborted_connects",
    full_refused="connection_errors_max_connections",
)


class ServerRow(NamedTuple):
    """The one row of ``SERVER_SQL``."""

    taken_at: str
    own_id: int
    version: str
    max_connections: int
    extra_max_connections: int
    max_user_connections: int | None
    wait_timeout: int
    account: str
    database: str


def server_limits(server: ServerRow, *, is_admin: bool) -> ServerLimits:
    """The limits: ``max_connections`` ordinary slots plus the admin one (reserved), the
    account's MAX_USER_CONNECTIONS as its role limit."""
    user = server.account.partition("@")[0]
    max_user_connections = int(server.max_user_connections or 0)
    return ServerLimits(
        version=server.version,
        version_num=version_num(server.version),
        max_connections=int(server.max_connections) + 1,
        superuser_reserved_connections=1,
        reserved_connections=0,
        role_limits={user: max_user_connections} if max_user_connections > 0 else {},
        current_user=user,
        is_superuser=is_admin,
        current_database=server.database,
        superusers_bypass_limits=False,
    )


def hidden_connections(count: int) -> list[Connection]:
    """``count`` rows for the threads a reader without PROCESS may not see (negative ids)."""
    return [
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
        for n in range(count)
    ]


def extras(server: ServerRow, status: dict[str, int]) -> dict[str, Any]:
    """The figures only MariaDB / MySQL report (the documents' ``mysql`` key)."""
    return {
        "max_connections_setting": int(server.max_connections),
        "extra_max_connections": int(server.extra_max_connections),
        "max_user_connections": int(server.max_user_connections or 0),
        "wait_timeout": int(server.wait_timeout),
        "threads_connected": status.get("THREADS_CONNECTED"),
        "threads_running": status.get("THREADS_RUNNING"),
        "max_used_connections": status.get("MAX_USED_CONNECTIONS"),
        "aborted_connects": status.get("ABORTED_CONNECTS"),
        "connection_errors_max_connections": status.get("CONNECTION_ERRORS_MAX_CONNECTIONS"),
    }


def command_state(command: str, in_transaction: bool) -> str:
    """The common-model state of a thread by its COMMAND and whether it is in a transaction."""
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


def grantee_user(grantee: str) -> str:
    """``'user'@'host'`` -> ``user``."""
    return grantee.split("@", 1)[0].strip("'")


#: The common state of a thread outside any transaction, by its COMMAND.
_COMMAND_STATE = {"Sleep": "idle"}
_NONE_WHEN_SLEEPING: dict[str, Any] = {"Sleep": None}


class Threads(NamedTuple):
    """The processlist's rows as columns, with what needs no other statement worked out.

    Built while the server still runs the snapshot's later statements (``MySQLBackend._read``)."""

    pid: tuple[int, ...]
    user: tuple[str, ...]
    db: tuple[str | None, ...]
    client: list[str]
    #: ``idle`` or ``active``; ``idle in transaction`` is decided once INNODB_TRX is read.
    state: list[str]
    query: list[str | None]
    running: list[float | None]
    seconds: tuple[float, ...]


def thread_columns(rows: Sequence[Sequence[Any]]) -> Threads:
    """Columns of SHOW FULL PROCESSLIST's rows (Id, User, Host, db, Command, Time, State,
    Info), built column-wise with C-level map/zip: cheap at 1,000 rows."""
    columns = tuple(zip(*rows, strict=True))
    if columns and "Daemon" in columns[4]:  # background threads hold no slot
        columns = tuple(zip(*(row for row in rows if row[4] != "Daemon"), strict=True))
    if not columns:
        return Threads((), (), (), [], [], [], [], ())
    pid, user, host, db, command, seconds, _, info = columns[:8]
    # Ages and query texts of running threads only: None for Sleep (C-level dict.get).
    queries = list(map(_NONE_WHEN_SLEEPING.get, command, info))
    if max(map(len, filter(None, queries)), default=0) > QUERY_TEXT_LIMIT:
        queries = [q[:QUERY_TEXT_LIMIT] if q else q for q in queries]
    return Threads(
        pid=pid,
        user=user,
        db=db,
        client=_clients(host),
        state=list(map(_COMMAND_STATE.get, command, repeat("active", len(pid)))),
        query=queries,
        running=list(map(_NONE_WHEN_SLEEPING.get, command, seconds)),
        seconds=seconds,
    )


def connections(
    threads: Threads,
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


def status_values(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, int]]:
    """``SHOW GLOBAL STATUS`` rows as (NAME, value), the numeric ones only (a LIKE pattern
    may also match a date or ON/OFF variable)."""
    return ((name.upper(), int(value)) for name, value in rows if value.isdigit())


def version_num(version: str) -> int:
    """``10.11.6-MariaDB-...`` -> 101106 (like PostgreSQL's serverversion_num)."""
    numbers = []
    for part in version.split("-", 1)[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0] * 10000 + numbers[1] * 100 + numbers[2]


def killed_moments(text: str | None) -> dict[int, tuple[float, float]]:
    """``@dbconnmgr_killed`` (``,id:checked:done...``): for each killed thread, the server's
    time (epoch seconds) of the processlist read that re-checked it and of its KILL's end."""
    return {
        int(pid): (float(checked), float(done))
        for pid, checked, done in (x.split(":") for x in (text or "").split(",") if x)
    }


def states_now(found: Iterable[Sequence[Any]]) -> dict[int, tuple[str, float]]:
    """``states_now_sql``'s rows: each thread's common-model state and seconds in it."""
    return {int(r[0]): (command_state(r[1], bool(r[3])), float(r[2])) for r in found}
