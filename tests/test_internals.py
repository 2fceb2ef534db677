"""The other libraries' internals dbconnmgr relies on (dbconnmgr/internals.py), one test each.

Each test asserts that the attribute still exists with the shape used and still behaves as
relied on, on every stack the suite runs (Django 5.2 / Python 3.11, Django 6.1 / Python
3.12): a release that changes one fails here, by name.
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connections
from psycopg_pool import ConnectionPool

from dbconnmgr import internals
from tests.conftest import ROOT, database_alias, dsn_to_url, superuser_dsn


def test_open_pool_reads_djangos_pools_without_creating_one() -> None:
    with database_alias("t_internals_pool", dsn_to_url(superuser_dsn()), {"pool": True}):
        # PostgreSQL's DatabaseWrapper: pool, close_pool(), _connection_pools are not on
        # the base class the stubs type connections[...] as.
        wrapper: Any = connections["t_internals_pool"]
        assert isinstance(type(wrapper)._connection_pools, dict)
        assert internals.open_pool(wrapper) is None  # reading does not create it
        assert "t_internals_pool" not in type(wrapper)._connection_pools
        pool = wrapper.pool  # the public property creates it
        assert isinstance(pool, ConnectionPool)
        assert internals.open_pool(wrapper) is pool
        wrapper.close_pool()
        assert internals.open_pool(wrapper) is None
    assert internals.open_pool(connections["default"]) is None  # unpooled


def test_idle_pool_connections_are_the_pools_idle_ones() -> None:
    with ConnectionPool(superuser_dsn(), min_size=1, max_size=2, open=True) as pool:
        pool.wait(10)
        with pool.connection() as held:
            assert held not in internals.idle_pool_connections(pool)
        idle = internals.idle_pool_connections(pool)
        assert held in idle
        assert all(isinstance(c, psycopg.Connection) for c in idle)
        assert len(idle) == pool.get_stats()["pool_available"]
    assert internals.idle_pool_connections(object()) == []


def test_the_pool_connects_through_the_class_set_before_it_opens() -> None:
    class Marked(psycopg.Connection):
        pass

    pool = ConnectionPool(superuser_dsn(), min_size=1, max_size=1, open=False)
    parents: list[type[Any]] = []

    def make(parent: type[Any]) -> type[Any]:
        parents.append(parent)
        return Marked

    assert internals.set_pool_connection_class(pool, make) is Marked
    assert issubclass(parents[0], psycopg.Connection)
    pool.open(wait=True, timeout=10)
    try:
        with pool.connection() as conn:
            assert type(conn) is Marked
    finally:
        pool.close()


def test_an_execute_wrapper_added_at_the_front_stays_under_djangos_own() -> None:
    calls: list[str] = []

    def ours(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        calls.append("ours")
        return execute(sql, params, many, ctx)

    def theirs(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        calls.append("theirs")
        return execute(sql, params, many, ctx)

    connection = connections["default"]
    assert isinstance(connection.execute_wrappers, list)
    try:
        internals.add_execute_wrapper(connection, ours)
        internals.add_execute_wrapper(connection, ours)  # once only
        assert connection.execute_wrappers.count(ours) == 1
        with connection.execute_wrapper(theirs), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert calls == ["ours", "theirs"]  # the list's order is the call order
        assert ours in connection.execute_wrappers  # execute_wrapper() popped its own
        assert theirs not in connection.execute_wrappers
    finally:
        connection.execute_wrappers.remove(ours)


def test_psycopg_still_logs_a_failing_pipeline_exit_as_filtered() -> None:
    from psycopg import _pipeline

    assert _pipeline.logger is logging.getLogger("psycopg")
    # The record internals.quiet_pipeline_exit() drops: this message, the pipeline first.
    assert '"error ignored terminating %r: %s", self' in inspect.getsource(_pipeline)
    logger = logging.getLogger("psycopg")
    before = list(logger.filters)
    with internals.quiet_pipeline_exit(), internals.quiet_pipeline_exit():
        assert len(logger.filters) == len(before) + 1  # one filter, however many users
    assert logger.filters == before


def test_thread_start_is_replaced_and_put_back() -> None:
    original = threading.Thread.start
    seen: list[str] = []

    def make(start: internals.ThreadStart) -> internals.ThreadStart:
        def counting(thread: threading.Thread) -> None:
            seen.append(thread.name)
            start(thread)

        return counting

    replacement = internals.replace_thread_start(make)
    try:
        thread = threading.Thread(target=lambda: None, name="t-internals")
        thread.start()
        thread.join(10)
        assert seen == ["t-internals"]
    finally:
        assert internals.restore_thread_start(replacement, original)
    assert threading.Thread.start is original
    assert not internals.restore_thread_start(replacement, original)  # not ours any more


def test_importing_and_setting_up_dbconnmgr_installs_nothing_process_wide() -> None:
    script = """
import logging, threading
import psycopg
filters = list(logging.getLogger("psycopg").filters)
start = threading.Thread.start
import dbconnmgr, dbconnmgr.backends.postgresql, dbconnmgr.block_monitor, dbconnmgr.metrics
import dbconnmgr.db.postgresql.base, dbconnmgr.actions, dbconnmgr.process_stats
assert logging.getLogger("psycopg").filters == filters, "import"
import django
django.setup()
assert logging.getLogger("psycopg").filters == filters, "ready"
assert threading.Thread.start is start, "ready"
with dbconnmgr.connection_monitor("t", sample_server=False):
    assert threading.Thread.start is start, "a block without follow_threads"
print("ok")
"""
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": dsn_to_url(superuser_dsn())}
    import os

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", internals.__all__)
def test_every_internal_has_a_docstring_naming_the_versions_checked(name: str) -> None:
    doc = inspect.getdoc(getattr(internals, name)) or ""
    assert "Checked on" in doc, name
