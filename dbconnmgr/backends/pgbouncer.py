"""PgBouncer's admin console: the only module that speaks to it.

The console (the pseudo-database ``pgbouncer``) speaks only the simple query protocol and has
no transactions: a raw psycopg connection with ``cursor_factory=ClientCursor`` and
autocommit, never Django's connection. Columns differ between PgBouncer versions (1.18+),
so every row is read by column name and a missing column counts as zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import ClientCursor
from psycopg import conninfo as pg_conninfo

from dbconnmgr.core.pooler import Pool, PoolerSnapshot, PoolerUnavailable, maxwait_from

__all__ = [
    "CONFIG_KEYS",
    "ConsoleError",
    "PgBouncerConsole",
    "console_address",
    "read_console",
]

#: The SHOW CONFIG settings a :class:`PoolerSnapshot` keeps.
CONFIG_KEYS = (
    "pool_mode",
    "default_pool_size",
    "reserve_pool_size",
    "max_client_conn",
    "max_db_connections",
    "max_user_connections",
)
#: Seconds to wait for the console to answer a connection attempt.
CONNECT_TIMEOUT = 5


class ConsoleError(Exception):
    """The console could not be read; ``problem`` says why in one line."""

    def __init__(self, problem: PoolerUnavailable) -> None:
        super().__init__(problem.message)
        self.problem = problem


def console_address(url: str) -> str:
    """``host:port`` of a console URL (never its password); the URL itself when unparsable."""
    try:
        info = pg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', '5432')}"


class PgBouncerConsole:
    """Reads one PgBouncer's admin console.

    Args:
        alias: the Django database alias the pooler serves (for messages).
        url: the console's URL (``postgres://stats@127.0.0.1:6432/pgbouncer``); the user
            must be in PgBouncer's ``stats_users`` or ``admin_users``.
    """

    def __init__(self, alias: str, url: str) -> None:
        self.alias = alias
        self.url = url
        self.address = console_address(url)

    def _problem(self, kind: str, text: str) -> ConsoleError:
        return ConsoleError(
            PoolerUnavailable(
                self.alias, self.address, kind, f"PgBouncer console {self.address}: {text}"
            )
        )

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                cursor_factory=ClientCursor,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="dbconnmgr",
            )
        except psycopg.ProgrammingError as exc:  # an unparsable URL
            raise self._problem("other", f"bad URL ({_first_line(exc)})") from None
        except psycopg.OperationalError as exc:
            raise self._classify(exc) from None
        try:
            yield conn
        finally:
            conn.close()

    def _classify(self, exc: psycopg.OperationalError) -> ConsoleError:
        text = _first_line(exc)
        lowered = str(exc).lower()
        if "not allowed" in lowered:
            return self._problem(
                "auth",
                "this user may not read the console: add it to PgBouncer's stats_users "
                "(or admin_users)",
            )
        if "authentication failed" in lowered or "password" in lowered:
            return self._problem("auth", f"authentication failed ({text})")
        if "no such database" in lowered:
            return self._problem("not_console", f"{text}: the console's database is pgbouncer")
        if "timeout" in lowered:
            return self._problem("unreachable", f"no answer within {CONNECT_TIMEOUT}s")
        return self._problem("unreachable", text)

    def read(self) -> PoolerSnapshot:
        """SHOW POOLS, DATABASES, CONFIG, CLIENTS and VERSION, on one short connection.

        Raises:
            ConsoleError: unreachable, refused, or not a PgBouncer console.
        """
        with self._connect() as conn:
            try:
                pools = _rows(conn, "SHOW POOLS")
                databases = _rows(conn, "SHOW DATABASES")
                config = {str(r["key"]): str(r["value"]) for r in _rows(conn, "SHOW CONFIG")}
                clients = _rows(conn, "SHOW CLIENTS")
                version_rows = _rows(conn, "SHOW VERSION")
            except psycopg.errors.UndefinedObject:  # PostgreSQL: no parameter "pools"
                raise self._problem(
                    "not_console",
                    "this is a PostgreSQL database, not PgBouncer's console "
                    "(the console's database is pgbouncer, on PgBouncer's port)",
                ) from None
            except psycopg.Error as exc:
                raise self._problem("other", _first_line(exc)) from None
        return self._snapshot(pools, databases, config, clients, version_rows)

    def _snapshot(
        self,
        pools: list[dict[str, Any]],
        databases: list[dict[str, Any]],
        config: dict[str, str],
        clients: list[dict[str, Any]],
        version_rows: list[dict[str, Any]],
    ) -> PoolerSnapshot:
        by_name = {str(d["name"]): d for d in databases}
        default_size = _int(config.get("default_pool_size"))
        default_reserve = _int(config.get("reserve_pool_size"))
        read_pools = []
        for row in pools:
            database = str(row["database"])
            if database == "pgbouncer":  # the console's own pseudo-pool
                continue
            db = by_name.get(database, {})
            read_pools.append(
                Pool(
                    database=database,
                    user=str(row["user"]),
                    pool_mode=str(row.get("pool_mode") or db.get("pool_mode") or
                                  config.get("pool_mode", "session")),
                    pool_size=_int(db.get("pool_size"), default_size),
                    reserve_pool_size=_int(db.get("reserve_pool"), default_reserve),
                    active_clients=_int(row.get("cl_active")),
                    waiting_clients=_int(row.get("cl_waiting")),
                    active_servers=_int(row.get("sv_active")),
                    idle_servers=_int(row.get("sv_idle")),
                    used_servers=_int(row.get("sv_used")),
                    other_servers=_int(row.get("sv_tested")) + _int(row.get("sv_login")),
                    maxwait_seconds=maxwait_from(row),
                )
            )  # fmt: skip
        by_app: dict[tuple[str, str], int] = {}
        for row in clients:
            if row.get("database") == "pgbouncer":
                continue
            key = (str(row.get("application_name") or "(none)"), str(row.get("state") or ""))
            by_app[key] = by_app.get(key, 0) + 1
        version = str(version_rows[0].get("version", "")) if version_rows else ""
        return PoolerSnapshot(
            alias=self.alias,
            console=self.address,
            version=version,
            taken_at=datetime.now(UTC),
            pools=tuple(read_pools),
            config={k: config[k] for k in CONFIG_KEYS if k in config},
            database_max_connections={
                name: _int(d.get("max_connections"))
                for name, d in by_name.items()
                if name != "pgbouncer" and _int(d.get("max_connections")) > 0
            },
            clients_by_application=by_app,
        )


def _rows(conn: psycopg.Connection[Any], statement: str) -> list[dict[str, Any]]:
    cur = conn.execute(statement)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__).strip()


def read_console(alias: str, url: str) -> PoolerSnapshot | PoolerUnavailable:
    """Read the console; a problem is returned (not raised) so the server part still reports."""
    try:
        return PgBouncerConsole(alias, url).read()
    except ConsoleError as exc:
        return exc.problem
