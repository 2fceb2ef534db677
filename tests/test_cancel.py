"""--action=cancel and cancel_long_queries() against the real server: the long query ends,
its session stays, young queries and other applications are left alone."""

from __future__ import annotations

import json
import logging
import time

import psycopg
import pytest

from dbconnmgr.actions import cancel_long_queries, signal_backends
from tests.conftest import Sessions, manage, wait_for_state


def state_of(dsn: str, pid: int) -> str | None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def app_dsn(make_role) -> str:
    dsn: str = make_role("t_cancel_app")
    return dsn


def test_long_queries_are_cancelled_and_their_sessions_survive(
    sessions: Sessions, app_dsn: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = sessions.open("t-cancel", "active", dsn=app_dsn)
    time.sleep(1.2)
    young = sessions.open("t-cancel", "active", dsn=app_dsn)
    other_app = sessions.open("t-cancel-other", "active", dsn=app_dsn)
    idle = sessions.open("t-cancel", dsn=app_dsn)

    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        report = cancel_long_queries(older_than=1.0, application="t-cancel")

    assert [c.pid for c in report.selected] == [old.pid]
    assert report.done == (old.pid,) and report.terminated == ()
    assert report.counts()["query_cancelled"] == 1 and not report.failed
    assert old.thread is not None
    old.thread.join(timeout=10)  # pg_sleep returned: the query was cancelled
    wait_for_state(dsn, old.pid, "idle")
    assert old.conn.execute("SELECT 1").fetchone() == (1,)  # the session is still usable
    for session in (young, other_app):
        assert state_of(dsn, session.pid) == "active"
    assert state_of(dsn, idle.pid) == "idle"
    assert any(
        f"cancel: cancelled the query of backend pid={old.pid}" in r.getMessage()
        for r in caplog.records
    )
    assert report.as_dict()["queries_cancelled"] == [old.pid]


def test_a_query_that_ended_before_the_signal_is_spared(
    sessions: Sessions, app_dsn: str, dsn: str
) -> None:
    busy = sessions.open("t-cancel-race", "active", dsn=app_dsn, sleep=1.5)
    time.sleep(0.6)

    def finish_first(plan: object) -> bool:
        assert busy.thread is not None
        busy.thread.join(timeout=10)  # the query ends on its own while we "confirm"
        wait_for_state(dsn, busy.pid, "idle")
        return True

    report = cancel_long_queries(older_than=0.5, application="t-cancel-race", confirm=finish_first)
    assert [r.outcome for r in report.results] == ["no_longer_matching"]
    assert state_of(dsn, busy.pid) == "idle"


def test_command_cancels_with_noinput_and_reports_json(sessions: Sessions, app_dsn: str) -> None:
    target = sessions.open("t-cancel-cli", "active", dsn=app_dsn)
    time.sleep(0.3)
    dry = manage(
        "db_connections", "--action=cancel", "--running-for=0.2", "--application=t-cancel-cli",
        "--dry-run", "--format=json",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["counts"]["would_cancel"] == 1
    result = manage(
        "db_connections", "--action=cancel", "--running-for=0.2", "--application=t-cancel-cli",
        "--noinput", "--format=json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["action"] == "cancel" and doc["criteria"]["signal"] == "cancel"
    assert doc["queries_cancelled"] == [target.pid]
    assert target.conn.execute("SELECT 1").fetchone() == (1,)


def test_command_refuses_without_running_for_and_without_a_terminal() -> None:
    missing = manage("db_connections", "--action=cancel", "--noinput")
    assert missing.returncode == 3
    assert missing.stderr.strip().splitlines() == [
        "CommandError: --action=cancel needs --running-for SECONDS"
    ]
    foreign = manage("db_connections", "--action=cancel", "--running-for=1", "--idle-for=3")
    assert foreign.returncode == 3 and "--idle-for does not apply" in foreign.stderr


def test_signal_backends_terminates_picked_pids_naming_the_requester(
    sessions: Sessions, app_dsn: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    picked = sessions.open("t-pick", dsn=app_dsn)
    spared = sessions.open("t-pick", dsn=app_dsn)
    plan = signal_backends(
        "default", [picked.pid], signal="terminate", requested_by="x", dry_run=True
    )
    assert plan.would_act == (picked.pid,) and not plan.executed
    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        report = signal_backends(
            "default", [picked.pid], signal="terminate", requested_by="Django user alice"
        )
    assert report.terminated == (picked.pid,)
    assert state_of(dsn, picked.pid) is None and state_of(dsn, spared.pid) == "idle"
    assert any(
        "terminated backend pid=" in r.getMessage() and "Django user alice via" in r.getMessage()
        for r in caplog.records
    )
    # cancel picks only sessions running a query: an idle one is not selected
    idle_cancel = signal_backends("default", [spared.pid], signal="cancel", requested_by="x")
    assert idle_cancel.selected == ()
