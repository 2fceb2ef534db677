"""Status, health and the snapshot on a Redshift alias, read from the emulated system views."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dbconnmgr import check_connection_health, take_snapshot
from dbconnmgr.backends import get_backend
from dbconnmgr.exceptions import ServerUnavailable
from devtools.redshiftemu import RedshiftEmulation, add_finished_query
from tests.redshift.conftest import RsSessions, redshift_alias


def truth(emulation: RedshiftEmulation, user: str) -> dict[str, int]:
    """The user's sessions by PostgreSQL's own state: what the emulated views are built on."""
    return dict(
        Counter(
            str(state)
            for (state,) in emulation.execute(
                "SELECT state FROM pg_stat_activity WHERE usename = %s", (user,)
            )
        )
    )


def test_status_counts_equal_the_emulated_tables_truth_for_a_held_mix(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_user: Any, rs_alias: str
) -> None:
    dsn = rs_user("rs_mix")
    rs_sessions.open_many(3, "idle", dsn=dsn)
    rs_sessions.open_many(2, "active", dsn=dsn)
    rs_sessions.open_many(2, "idle in transaction", dsn=dsn)
    snapshot = take_snapshot(rs_alias)
    (group,) = [g for g in snapshot.by_user() if g.name == "rs_mix"]
    assert group.by_state == truth(emulation, "rs_mix")
    assert group.by_state == {"active": 2, "idle": 3, "idle in transaction": 2}
    assert snapshot.vendor == "redshift"
    assert snapshot.visibility == "full"
    assert snapshot.limits.max_connections == 2000  # ra3.4xlarge, AWS's published limit


def test_ages_come_from_the_views_each_state_reads(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_alias: str
) -> None:
    idle = rs_sessions.open("idle")
    in_txn = rs_sessions.open("idle in transaction")
    time.sleep(1.2)
    active = rs_sessions.open("active")
    time.sleep(0.5)
    idle.conn.execute("SELECT 1")  # its idle time restarts with the end of this query
    snapshot = take_snapshot(rs_alias)
    by_pid = {c.pid: c for c in snapshot.connections}
    assert by_pid[idle.pid].state == "idle"
    assert (by_pid[idle.pid].state_seconds or 0) < 0.5  # since its last query, not its start
    assert (by_pid[idle.pid].backend_seconds or 0) >= 1.5
    assert by_pid[in_txn.pid].state == "idle in transaction"
    assert (by_pid[in_txn.pid].transaction_seconds or 0) >= 1.5
    assert by_pid[active.pid].state == "active"
    assert 0.3 <= (by_pid[active.pid].query_seconds or 0) < 60
    assert "pg_sleep" in (by_pid[active.pid].query or "")


def test_idle_time_counts_only_this_sessions_queries_though_pids_are_reused(
    emulation: RedshiftEmulation, rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    conn = psycopg.connect(emulation.dsn(), autocommit=True)  # it runs no query
    try:
        pid = conn.info.backend_pid
        ((started,),) = emulation.execute(
            "SELECT backend_start AT TIME ZONE 'UTC' FROM pg_stat_activity WHERE pid = %s",
            (pid,),
        )
        # an earlier session with the same pid: its last query ended before this one began
        add_finished_query(feeds, session_id=pid, start=started - timedelta(hours=2),
                           end=started - timedelta(hours=1))  # fmt: skip
        time.sleep(0.3)
        (fresh,) = [c for c in take_snapshot(rs_alias).connections if c.pid == pid]
        assert fresh.state == "idle"
        # idle since it began, not for an hour and more
        assert fresh.state_seconds == pytest.approx(fresh.backend_seconds, abs=0.01)
        assert (fresh.state_seconds or 0) < 60
        # one query of its own, ended 0.2 s after it began: idle since then
        add_finished_query(feeds, session_id=pid, start=started + timedelta(seconds=0.1),
                           end=started + timedelta(seconds=0.2))  # fmt: skip
        (ran,) = [c for c in take_snapshot(rs_alias).connections if c.pid == pid]
        assert (ran.backend_seconds or 0) - (ran.state_seconds or 0) == pytest.approx(0.2, abs=0.01)
    finally:
        conn.close()


def test_a_lock_wait_names_the_session_holding_the_table(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_alias: str
) -> None:
    emulation.execute("CREATE TABLE IF NOT EXISTS public.rs_locked (id int)")
    holder = rs_sessions.open("idle in transaction")
    holder.conn.execute("LOCK TABLE public.rs_locked IN ACCESS EXCLUSIVE MODE")
    blocked = rs_sessions.open("idle in transaction")
    thread = threading.Thread(
        target=lambda: blocked.conn.execute("SELECT * FROM public.rs_locked"), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while True:
        snapshot = take_snapshot(rs_alias)
        conn = {c.pid: c for c in snapshot.connections}[blocked.pid]
        if conn.is_waiting_on_lock or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert conn.is_waiting_on_lock
    assert holder.pid in conn.blocking_pids
    holder.conn.rollback()
    thread.join(timeout=5)


def test_a_regular_user_without_syslog_access_is_unknown_never_healthy(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_user: Any
) -> None:
    rs_user("rs_restricted")
    rs_sessions.open_many(3, "idle")  # the superuser's: invisible to rs_restricted
    with redshift_alias("restricted", emulation, user="rs_restricted", password="pw") as alias:
        snapshot = take_snapshot(alias)
        assert snapshot.visibility == "restricted"
        assert {c.user for c in snapshot.connections} == {"rs_restricted"}
        health = check_connection_health(alias)
    assert health["status"] == "unknown"
    (finding,) = [f for f in health["findings"] if f["code"] == "visibility"]
    assert finding["severity"] == "unknown"
    assert "SYSLOG ACCESS UNRESTRICTED" in finding["message"]
    assert "not even how many there are" in finding["message"]


def test_syslog_access_unrestricted_sees_every_session_but_not_the_wlm_queues(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_user: Any
) -> None:
    rs_user("rs_monitor", syslog_unrestricted=True)
    others = rs_sessions.open_many(2, "idle")
    with redshift_alias("monitor", emulation, user="rs_monitor", password="pw") as alias:
        snapshot = take_snapshot(alias)
    assert snapshot.visibility == "full"
    assert {s.pid for s in others} <= {c.pid for c in snapshot.connections}
    assert snapshot.extras["wlm"]["visible"] is False


def test_connection_limits_of_user_and_database_bind_like_postgresqls(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_user: Any
) -> None:
    dsn = rs_user("rs_capped", connection_limit=3)
    rs_sessions.open(dsn=dsn)
    with redshift_alias("capped", emulation, user="rs_capped", password="pw") as alias:
        snapshot = take_snapshot(alias)
    assert snapshot.limits.role_limits["rs_capped"] == 3
    assert snapshot.limited_by == "role"
    # counted as on every engine: the held session, not the reader's own
    assert snapshot.binding_limit().connections == 1
    assert snapshot.free_connections == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "does not show its connection limit"),
        ({"node_type": "ra9.huge"}, "unknown or unpublished Redshift node type 'ra9.huge'"),
        ({"max_connections": "lots"}, "must be a whole number from 1 to 2000"),
        ({"max_connections": 5000}, "must be a whole number from 1 to 2000"),
    ],
)
def test_a_missing_or_impossible_cluster_limit_is_one_clear_line(
    emulation: RedshiftEmulation, options: dict[str, Any], message: str
) -> None:
    with redshift_alias("nolimit", emulation, options=options) as alias:
        with pytest.raises(ServerUnavailable, match=message) as raised:
            take_snapshot(alias)
        assert raised.value.kind == "setup"
        assert "\n" not in str(raised.value)
        health = check_connection_health(alias)
    assert health["status"] == "unknown"


def test_an_explicit_max_connections_wins_and_counts(
    emulation: RedshiftEmulation, rs_sessions: RsSessions
) -> None:
    rs_sessions.open_many(2, "idle")
    with redshift_alias("explicit", emulation, options={"max_connections": 40}) as alias:
        snapshot = take_snapshot(alias)
        count = get_backend(alias).count_client_connections()
    assert snapshot.limits.max_connections == 40
    assert snapshot.extras["max_connections_source"] == "OPTIONS['max_connections']"
    assert count.max_connections == 40
    assert count.client_connections >= 2
