"""Snapshots of a real MariaDB server: states, slots, limits, visibility, status figures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import MySQLdb
import pytest

from dbconnmgr import take_snapshot
from dbconnmgr.backends import get_backend
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
