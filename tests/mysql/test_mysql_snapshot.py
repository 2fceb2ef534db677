"""Snapshots of a real MariaDB server: states, slots, limits, visibility, status figures."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable

import MySQLdb
import pytest

from dbconnmgr import take_snapshot
from dbconnmgr.backends import get_backend
from dbconnmgr.core.snapshot import Connection, Snapshot
from devtools.mariadbserver import MariaDBServer
from tests.conftest import database_alias
from tests.mysql.conftest import MySessions, manage

pytestmark = pytest.mark.mysql


def test_states_map_to_the_common_model(maria_alias: str, mysessions: MySessions) -> None:
    idle = mysessions.open("idle")
    in_txn = mysessions.open("idle in transaction")
    active = mysessions.open("active")
    snap = take_snapshot(maria_alias)
    by_id = {c.pid: c for c in snap.connections}
    assert by_id[idle.id].state == "idle"
    assert by_id[in_txn.id].state == "idle in transaction"
    assert by_id[in_txn.id].transaction_seconds is not None
    assert by_id[active.id].state == "active"
    assert by_id[active.id].running_seconds is not None
    assert "SLEEP" in (by_id[active.id].query or "")
    assert snap.own_pid not in {c.pid for c in snap.others()}
    assert snap.vendor == "mysql" and snap.visibility == "full"
    assert snap.by_state()["idle in transaction"] >= 1
    assert get_backend(maria_alias).capabilities.display_name == "MariaDB/MySQL"


def test_slots_count_the_admin_slot_as_reserved(maria_alias: str, mariadb: MariaDBServer) -> None:
    snap = take_snapshot(maria_alias)
    setting = int(mariadb.sql("SELECT @@max_connections").strip())
    assert snap.limits.max_connections == setting + 1
    assert snap.limits.superuser_reserved_connections == 1
    assert snap.usable_connections == setting
    assert snap.extras["max_connections_setting"] == setting
    assert snap.extras["extra_max_connections"] == 1  # MariaDB's extra_port slots
    for key in ("threads_running", "max_used_connections", "aborted_connects",
                "connection_errors_max_connections"):  # fmt: skip
        assert isinstance(snap.extras[key], int)


def test_account_limit_binds_and_hidden_sessions_are_counted(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    url = make_account("t_limited", "pw", max_user_connections=3)
    mysessions.open("idle", user="t_limited", password="pw")
    others = mysessions.open_many(2, "idle")  # admin's: invisible without PROCESS
    with database_alias("limited", url, options={"connect_timeout": 5}) as alias:
        snap = take_snapshot(alias)
    assert snap.limits.role_limits == {"t_limited": 3}
    assert snap.limited_by == "role"
    assert snap.free_connections == 3 - 1  # the reader's own session is not counted
    assert snap.visibility == "restricted"
    assert snap.hidden_connections >= len(others)
    assert snap.total_connections >= 1 + len(others)


def test_process_granted_through_a_role_shows_every_thread(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    url = make_account("t_role_reader", "pw")
    mariadb.sql(
        "DROP ROLE IF EXISTS t_monitoring; CREATE ROLE t_monitoring; "
        "GRANT PROCESS ON *.* TO t_monitoring; GRANT t_monitoring TO 't_role_reader'@'%'; "
        "SET DEFAULT ROLE t_monitoring FOR 't_role_reader'@'%';"
    )
    try:
        other = mysessions.open("idle in transaction")  # admin's
        with database_alias("role_reader", url, options={"connect_timeout": 5}) as alias:
            snap = take_snapshot(alias)
        assert snap.visibility == "full" and snap.hidden_connections == 0
        assert by_pid(snap, other.id).state == "idle in transaction"
    finally:
        mariadb.sql("DROP ROLE IF EXISTS t_monitoring;")


def test_status_json_has_the_same_schema_and_a_mysql_key(
    mariadb: MariaDBServer, mysessions: MySessions
) -> None:
    mysessions.open("idle in transaction")
    result = manage("db_connections", "--action=status", "--format=json",
                    database_url=mariadb.url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dbconnmgr.status/1" and doc["vendor"] == "mysql"
    assert doc["by_state"]["idle in transaction"] >= 1
    assert doc["mysql"]["max_connections_setting"] + 1 == doc["server"]["max_connections"]
    assert "threads_running" in doc["mysql"]
    table = manage("db_connections", "--action=status", database_url=mariadb.url)
    assert table.returncode == 0, table.stderr
    assert "MariaDB" in table.stdout and "PostgreSQL" not in table.stdout
    # States MariaDB never reports are left out of the table (the JSON keeps every key).
    assert "fastpath function call" not in table.stdout and "disabled" not in table.stdout
    assert doc["by_state"]["fastpath function call"] == 0


def test_refused_connections_are_counted_between_snapshots(maria_alias: str) -> None:
    backend = get_backend(maria_alias)
    before = backend.snapshot().extras["aborted_connects"]
    kwargs = dict(get_backend(maria_alias).connection.get_connection_params())
    kwargs["password"] = "wrong"
    with pytest.raises(MySQLdb.OperationalError):
        MySQLdb.connect(**kwargs)
    # The server counts the attempt as its thread ends, just after the client has its error.
    deadline = time.monotonic() + 5
    after = backend.snapshot().extras["aborted_connects"]
    while after == before and time.monotonic() < deadline:
        time.sleep(0.01)
        after = backend.snapshot().extras["aborted_connects"]
    assert after == before + 1


def test_database_config_settings_reach_the_server(mariadb: MariaDBServer) -> None:
    from django.db import connections

    from dbconnmgr.backends import private_backend
    from dbconnmgr.database_settings import database_config

    config = database_config(env={"DATABASE_URL": mariadb.url, "DB_STATEMENT_TIMEOUT": "30000"})
    with database_alias("configured", mariadb.url, options=config["OPTIONS"]) as alias:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT @@max_statement_time, @@sql_mode, @@character_set_client")
            max_time, sql_mode, charset = cursor.fetchone()
        assert float(max_time) == 30.0
        assert "STRICT_TRANS_TABLES" in sql_mode and charset == "utf8mb4"
        bounded = private_backend(alias, time_limit=2.0)  # what the monitor reads with
        try:
            with bounded.connection.cursor() as cursor:
                cursor.execute("SELECT @@max_statement_time, @@sql_mode")
                max_time, sql_mode = cursor.fetchone()
            assert float(max_time) == 2.0 and "STRICT_TRANS_TABLES" in sql_mode
        finally:
            bounded.connection.close()


def test_connection_monitor_counts_a_block_on_a_mariadb_alias(maria_alias: str) -> None:
    from django.db import connections

    from dbconnmgr import connection_monitor

    monitor = connection_monitor("t-maria-block", using=maria_alias, log=False)
    with monitor as stats, connections[maria_alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    figures = stats.by_alias[maria_alias]
    assert figures.queries == 2
    assert figures.server_before is not None and figures.server_after is not None
    assert stats.utilization_percent is not None


def test_a_lock_wait_names_its_blocker(maria_alias: str, mysessions: MySessions) -> None:
    """The blockers are read (one more round trip) only when a transaction waits."""
    holder = mysessions.open("idle in transaction")  # holds a shared lock on probe row 1
    waiter_conn = MySQLdb.connect(**mysessions.server.connect_kwargs())
    waiter_id = waiter_conn.thread_id()

    def wait_for_lock() -> None:
        with contextlib.suppress(MySQLdb.Error):
            cursor = waiter_conn.cursor()
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT v FROM dbconnmgr.probe WHERE id = 1 FOR UPDATE")

    thread = threading.Thread(target=wait_for_lock, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            snap = take_snapshot(maria_alias)
            waiter = next((c for c in snap.connections if c.pid == waiter_id), None)
            if (waiter and waiter.wait_event_type) or time.monotonic() > deadline:
                break
            time.sleep(0.15)  # INNODB_TRX refreshes at most every 100 ms
        assert waiter is not None and waiter.state == "active"
        assert (waiter.wait_event_type, waiter.wait_event) == ("Lock", "row lock")
        assert tuple(waiter.blocking_pids) == (holder.id,)
        assert [c.pid for c in snap.waiting_connections] == [waiter_id]
        assert by_pid(snap, holder.id).state == "idle in transaction"
    finally:
        mysessions.server.sql(f"KILL QUERY {int(waiter_id)}")
        thread.join(timeout=10)
        waiter_conn.close()


def by_pid(snap: Snapshot, pid: int) -> Connection:
    return next(c for c in snap.connections if c.pid == pid)


def test_processlist_rows_map_to_connections() -> None:
    """The column-wise build: background threads dropped, clients parsed, states from
    COMMAND and INNODB_TRX, query texts of running threads only and cut, admins marked."""
    from dbconnmgr.backends.mysql.rows import QUERY_TEXT_LIMIT, connections, thread_columns

    long_query = "SELECT " + "x" * (QUERY_TEXT_LIMIT + 100)
    rows = [  # Id, User, Host, db, Command, Time, State, Info, Progress
        (1, "system user", None, None, "Daemon", 9, "InnoDB purge", None, 0.0),
        (10, "app", "10.0.0.7:51234", "shop", "Sleep", 30, "", None, 0.0),
        (11, "app", "localhost", "shop", "Sleep", 12, "", None, 0.0),
        (12, "root", "[::1]:40000", None, "Query", 3, "Sending data", long_query, 0.0),
        (13, "app", "::ffff:10.0.0.8", "shop", "Query", 0, "starting", "SELECT 1", 0.0),
    ]
    threads = thread_columns(rows)
    built = {c.pid: c for c in connections(threads, [(11, 12.5, 0)], {}, {"root"})}
    assert set(built) == {10, 11, 12, 13}
    assert [built[p].client for p in (10, 11, 12, 13)] == [
        "10.0.0.7", "local", "::1", "::ffff:10.0.0.8",
    ]  # fmt: skip
    assert [built[p].state for p in (10, 11, 12, 13)] == [
        "idle", "idle in transaction", "active", "active",
    ]  # fmt: skip
    assert built[11].transaction_seconds == 12.5 and built[10].query is None
    assert built[12].query == long_query[:QUERY_TEXT_LIMIT]
    assert built[12].running_seconds == 3 and built[10].running_seconds is None
    assert built[10].state_seconds == 30
    assert [p for p, c in built.items() if c.is_superuser] == [12]
    assert connections(thread_columns([]), [], {}, set()) == []
