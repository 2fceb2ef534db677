"""Fixtures for the MariaDB tests: one throwaway server per session, real client sessions.

Nothing is mocked: sessions are real mysqlclient connections held in known states.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import MySQLdb
import pytest

from devtools.mariadbserver import MariaDBServer, session_server
from tests.conftest import ROOT, database_alias

#: The alias the MySQL tests read through.
ALIAS = "maria"


@pytest.fixture(scope="session")
def mariadb() -> MariaDBServer:
    """The session's MariaDB server (max_connections 1100), removed at exit, with an InnoDB
    table ``probe`` (id, v) that sessions read to open a transaction."""
    server = session_server()
    server.sql(
        "CREATE TABLE IF NOT EXISTS dbconnmgr.probe (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
        "INSERT IGNORE INTO dbconnmgr.probe VALUES (1, 0);"
    )
    return server


@pytest.fixture
def maria_alias(mariadb: MariaDBServer) -> Iterator[str]:
    """Django alias ``maria`` on the session's server, as its administrator."""
    with database_alias(ALIAS, mariadb.url, options={"connect_timeout": 5}) as alias:
        yield alias


@dataclass
class MySession:
    """One real client session, held open by the test."""

    conn: Any
    id: int
    user: str
    thread: threading.Thread | None = None


@dataclass
class MySessions:
    """Opens real sessions in a wanted state; closes them all at teardown.

    States: ``idle``, ``idle in transaction`` (an InnoDB read in an open transaction),
    ``active`` (``SELECT SLEEP()`` running in a thread).
    """

    server: MariaDBServer
    opened: list[MySession] = field(default_factory=list)

    def open(
        self, state: str = "idle", *, user: str = "admin", password: str | None = None,
        sleep: float = 120,
    ) -> MySession:  # fmt: skip
        conn = MySQLdb.connect(**self.server.connect_kwargs(user, password))
        session = MySession(conn=conn, id=conn.thread_id(), user=user)
        cursor = conn.cursor()
        if state == "idle":
            cursor.execute("SELECT 1")
        elif state == "idle in transaction":
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT v FROM dbconnmgr.probe LOCK IN SHARE MODE")
        elif state == "active":

            def run() -> None:
                with contextlib.suppress(MySQLdb.Error):
                    conn.cursor().execute("SELECT SLEEP(%s)", (sleep,))

            session.thread = threading.Thread(target=run, daemon=True)
            session.thread.start()
        else:
            raise ValueError(state)
        self.opened.append(session)
        wait_for_state(self.server, session.id, state)
        return session

    def open_many(self, count: int, state: str = "idle", **kwargs: Any) -> list[MySession]:
        return [self.open(state, **kwargs) for _ in range(count)]

    def close_all(self) -> None:
        ids = [s.id for s in self.opened if s.thread is not None]
        if ids:
            with contextlib.closing(MySQLdb.connect(**self.server.connect_kwargs())) as admin:
                for thread_id in ids:
                    with contextlib.suppress(MySQLdb.Error):
                        admin.cursor().execute("KILL QUERY %s", (thread_id,))
        for s in self.opened:
            if s.thread is not None:
                s.thread.join(timeout=10)
            with contextlib.suppress(MySQLdb.Error):
                s.conn.close()
        self.opened.clear()


def state_of(server: MariaDBServer, thread_id: int) -> str | None:
    """The common-model state of thread ``thread_id`` now (None when gone)."""
    with contextlib.closing(MySQLdb.connect(**server.connect_kwargs())) as admin:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT p.COMMAND, t.trx_id IS NOT NULL FROM information_schema.PROCESSLIST p "
            "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
            "WHERE p.ID = %s",
            (thread_id,),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    if row[0] == "Sleep":
        return "idle in transaction" if row[1] else "idle"
    return "active" if row[0] == "Query" else row[0]


def wait_for_state(server: MariaDBServer, thread_id: int, state: str, timeout: float = 10) -> None:
    """Poll the processlist until thread ``thread_id`` is in ``state``.

    InnoDB refreshes its INNODB_TRX cache only after 100 ms without a read: poll slower.
    """
    deadline = time.monotonic() + timeout
    while (now := state_of(server, thread_id)) != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"thread {thread_id} never reached {state!r} (last: {now})")
        time.sleep(0.15)


@pytest.fixture
def mysessions(mariadb: MariaDBServer) -> Iterator[MySessions]:
    """Real sessions in chosen states on the session's server, closed at teardown."""
    factory = MySessions(mariadb)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def make_account(mariadb: MariaDBServer) -> Iterator[Callable[..., str]]:
    """Create an account (dropped at teardown): make_account(name, password, *grants,
    max_user_connections=0) -> its mysql:// URL."""
    created: list[str] = []

    def make(name: str, password: str = "pw", *grants: str, max_user_connections: int = 0) -> str:
        mariadb.sql(
            f"DROP USER IF EXISTS '{name}'@'%'; "
            f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}' "
            f"WITH MAX_USER_CONNECTIONS {int(max_user_connections)}; "
            f"GRANT SELECT ON dbconnmgr.* TO '{name}'@'%';"
            + "".join(f" GRANT {grant} ON *.* TO '{name}'@'%';" for grant in grants)
        )
        created.append(name)
        return mariadb.url_for(name, password)

    yield make
    for name in created:
        ids = mariadb.sql(f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{name}'")
        for thread_id in ids.split():
            with contextlib.suppress(Exception):
                mariadb.sql(f"KILL CONNECTION {int(thread_id)}")
        mariadb.sql(f"DROP USER IF EXISTS '{name}'@'%'")


def one_line(stderr: str) -> str:
    """The one non-empty line of ``stderr``; fails on more, or on a traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def manage(
    *args: str,
    database_url: str,
    timeout: float = 60,
    extra_env: dict[str, str] | None = None,
    settings_module: str = "example_project.settings",
) -> subprocess.CompletedProcess[str]:
    """Run ``python manage.py ARGS`` (example_project) with DATABASE_URL, no terminal."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings_module)
    env["DATABASE_URL"] = database_url
    env.pop("NO_COLOR", None)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
