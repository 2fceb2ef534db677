"""Fixtures: real PostgreSQL sessions in known states, throwaway servers, manage.py runs.

Nothing here mocks the database: sessions are real psycopg connections to the server the
suite started (tests/settings.py) or to ``$DATABASE_URL``.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg import conninfo as pg_conninfo

from devtools.pgbouncerserver import PgBouncerServer
from devtools.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent

#: The engine this run tests (scripts/test sets it per stack): ``postgresql`` runs every test
#: but tests/mysql/ (tests/redshift/ included: its emulation is a PostgreSQL 17+ server of its
#: own); ``mariadb`` runs tests/mysql/ and the engine-neutral pure tests only.
ENGINE = os.environ.get("DBCONNMGR_DB", "postgresql")
collect_ignore = ["redshift"] if ENGINE == "mariadb" else ["mysql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the MariaDB stack, keep the ``mysql`` and ``engine_neutral`` tests only."""
    if ENGINE != "mariadb":
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        wanted = item.get_closest_marker("mysql") or item.get_closest_marker("engine_neutral")
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _allow_database(django_db_blocker: object) -> Iterator[None]:
    """These tests are about the server itself: every test may reach it."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        yield


def superuser_dsn() -> str:
    """libpq conninfo of the suite's server, as the role DATABASE_URL names."""
    db = settings.DATABASES["default"]
    return pg_conninfo.make_conninfo(
        host=db["HOST"], port=str(db["PORT"]), user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"],
    )  # fmt: skip


@dataclass
class Session:
    """One real client session, held open by the test."""

    conn: psycopg.Connection
    pid: int
    application_name: str
    thread: threading.Thread | None = None


@dataclass
class Sessions:
    """Opens real sessions in a wanted state and closes them all at teardown.

    States: ``idle``, ``active`` (a ``pg_sleep`` running in a thread), ``idle in
    transaction``, ``idle in transaction (aborted)``.
    """

    dsn: str
    opened: list[Session] = field(default_factory=list)

    def open(
        self,
        application_name: str,
        state: str = "idle",
        *,
        dsn: str | None = None,
        sleep: float = 120,
    ) -> Session:
        conn = psycopg.connect(
            dsn or self.dsn, application_name=application_name, autocommit=state == "idle"
        )
        pid = conn.info.backend_pid
        session = Session(conn=conn, pid=pid, application_name=application_name)
        if state == "idle" or state == "idle in transaction":
            conn.execute("SELECT 1")
        elif state == "idle in transaction (aborted)":
            with contextlib.suppress(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1/0")
        elif state == "active":
            conn.autocommit = True

            def run() -> None:
                with contextlib.suppress(psycopg.Error):  # cancelled at teardown
                    conn.execute("SELECT pg_sleep(%s)", (sleep,))

            session.thread = threading.Thread(target=run, daemon=True)
            session.thread.start()
        else:
            raise ValueError(f"unknown state {state!r}")
        self.opened.append(session)
        wait_for_state(self.dsn, pid, state)
        return session

    def open_many(self, count: int, application_name: str, state: str = "idle") -> list[Session]:
        return [self.open(application_name, state) for _ in range(count)]

    def close_all(self) -> None:
        if any(s.thread for s in self.opened):
            with psycopg.connect(self.dsn, autocommit=True) as admin:
                for s in self.opened:
                    if s.thread is not None:
                        admin.execute("SELECT pg_cancel_backend(%s)", (s.pid,))
        for s in self.opened:
            if s.thread is not None:
                s.thread.join(timeout=10)
            s.conn.close()
        self.opened.clear()


def wait_for_state(dsn: str, pid: int, state: str, timeout: float = 10) -> None:
    """Poll pg_stat_activity until backend ``pid`` reports ``state``."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as admin:
        while True:
            row = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == state:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backend {pid} never reached {state!r} (last: {row})")
            time.sleep(0.02)


@pytest.fixture
def dsn() -> str:
    """Superuser conninfo of the suite's server."""
    return superuser_dsn()


@pytest.fixture
def sessions(dsn: str) -> Iterator[Sessions]:
    """Real sessions in chosen states, closed at teardown."""
    factory = Sessions(dsn)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def make_role(dsn: str) -> Iterator[object]:
    """Create a login role (dropped at teardown): make_role(name, password, *grants)."""
    created: list[str] = []

    def make(name: str, password: str = "pw", *grants: str, superuser: bool = False) -> str:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
            admin.execute(
                f'CREATE ROLE "{name}" LOGIN {"SUPERUSER" if superuser else ""} '
                f"PASSWORD '{password}'"
            )
            for grant in grants:
                admin.execute(f'GRANT {grant} TO "{name}"')
        created.append(name)
        info = pg_conninfo.conninfo_to_dict(dsn)
        return pg_conninfo.make_conninfo(dsn, user=name, password=password, dbname=info["dbname"])

    yield make
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name in created:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def dsn_to_url(dsn: str) -> str:
    """postgres:// URL for DATABASE_URL from a libpq conninfo."""
    d = pg_conninfo.conninfo_to_dict(dsn)
    return f"postgres://{d['user']}:{d['password']}@{d['host']}:{d['port']}/{d['dbname']}"


def manage(
    *args: str,
    database_url: str | None = None,
    settings_module: str = "example_project.settings",
    timeout: float = 60,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python manage.py ARGS`` as a user would, without a terminal."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["DATABASE_URL"] = database_url or dsn_to_url(superuser_dsn())
    env.pop("NO_COLOR", None)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run_with_pooled_alias(script: str, dsn: str) -> dict[str, Any]:
    """Run ``script`` in a fresh Python under tests.settings_pool (alias ``pooled`` on
    ``dsn``'s database) and return the JSON document it prints."""
    import json

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="tests.settings_pool", DATABASE_URL=dsn_to_url(dsn)
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def small_server() -> Iterator[PgServer]:
    """A throwaway server of its own with max_connections=6 (3 reserved for superusers)."""
    server = PgServer(max_connections=6, superuser_reserved_connections=3).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def database_alias(alias: str, url: str, options: dict[str, Any] | None = None) -> Iterator[str]:
    """Make ``url`` reachable as Django database alias ``alias`` for the block.

    An alias that already exists is put back afterwards, with its open connection.
    ``options`` replace the PostgreSQL test OPTIONS (application_name, connect_timeout).
    """
    import environ
    from django.db import connections

    local = connections._connections  # type: ignore[attr-defined]  # per-thread wrappers
    previous = connections.settings.get(alias)
    previous_conn = getattr(local, alias, None)
    config = connections.configure_settings(
        {"default": {"ENGINE": "django.db.backends.dummy"}, alias: environ.Env.db_url_config(url)}
    )[alias]
    config["OPTIONS"] = (
        {"application_name": "dbconnmgr-tests", "connect_timeout": 5}
        if options is None
        else options
    )
    connections.settings[alias] = config
    if previous_conn is not None:
        delattr(local, alias)
    try:
        yield alias
    finally:
        conn = getattr(local, alias, None)
        if conn is not None:
            conn.close()
            delattr(local, alias)
        if previous is None:
            connections.settings.pop(alias, None)
        else:
            connections.settings[alias] = previous
        if previous_conn is not None:
            setattr(local, alias, previous_conn)


@pytest.fixture(scope="module")
def health_server() -> Iterator[PgServer]:
    """A server of its own for exact counts: max_connections 20, 3 reserved -> 17 usable."""
    server = PgServer(max_connections=20, superuser_reserved_connections=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def held(health_server: PgServer) -> Iterator[Sessions]:
    """Sessions on the health server (superuser), closed at teardown."""
    factory = Sessions(health_server.dsn())
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def health_alias(health_server: PgServer) -> Iterator[str]:
    """Django alias ``health`` on :func:`health_server` (superuser)."""
    with database_alias("health", health_server.url) as alias:
        yield alias


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's test database, with leftover sessions ended before it is dropped.

    Some tests leave a connection open on purpose (connection_monitor's leak detection
    needs a thread that never closes its connection); DROP DATABASE would refuse.
    """
    yield
    dsn = superuser_dsn()
    test_db = pg_conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, dbname="postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (test_db,),
        )


# -- PgBouncer ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bouncer_upstream() -> Iterator[PgServer]:
    """The PostgreSQL behind :func:`bouncer`: max_connections 20, 3 reserved -> 17 usable."""
    server = PgServer(max_connections=20, superuser_reserved_connections=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def bouncer(bouncer_upstream: PgServer) -> Iterator[PgBouncerServer]:
    """A throwaway PgBouncer (transaction mode, default_pool_size 2) in front of
    :func:`bouncer_upstream`; installed from Debian's packages when missing."""
    server = PgBouncerServer(bouncer_upstream, pool_mode="transaction", default_pool_size=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def drain_terminal(master: int) -> bytes:
    """What is left to read on a pseudo-terminal's ``master`` side after the child ended."""
    output = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child's side is closed
            break
        if not chunk:
            break
        output += chunk
    return output
