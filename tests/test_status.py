"""`status` and the snapshot, against the real server."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import psycopg
import psycopg.conninfo
from django.core.management import call_command

from dbconnmgr import take_snapshot
from tests.conftest import Sessions, dsn_to_url, manage, superuser_dsn


def _mine(snapshot, prefix):
    return {g.name: g for g in snapshot.by_application() if g.name.startswith(prefix)}


def test_counts_by_state_and_application_match_opened_sessions(sessions: Sessions) -> None:
    sessions.open_many(3, "t-web", "idle")
    sessions.open_many(2, "t-worker", "active")
    sessions.open_many(2, "t-report", "idle in transaction")
    sessions.open("t-report", "idle in transaction (aborted)")

    snap = take_snapshot("default")
    mine = _mine(snap, "t-")

    assert mine["t-web"].count == 3
    assert mine["t-web"].by_state == {"idle": 3}
    assert mine["t-worker"].by_state == {"active": 2}
    assert mine["t-report"].by_state == {
        "idle in transaction": 2,
        "idle in transaction (aborted)": 1,
    }
    by_state = snap.by_state()
    assert by_state["idle in transaction (aborted)"] >= 1
    assert sum(by_state.values()) == snap.total_connections


def test_total_matches_a_direct_count_on_the_server(sessions: Sessions, dsn: str) -> None:
    sessions.open_many(4, "t-total", "idle")
    with psycopg.connect(dsn, autocommit=True) as psql:
        snap = take_snapshot("default")
        row = psql.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        ).fetchone()
        assert row is not None
        direct = row[0]
        states: dict[str, int] = dict(
            psql.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
            ).fetchall()
        )
    # The direct count sees the snapshot's reader, which the snapshot does not count.
    assert snap.total_connections == direct - 1
    # Each side sees the other's idle reading connection and not its own.
    snap_states = {k: v for k, v in snap.by_state().items() if v}
    assert snap_states == states


def test_background_processes_and_parallel_workers_are_not_counted(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS t_parallel")
        admin.execute("CREATE TABLE t_parallel AS SELECT g AS n FROM generate_series(1, 200000) g")
        admin.execute("ANALYZE t_parallel")
        background = {
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
            ).fetchall()
        }
        assert background, "a running server always has background processes"

        leader = psycopg.connect(dsn, autocommit=True, application_name="t-parallel")
        leader_pid = leader.info.backend_pid
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0",
                        "min_parallel_table_scan_size = 0",
                        "max_parallel_workers_per_gather = 2"):  # fmt: skip
            leader.execute(f"SET {setting}")
        done = threading.Event()

        def run() -> None:
            with contextlib.suppress(psycopg.Error):
                leader.execute("SELECT count(*) FROM t_parallel WHERE pg_sleep(0.0005) IS NOT NULL")
            done.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            workers: set[int] = set()
            while not workers and time.monotonic() < deadline and not done.is_set():
                workers = {
                    pid
                    for (pid,) in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'parallel worker'"
                    ).fetchall()
                }
                time.sleep(0.01)
            assert workers, "the query should have started parallel workers"
            snap = take_snapshot("default")
        finally:
            admin.execute("SELECT pg_cancel_backend(%s)", (leader_pid,))
            thread.join(10)
            leader.close()
            admin.execute("DROP TABLE t_parallel")

    pids = {c.pid for c in snap.connections}
    assert not pids & background
    assert not pids & workers
    assert leader_pid in pids


def test_role_without_pg_read_all_stats_sees_restricted(make_role, sessions: Sessions) -> None:
    sessions.open("t-hidden", "idle")  # a superuser session the role cannot inspect
    plain = make_role("t_plain")
    result = manage("db_connections", "--format=json", database_url=dsn_to_url(plain))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["visibility"] == "restricted"
    assert payload["hidden_connections"] >= 1
    assert payload["by_state"]["unknown"] >= 1

    monitor = make_role("t_monitor", "pw", "pg_read_all_stats")
    result = manage("db_connections", "--format=json", database_url=dsn_to_url(monitor))
    payload = json.loads(result.stdout)
    assert payload["visibility"] == "full"
    assert payload["hidden_connections"] == 0
    assert payload["by_state"]["unknown"] == 0


def test_json_fields_and_arithmetic(sessions: Sessions) -> None:
    sessions.open_many(2, "t-json", "idle in transaction")
    time.sleep(1.1)
    result = manage("db_connections", "--action=status", "--format=json", "--limit=50")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    server = data["server"]
    assert server["usable_connections"] == (
        server["max_connections"]
        - server["superuser_reserved_connections"]
        - server["reserved_connections"]
    )
    total = data["total_connections"]
    assert data["max_connections_utilization_percent"] == round(
        total * 100 / server["max_connections"], 1
    )
    assert data["utilization_percent"] == round(total * 100 / server["usable_connections"], 1)
    assert sum(data["by_state"].values()) == total
    assert {"name": "t-json", "connections": 2, "by_state": {"idle in transaction": 2}} in data[
        "by_application"
    ]
    assert data["longest_idle_in_transaction_seconds"] >= 1.0
    assert data["oldest_transaction_seconds"] >= 1.0
    assert data["oldest_connection_seconds"] >= 1.0
    assert data["waiting_connections"] == 0
    assert data["visibility"] == "full"
    server_database = psycopg.conninfo.conninfo_to_dict(superuser_dsn())["dbname"]
    assert (data["alias"], data["database"]) == ("default", server_database)
    assert data["schema"] == "dbconnmgr.status/1"


def test_limit_caps_breakdowns(sessions: Sessions) -> None:
    for i in range(3):
        sessions.open(f"t-limit-{i}", "idle")
    out = manage("db_connections", "--format=json", "--limit=2")
    data = json.loads(out.stdout)
    assert len(data["by_application"]) == 2


def test_table_output_is_plain_without_a_terminal(sessions: Sessions) -> None:
    sessions.open("t-table", "idle in transaction (aborted)")
    result = manage("db_connections", "--action=status")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    for heading in ("By state", "By application", "By user", "By database", "By client"):
        assert heading in result.stdout
    assert "idle in transaction (aborted)" in result.stdout
    assert "fastpath function call" in result.stdout  # PostgreSQL's states, zeros included
    assert "t-table" in result.stdout


def test_call_command_writes_to_given_stdout(sessions: Sessions) -> None:
    import io

    sessions.open("t-call", "idle")
    out = io.StringIO()
    call_command("db_connections", "--format=json", stdout=out)
    data = json.loads(out.getvalue())
    assert any(g["name"] == "t-call" for g in data["by_application"])


def test_database_and_role_limits_are_read(dsn: str, make_role) -> None:
    make_role("t_capped")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("ALTER ROLE t_capped CONNECTION LIMIT 7")
    snap = take_snapshot("default")
    assert snap.limits.role_limits.get("t_capped") == 7


def test_lock_wait_reports_the_blocker(sessions: Sessions, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS t_lock (id int PRIMARY KEY)")
        admin.execute("INSERT INTO t_lock VALUES (1) ON CONFLICT DO NOTHING")
    holder = sessions.open("t-holder", "idle")
    holder.conn.autocommit = False
    holder.conn.execute("SELECT * FROM t_lock WHERE id = 1 FOR UPDATE")
    waiter = psycopg.connect(dsn, autocommit=True, application_name="t-waiter")
    thread = threading.Thread(
        target=lambda: waiter.execute("UPDATE t_lock SET id = 1 WHERE id = 1"), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            snap = take_snapshot("default")
            mine = [c for c in snap.connections if c.pid == waiter.info.backend_pid]
            if mine and mine[0].is_waiting_on_lock:
                break
            assert time.monotonic() < deadline, "the UPDATE never waited on the lock"
            time.sleep(0.05)
        assert list(mine[0].blocking_pids) == [holder.pid]
        assert mine[0] in snap.waiting_connections
        out = manage("db_connections", "--limit=50")
        assert "Lock waits" in out.stdout
        assert f"{holder.pid} (t-holder)" in out.stdout
    finally:
        holder.conn.rollback()
        thread.join(10)
        waiter.close()


def test_table_colours_utilization_by_the_configured_thresholds(
    settings, sessions: Sessions
) -> None:
    # The status table used hard-coded 70/85 % whatever THRESHOLDS said.
    import io

    from rich.console import Console

    from dbconnmgr.app_settings import thresholds
    from dbconnmgr.render import Renderer, utilization_style

    sessions.open("t-colour", "idle")  # the reader is not counted: one other connection
    snapshot = take_snapshot("default")
    pct = snapshot.utilization_percent
    assert 0 < pct < 70

    def coloured(configured: dict[str, float] | None) -> str:
        settings.DBCONNMGR = {"THRESHOLDS": configured} if configured else {}
        buffer = io.StringIO()
        renderer = Renderer(buffer)
        renderer.console = Console(file=buffer, force_terminal=True, color_system="standard")
        renderer.status(snapshot, 5, thresholds=thresholds())
        line = next(line for line in buffer.getvalue().splitlines() if "% of usable" in line)
        return line

    assert "\x1b[32m" in coloured(None)  # green under the defaults
    critical = {"UTILIZATION_WARNING": pct / 4, "UTILIZATION_CRITICAL": pct / 2}
    assert "\x1b[1;31m" in coloured(critical)  # bold red under the project's thresholds
    warning = {"UTILIZATION_WARNING": pct / 2, "UTILIZATION_CRITICAL": 100}
    assert "\x1b[33m" in coloured(warning)
    off = {"UTILIZATION_WARNING": None, "UTILIZATION_CRITICAL": None}
    assert utilization_style(99, off) == "green"


def test_status_table_refuses_invalid_thresholds_in_one_line() -> None:
    result = manage(
        "db_connections",
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"THRESHOLDS": {"UTILIZATION_WARNING": 95}})},
    )
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "DBCONNMGR['THRESHOLDS']" in line and "must be below" in line
