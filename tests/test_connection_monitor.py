"""connection_monitor against the real server: counts, leaks, labels, isolation, logging."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings

import dbconnmgr
from dbconnmgr import MonitorStats, UnknownDatabaseAlias, connection_monitor
from dbconnmgr.block_monitor import label_from_query
from devtools.pgserver import PgServer
from tests.conftest import database_alias


@pytest.fixture(autouse=True)
def _fresh_main_connection() -> Iterator[None]:
    """Each test starts with the main thread's Django connection closed."""
    connections["default"].close()
    yield
    connections["default"].close()


def query(sql: str = "SELECT 1", params: list[int] | None = None) -> list[tuple[object, ...]]:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[object, ...]] = cursor.fetchall()
        return rows


def current_label() -> str | None:
    """The label the server received on this very statement."""
    (text,) = query("SELECT current_query()")[0]
    return label_from_query(str(text))


def test_threads_opening_n_and_closing_m_are_counted_exactly() -> None:
    n, m = 5, 2
    queried = threading.Barrier(n + 1)
    release = threading.Event()

    def worker(close: bool) -> None:
        query()
        query()
        if close:
            connections["default"].close()
        queried.wait(10)
        release.wait(10)
        if not close:  # the test's own cleanup, after the block has exited
            connections["default"].close()

    with connection_monitor("t-n-m", using="default", follow_threads=True) as stats:
        threads = [
            threading.Thread(target=worker, args=(i < m,), name=f"t-worker-{i}") for i in range(n)
        ]
        for t in threads:
            t.start()
        queried.wait(10)
    release.set()
    for t in threads:
        t.join(10)

    assert stats.completed
    default = stats.by_alias["default"]
    assert default.opened == n
    assert default.closed == m
    assert default.queries == 2 * n
    assert default.reused == 0
    assert default.leaked == n - m
    assert sorted(leak.thread_name for leak in stats.leaks) == [
        f"t-worker-{i}" for i in range(m, n)
    ]
    assert all(leak.thread_alive for leak in stats.leaks)
    # The open leaked sessions are on the server when the block ends.
    assert default.server_before is not None and default.server_after is not None
    assert default.server_after - default.server_before >= n - m
    assert stats.aliases == ("default",)


def test_a_finished_thread_that_never_closed_is_a_leak(caplog: pytest.LogCaptureFixture) -> None:
    def forgetful() -> None:
        query()  # and no connections.close(): the classic leak

    caplog.set_level(logging.INFO, logger="dbconnmgr.monitor")
    with connection_monitor("t-leak", sample_server=False, follow_threads=True) as stats:
        thread = threading.Thread(target=forgetful, name="t-forgetful")
        thread.start()
        thread.join(10)
    gc.collect()  # the finished thread's wrapper is garbage now: let its session go

    assert stats.leaked == 1
    (leak,) = stats.leaks
    assert (leak.alias, leak.thread_name, leak.thread_alive) == ("default", "t-forgetful", False)
    records = [r for r in caplog.records if r.name == "dbconnmgr.monitor"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "'t-leak'" in records[0].getMessage()
    assert "LEAKED 1: default@t-forgetful (finished)" in records[0].getMessage()
    assert records[0].dbconnmgr_monitor is stats  # type: ignore[attr-defined]


def test_a_clean_block_logs_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dbconnmgr.monitor")
    with connection_monitor("t-clean", using="default"):
        query()
        query()
    records = [r for r in caplog.records if r.name == "dbconnmgr.monitor"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert message.startswith("connection_monitor 't-clean': ")
    # The main thread's connection was opened by the monitor's own "before" statement.
    assert "[default] opened=0 reused=1 closed=0 queries=2 " in message
    assert "usable" in message


def test_utilization_over_the_warning_threshold_logs_a_warning(
    caplog: pytest.LogCaptureFixture, dsn: str
) -> None:
    caplog.set_level(logging.INFO, logger="dbconnmgr.monitor")
    with (
        psycopg.connect(dsn),  # one client besides the reader (which is not counted)
        override_settings(DBCONNMGR={"THRESHOLDS": {"UTILIZATION_WARNING": 0.1}}),
        connection_monitor("t-busy", using="default") as stats,
    ):
        query()
    assert stats.utilization_warning
    assert stats.warning_threshold == 0.1
    (record,) = [r for r in caplog.records if r.name == "dbconnmgr.monitor"]
    assert record.levelno == logging.WARNING
    assert "utilization >= 0.1%" in record.getMessage()

    caplog.clear()
    with connection_monitor("t-calm", using="default") as stats:
        query()
    assert not stats.utilization_warning
    assert [r.levelno for r in caplog.records if r.name == "dbconnmgr.monitor"] == [logging.INFO]


def test_reused_and_closed_on_the_blocks_own_thread() -> None:
    query()  # opened before the block
    with connection_monitor("t-reuse", using="default", sample_server=False) as stats:
        query()
        query()
    assert (stats.opened, stats.reused, stats.closed, stats.queries) == (0, 1, 0, 2)

    with connection_monitor("t-close", using="default", sample_server=False) as stats:
        connections["default"].close()  # closing without a query is still a close
        query()  # opens a new one
    assert (stats.opened, stats.reused, stats.closed, stats.queries) == (1, 0, 1, 1)


def test_server_sampling_adds_exactly_two_statements_and_none_when_off() -> None:
    query()

    def statements(sample: bool) -> int:
        with (
            CaptureQueriesContext(connections["default"]) as captured,
            connection_monitor("t-rt", using="default", sample_server=sample) as stats,
        ):
            query()
        assert stats.queries == 1  # the monitor's own statements are not the block's
        return len(captured.captured_queries)

    assert statements(False) == 1
    assert statements(True) == 3
    with override_settings(DBCONNMGR={"MONITOR_SAMPLE_SERVER": False}):
        assert statements(None) == 1  # type: ignore[arg-type]


def test_server_figures_are_fresh_inside_a_transaction(dsn: str) -> None:
    extra: list[psycopg.Connection] = []
    try:
        with transaction.atomic(), connection_monitor("t-atomic", using="default") as stats:
            # PostgreSQL caches pg_stat_activity for the rest of a transaction: the
            # "after" figure must still see these three.
            extra.extend(psycopg.connect(dsn, application_name="t-atomic") for _ in range(3))
    finally:
        for conn in extra:
            conn.close()
    assert stats.by_alias["default"].server_delta == 3


def test_server_counts_exclude_the_reading_connection(small_server: PgServer) -> None:
    # a server of its own: this thread's connection (which reads the counts) is its only
    # client before the block; the block adds two more. 3 usable slots.
    extra: list[psycopg.Connection] = []
    try:
        with (
            database_alias("alone", small_server.url),
            connection_monitor("t-own", using="alone") as stats,
        ):
            extra.extend(psycopg.connect(small_server.dsn()) for _ in range(2))
    finally:
        for conn in extra:
            conn.close()
    alone = stats.by_alias["alone"]
    assert (alone.server_before, alone.server_after, alone.server_delta) == (0, 2, 2)
    assert alone.sampling_opened == 1  # the reader was opened for the sample, not counted
    assert alone.utilization_percent == 66.7  # 2 of 3 usable slots


def test_label_is_visible_from_another_session_while_the_block_runs(dsn: str) -> None:
    label = "t-label/50% done"  # '/', '%' and a space survive, with and without params
    inside = threading.Barrier(2)
    done = threading.Barrier(2)
    seen: dict[str, object] = {}

    def block() -> None:
        with connection_monitor(label, using="default", sample_server=False) as stats:
            query("SELECT %s", [1])
            seen["pid"] = query("SELECT pg_backend_pid()")[0][0]
            inside.wait(10)
            done.wait(10)
        seen["stats"] = stats
        connections["default"].close()

    thread = threading.Thread(target=block)
    thread.start()
    inside.wait(10)
    try:
        with psycopg.connect(dsn, autocommit=True) as other:
            row = other.execute(
                "SELECT state, query FROM pg_stat_activity WHERE pid = %s", (seen["pid"],)
            ).fetchone()
    finally:
        done.wait(10)
        thread.join(10)
    assert row is not None
    state, text = row
    assert state == "idle"
    assert text == "/*dbconnmgr_monitor='t-label%2F50%25%20done'*/ SELECT pg_backend_pid()"
    assert label_from_query(text) == label
    stats = seen["stats"]
    assert isinstance(stats, MonitorStats) and stats.queries == 2


def test_a_running_labelled_query_and_its_exception(dsn: str) -> None:
    """A long query shows its label while active; cancelled, its error leaves the block."""
    outcome: dict[str, object] = {}

    def block() -> None:
        monitor = connection_monitor("t-active", using="default", sample_server=False)
        try:
            with monitor:
                query("SELECT pg_sleep(60)")
        except OperationalError as exc:
            outcome["error"] = exc
        outcome["stats"] = monitor.last_stats
        connections["default"].close()

    thread = threading.Thread(target=block)
    thread.start()
    try:
        with psycopg.connect(dsn, autocommit=True) as other:
            deadline = time.monotonic() + 10
            row = None
            while row is None and time.monotonic() < deadline:
                row = other.execute(
                    "SELECT pid, query FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '/*dbconnmgr_monitor=''t-active''*/%%'"
                ).fetchone()
                time.sleep(0.02)
            assert row is not None, "the labelled query never showed up as active"
            assert label_from_query(row[1]) == "t-active"
            other.execute("SELECT pg_cancel_backend(%s)", (row[0],))
    finally:
        thread.join(10)
    assert "canceling statement" in str(outcome["error"])
    stats = outcome["stats"]
    assert isinstance(stats, MonitorStats)
    assert stats.exception == "OperationalError"
    assert stats.queries == 1
    assert stats.by_alias["default"].query_seconds > 0


def test_exceptions_propagate_unchanged_and_the_block_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class JobFailed(Exception):
        pass

    error = JobFailed("boom")
    caplog.set_level(logging.INFO, logger="dbconnmgr.monitor")
    monitor = connection_monitor("t-raise", using="default", sample_server=False)
    with pytest.raises(JobFailed) as raised, monitor as stats:
        query()
        raise error
    assert raised.value is error
    assert raised.value.__context__ is None  # nothing of ours chained onto it
    assert stats.completed and stats.queries == 1
    assert stats.exception and stats.exception.endswith("JobFailed")
    (record,) = [r for r in caplog.records if r.name == "dbconnmgr.monitor"]
    assert "raised " in record.getMessage() and "JobFailed" in record.getMessage()


def test_nested_blocks_count_inside_out_and_label_with_the_innermost() -> None:
    assert current_label() is None
    with connection_monitor("t-outer", using="default", sample_server=False) as outer:
        assert current_label() == "t-outer"
        with connection_monitor("t-inner", using="default", sample_server=False) as inner:
            assert current_label() == "t-inner"
            query()
        assert current_label() == "t-outer"
    assert current_label() is None
    assert inner.queries == 2
    assert outer.queries == 2 + 2
    # The connection opened before the blocks (first current_label()): reused by both.
    assert (outer.opened, outer.reused, inner.opened, inner.reused) == (0, 1, 0, 1)


def test_concurrent_blocks_in_threads_do_not_mix() -> None:
    count = 4
    together = threading.Barrier(count)
    results: dict[int, MonitorStats] = {}

    def helper() -> None:
        query()
        connections["default"].close()

    def job(i: int) -> None:
        with connection_monitor(
            f"t-conc-{i}", using="default", sample_server=False, follow_threads=True
        ) as stats:
            together.wait(10)
            for _ in range(i + 1):
                assert current_label() == f"t-conc-{i}"
            helpers = [threading.Thread(target=helper) for _ in range(i)]
            for h in helpers:
                h.start()
            for h in helpers:
                h.join(10)
            together.wait(10)
        results[i] = stats
        connections["default"].close()

    threads = [threading.Thread(target=job, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for i in range(count):
        stats = results[i]
        assert stats.queries == (i + 1) + i, i
        assert stats.opened == 1 + i, i  # its own thread's connection and its helpers'
        assert stats.closed == i, i
        assert stats.leaked == 0, i


def test_concurrent_blocks_in_asyncio_tasks_do_not_mix() -> None:
    async def job(i: int, gate: asyncio.Barrier) -> MonitorStats:
        async with connection_monitor(f"t-task-{i}", using="default") as stats:
            await gate.wait()
            for _ in range(i + 1):
                assert await sync_to_async(current_label)() == f"t-task-{i}"
                await asyncio.sleep(0)  # let the other tasks run in between
            await gate.wait()
        return stats

    async def main() -> list[MonitorStats]:
        gate = asyncio.Barrier(3)
        return await asyncio.gather(*(job(i, gate) for i in range(3)))

    results = asyncio.run(main())
    for i, stats in enumerate(results):
        assert stats.label == f"t-task-{i}"
        assert stats.queries == i + 1, i
        assert stats.leaked == 0
        assert stats.by_alias["default"].server_before is not None


def test_decorator_sync_and_async(caplog: pytest.LogCaptureFixture) -> None:
    finished: list[MonitorStats] = []

    @connection_monitor("t-deco", using="default", sample_server=False, on_exit=finished.append)
    def twice() -> int:
        query()
        query()
        return 42

    @connection_monitor("t-deco-async", using="default", sample_server=False)
    async def once() -> str:
        await sync_to_async(query)()
        return "ok"

    assert twice() == 42
    assert twice() == 42
    assert [s.queries for s in finished] == [2, 2]
    assert asyncio.run(once()) == "ok"
    assert once.__name__ == "once"


def test_unknown_alias_is_a_clear_error() -> None:
    with pytest.raises(UnknownDatabaseAlias, match="'nope'"), connection_monitor("t", "nope"):
        pass


def test_aliases_without_a_backend_are_counted_not_sampled() -> None:
    # Every alias: default (PostgreSQL) and legacy (SQLite).
    with connection_monitor("t-all") as stats, connections["legacy"].cursor() as cursor:
        cursor.execute("SELECT 1")
    assert stats.aliases == ("default", "legacy")
    legacy = stats.by_alias["legacy"]
    assert (legacy.opened, legacy.queries, legacy.server_before) == (1, 1, None)
    assert stats.by_alias["default"].server_before is not None
    connections["legacy"].close()


def test_public_names_and_stats_as_dict() -> None:
    assert dbconnmgr.connection_monitor is connection_monitor
    assert {"connection_monitor", "MonitorStats"} <= set(dbconnmgr.__all__)
    with connection_monitor("t-dict", using="default") as stats:
        query()
    data = stats.as_dict()
    assert data["label"] == "t-dict"
    assert data["queries"] == 1
    assert data["by_alias"]["default"]["server_before"] >= 0


def test_executor_workers_started_by_the_block_belong_to_it() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def tidy() -> None:
        query()
        connections["default"].close()

    with (
        connection_monitor(
            "t-pool", using="default", sample_server=False, follow_threads=True
        ) as stats,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="t-pool") as pool,
    ):
        list(pool.map(lambda _: tidy(), range(6)))
    assert (stats.queries, stats.opened, stats.closed, stats.leaked) == (6, 6, 6, 0)

    with (
        connection_monitor(
            "t-pool-leak", using="default", sample_server=False, follow_threads=True
        ) as stats,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="t-pool-leak") as pool,
    ):
        pool.submit(query).result()
    gc.collect()
    assert stats.leaked == 1
    assert stats.leaks[0].thread_name.startswith("t-pool-leak")


def test_import_dbconnmgr_stays_light() -> None:
    """settings.py may import dbconnmgr before Django is set up: no django.db import."""
    import subprocess
    import sys

    code = "import sys, dbconnmgr; assert 'django.db' not in sys.modules, 'django.db imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_threads_are_followed_only_when_asked_and_thread_start_is_put_back() -> None:
    original = threading.Thread.start

    def tidy() -> None:
        query()
        connections["default"].close()

    def run_in_thread(target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(10)

    with connection_monitor("t-not-followed", using="default", sample_server=False) as plain:
        assert threading.Thread.start is original  # nothing replaced without follow_threads
        run_in_thread(tidy)
    assert (plain.opened, plain.queries) == (0, 0)

    with connection_monitor(
        "t-followed", using="default", sample_server=False, follow_threads=True
    ) as followed:
        assert threading.Thread.start is not original
        run_in_thread(tidy)
    assert threading.Thread.start is original  # put back when the block exits
    assert (followed.opened, followed.queries, followed.closed) == (1, 1, 1)

    with (
        pytest.raises(ZeroDivisionError),
        connection_monitor("t-raises", using="default", sample_server=False, follow_threads=True),
    ):
        1 / 0  # noqa: B018
    assert threading.Thread.start is original


def test_a_thread_handed_the_context_belongs_to_the_block_without_following() -> None:
    import contextvars

    def forgetful() -> None:
        query()  # keeps its connection

    with connection_monitor("t-copied", using="default", sample_server=False) as stats:
        thread = threading.Thread(target=contextvars.copy_context().run, args=(forgetful,))
        thread.start()
        thread.join(10)
    gc.collect()
    # Counted and labelled, but only a thread started under follow_threads is a leak.
    assert (stats.opened, stats.queries, stats.leaked) == (1, 1, 0)
