"""MariaDB's database load: a sample's active sessions split by wait class from the
processlist states (backends/mysql/waits.py), against what the processlist showed for a
held mix: metadata-lock waiters, SLEEP() sleepers, idle sessions."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator

import MySQLdb
import pytest

from dbconnmgr.backends.mysql.waits import state_wait_class
from dbconnmgr.monitor_loop import Monitor
from devtools.mariadbserver import MariaDBServer
from tests.mysql.conftest import MySessions

pytestmark = [pytest.mark.mysql, pytest.mark.django_db(transaction=True)]


@contextlib.contextmanager
def metadata_lock_waiters(server: MariaDBServer) -> Iterator[list[int]]:
    """A transaction that read a table, a LOCK TABLES ... WRITE waiting for its metadata
    lock, and a SELECT queued behind that: two threads "Waiting for table metadata lock"."""
    setup = MySQLdb.connect(**server.connect_kwargs())
    setup.cursor().execute("CREATE TABLE IF NOT EXISTS dbconnmgr.load_probe (id int)")
    setup.close()
    holder = MySQLdb.connect(**server.connect_kwargs())
    holder.cursor().execute("START TRANSACTION")
    holder.cursor().execute("SELECT * FROM dbconnmgr.load_probe")
    waiters = [MySQLdb.connect(**server.connect_kwargs()) for _ in range(2)]
    statements = ("LOCK TABLES dbconnmgr.load_probe WRITE", "SELECT * FROM dbconnmgr.load_probe")

    def run(conn: MySQLdb.Connection, sql: str) -> None:
        with contextlib.suppress(MySQLdb.Error):
            conn.cursor().execute(sql)

    threads = []
    ids = [c.thread_id() for c in waiters]
    for conn, thread_id, sql in zip(waiters, ids, statements, strict=True):
        threads.append(threading.Thread(target=run, args=(conn, sql), daemon=True))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while states(server, [thread_id]) != ["Waiting for table metadata lock"]:
            assert time.monotonic() < deadline, "the waiter never waited"
            time.sleep(0.05)
    try:
        yield ids
    finally:
        holder.rollback()
        for t in threads:
            t.join(timeout=10)
        with contextlib.suppress(MySQLdb.Error):
            waiters[0].cursor().execute("UNLOCK TABLES")
        for c in [*waiters, holder]:
            with contextlib.suppress(MySQLdb.Error):
                c.close()


def states(server: MariaDBServer, ids: list[int]) -> list[str]:
    with contextlib.closing(MySQLdb.connect(**server.connect_kwargs())) as admin:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID IN ("
            + ",".join(str(int(i)) for i in ids)
            + ")"
        )
        return [row[0] for row in cursor.fetchall()]


def processlist_classes(server: MariaDBServer, exclude: int) -> Counter[str]:
    """The running threads of the processlist now, by the wait class of their State."""
    with contextlib.closing(MySQLdb.connect(**server.connect_kwargs())) as admin:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT STATE FROM information_schema.PROCESSLIST WHERE COMMAND NOT IN "
            "('Sleep', 'Daemon') AND ID NOT IN (%s, CONNECTION_ID())",
            (exclude,),
        )
        return Counter(state_wait_class(row[0]) or "CPU" for row in cursor.fetchall())


def test_the_split_of_a_sample_is_what_the_processlist_shows(
    maria_alias: str, mariadb: MariaDBServer, mysessions: MySessions
) -> None:
    mysessions.open_many(2, "idle")
    mysessions.open_many(2, "active")  # SELECT SLEEP(): "User sleep"
    with metadata_lock_waiters(mariadb):
        monitor = Monitor(maria_alias, 1.0)
        try:
            sample = monitor.sample()
            assert sample.snapshot is not None
            shown = processlist_classes(mariadb, exclude=sample.snapshot.own_pid)
        finally:
            monitor.close()
    assert sample.load is not None
    assert sample.load.by_wait_class == dict(shown) == {"Lock": 2, "Timeout": 2}
    assert sample.load.active_sessions == sample.active_connections == 4
    # MariaDB names no application: every session is "(none)"
    assert sample.load.by_application == {"(none)": 4}
    waiting = {c.wait_event for c in sample.snapshot.waiting_connections}
    assert waiting == {"Waiting for table metadata lock"}


def test_unnamed_states_are_cpu_and_waits_are_named_by_what_they_wait_for() -> None:
    assert state_wait_class("Sending data") is None
    assert state_wait_class("executing") is None
    assert state_wait_class("") is None
    assert state_wait_class("Waiting for table metadata lock") == "Lock"
    assert state_wait_class("Waiting for some future lock") == "Lock"
    assert state_wait_class("Waiting for an event") == "IPC"
    assert state_wait_class("User sleep") == "Timeout"
