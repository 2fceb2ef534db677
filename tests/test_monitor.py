"""`monitor`: JSON Lines, the live view, restarts, interrupts, and the Python sampling loop."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from rich.console import Console

from dbconnmgr import Monitor, Sample, SampleWindow, iter_samples
from dbconnmgr.core import samples as samples_module
from dbconnmgr.core.snapshot import Connection, ServerLimits, Snapshot
from dbconnmgr.live_view import MonitorView, utilization_bar, utilization_style
from devtools.pgserver import PgServer, free_port
from tests.conftest import ROOT, Sessions, drain_terminal, dsn_to_url, manage, superuser_dsn


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- JSON Lines ----------------------------------------------------------------------------------
def test_json_lines_carry_exact_counts_of_the_sessions_opened(sessions: Sessions) -> None:
    sessions.open_many(3, "t-mon-web", "idle")
    sessions.open_many(2, "t-mon-worker", "active")
    sessions.open("t-mon-txn", "idle in transaction")

    result = manage("db_connections", "--action=monitor", "--count=2", "--interval=0.5")

    assert result.returncode == 0, result.stderr
    records = _lines(result.stdout)  # not a terminal: JSON Lines without --format json
    assert [r["sequence"] for r in records] == [1, 2]
    for record in records:
        assert record["reachable"] is True
        apps = record["by_application"]
        assert apps["t-mon-web"] == 3
        assert apps["t-mon-worker"] == 2
        assert apps["t-mon-txn"] == 1
        assert record["by_state"]["idle in transaction"] >= 1
        assert record["active_connections"] >= 2  # the monitor's own session is not counted
        assert sum(record["by_state"].values()) == record["total_connections"]
    assert records[0]["change"] is None
    change = records[1]["change"]
    assert not any(name.startswith("t-mon-") for name in change["by_application"])
    first, second = (dt.datetime.fromisoformat(r["taken_at"]) for r in records)
    # Ticks start 0.5 s apart; the first tick also connects, so its reading is taken
    # later in its tick than the second's. Under heavy load that connect has taken up to
    # 0.08 s: allow 0.25 s of it and still prove the monitor waited between samples.
    assert (second - first).total_seconds() >= 0.25


def test_format_json_and_one_sample_by_default(sessions: Sessions) -> None:
    sessions.open_many(2, "t-mon-one", "idle")
    result = manage("db_connections", "--action=monitor", "--format=json")
    assert result.returncode == 0, result.stderr
    (record,) = _lines(result.stdout)
    assert record["by_application"]["t-mon-one"] == 2


def test_change_since_the_last_sample(sessions: Sessions) -> None:
    monitor = Monitor("default", interval=1)
    sessions.open_many(2, "t-chg-a", "idle")
    first = monitor.sample()
    sessions.open_many(3, "t-chg-b", "idle")
    gone = sessions.opened[0]
    gone.conn.close()
    _wait_gone(gone.pid)
    second = monitor.sample()

    assert first.change is None
    assert second.change is not None
    assert second.change.by_application["t-chg-b"] == 3
    assert second.change.by_application["t-chg-a"] == -1
    assert second.by_application is not None
    assert second.by_application["t-chg-a"] == 1
    assert first.total_connections is not None and second.total_connections is not None
    assert second.change.total_connections == second.total_connections - first.total_connections


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(superuser_dsn(), autocommit=True) as admin:
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} never went away"
            time.sleep(0.02)


def test_aas_is_the_mean_of_active_sessions_over_the_window() -> None:
    """Pure: snapshots built by hand, the reader's own active session excluded."""
    window = SampleWindow("default", aas_window=15)
    start = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    samples = [
        window.add(_snapshot(start + dt.timedelta(seconds=10 * i), active=n))
        for i, n in enumerate((2, 4, 6))
    ]
    assert [s.active_connections for s in samples] == [2, 4, 6]
    assert samples[0].aas == 2.0
    assert samples[1].aas == 3.0  # 2 and 4
    assert samples[2].aas == 5.0  # the first fell out of the 15 s window
    assert samples[2].aas_samples == 2

    down = window.unreachable(start + dt.timedelta(seconds=30), "cannot connect")
    again = window.unreachable(start + dt.timedelta(seconds=40), "cannot connect")
    assert not down.reachable and down.aas is None
    assert again.unreachable_since == down.taken_at
    back = window.add(_snapshot(start + dt.timedelta(seconds=50), active=1))
    assert back.recovered_from == down.taken_at
    assert back.change is not None and back.change.total_connections == 1 - 6
    assert back.aas == 1.0  # samples of the outage are not averaged as zeros


def test_aas_window_boundary_cap_and_outage_bookkeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pure: a sample exactly one window old is out; memory is capped; counters per tick."""
    with pytest.raises(ValueError, match="aas_window"):
        SampleWindow("default", aas_window=0)
    start = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    window = SampleWindow("default", aas_window=10)
    window.add(_snapshot(start, active=2))
    edge = window.add(_snapshot(start + dt.timedelta(seconds=10), active=4))
    assert (edge.aas, edge.aas_samples) == (4.0, 1)

    monkeypatch.setattr(samples_module, "MAX_WINDOW_SAMPLES", 3)
    capped = SampleWindow("default", aas_window=1e9)
    for i in range(5):
        last = capped.add(_snapshot(start + dt.timedelta(seconds=i), active=i))
    assert (last.aas, last.aas_samples) == (3.0, 3)  # 2, 3, 4: the oldest dropped

    window = SampleWindow("default")
    window.add(_snapshot(start, active=1))
    down = window.unreachable(start + dt.timedelta(seconds=1), "cannot connect")
    back = window.add(_snapshot(start + dt.timedelta(seconds=2), active=1))
    after = window.add(_snapshot(start + dt.timedelta(seconds=3), active=1))
    assert [down.sequence, back.sequence, after.sequence] == [2, 3, 4]
    assert back.recovered_from == down.taken_at and after.recovered_from is None
    assert after.change is not None and after.change.by_application == {}  # nothing moved


def _snapshot(taken_at: dt.datetime, active: int) -> Snapshot:
    def conn(pid: int, state: str) -> Connection:
        return Connection(
            pid=pid, database="app", user="app", application_name="web", client="local",
            state=state, wait_event_type=None, wait_event=None, blocking_pids=(),
            query=None, visible=True, is_superuser=False,
        )  # fmt: skip

    own = conn(1, "active")
    others = [conn(100 + i, "active") for i in range(active)]
    limits = ServerLimits(
        version="15", version_num=150000, max_connections=20, superuser_reserved_connections=3,
        reserved_connections=0,
    )  # fmt: skip
    return Snapshot(
        alias="default", vendor="postgresql", taken_at=taken_at, limits=limits,
        connections=(own, *others), own_pid=1, visibility="full",
    )  # fmt: skip


# -- the Python loop -----------------------------------------------------------------------------
def test_iter_samples_calls_the_hook_for_every_sample(sessions: Sessions) -> None:
    sessions.open("t-hook", "idle")
    seen: list[Sample] = []
    started = time.monotonic()
    samples = list(iter_samples("default", interval=0.1, count=3, on_sample=seen.append))
    elapsed = time.monotonic() - started

    assert [s.sequence for s in samples] == [1, 2, 3]
    assert seen == samples
    assert all(s.snapshot is not None for s in samples)
    assert all(s.by_application and s.by_application["t-hook"] == 1 for s in samples)
    assert elapsed >= 0.2  # two waits of one interval between three samples


@pytest.mark.parametrize(("interval", "count"), [(0, 1), (-1, 1), (float("nan"), 1), (1, 0)])
def test_loop_refuses_bad_values(interval: float, count: int) -> None:
    with pytest.raises(ValueError):
        iter_samples("default", interval=interval, count=count)  # before any sampling


def test_unreachable_server_from_python_yields_samples_saying_so() -> None:
    from django.db import connections

    db = dict(connections.settings["default"])
    db["PORT"] = str(free_port())
    connections.settings["t_down"] = db
    try:
        samples = list(iter_samples("t_down", interval=0.05, count=2))
    finally:
        connections["t_down"].close()
        del connections.settings["t_down"]
    assert [s.reachable for s in samples] == [False, False]
    assert samples[0].error is not None and "cannot connect" in samples[0].error
    assert samples[1].unreachable_since == samples[0].taken_at


# -- restarts and interrupts ---------------------------------------------------------------------
def _default_sigint() -> None:
    """Ctrl-C as on a terminal, even when the test runner was started with SIGINT ignored
    (a background job of a non-interactive shell): an ignored SIGINT is inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Streamed:
    """A manage.py process whose stdout lines are read as they come."""

    def __init__(self, *args: str, database_url: str) -> None:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
        env["DATABASE_URL"] = database_url
        env.pop("DBCONNMGR_JSON", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, preexec_fn=_default_sigint,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.records: list[dict[str, Any]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_record(self, timeout: float = 30) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.lines.get(timeout=timeout))
        self.records.append(record)
        return record

    def wait_for(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            record = self.next_record(timeout=max(0.1, deadline - time.monotonic()))
            if predicate(record):
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw the record; last: {record}")

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    server = PgServer(max_connections=20).start()
    try:
        yield server
    finally:
        server.stop()


def test_monitor_spans_a_server_restart_and_ctrl_c_exits_0(own_server: PgServer) -> None:
    mon = Streamed(
        "db_connections", "--action=monitor", "--watch", "--interval=0.2",
        database_url=own_server.url,
    )  # fmt: skip
    try:
        mon.wait_for(lambda r: r["reachable"] and r["sequence"] >= 2)
        own_server.restart()
        down = mon.wait_for(lambda r: not r["reachable"])
        back = mon.wait_for(lambda r: r["reachable"])
        mon.next_record()  # and it keeps going
        code, stderr = mon.interrupt()
    finally:
        mon.kill()

    assert down["error"] and down["unreachable_since"]
    assert down["total_connections"] is None
    assert back["recovered_from"] == down["unreachable_since"]
    assert back["total_connections"] >= 0
    assert [r["sequence"] for r in mon.records] == list(range(1, len(mon.records) + 1))
    assert code == 0
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_while_the_server_is_down_exits_0() -> None:
    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    mon = Streamed("db_connections", "--action=monitor", "--watch", "--interval=0.1",
                   database_url=url)  # fmt: skip
    try:
        first = mon.next_record()
        second = mon.next_record()
        code, stderr = mon.interrupt()
    finally:
        mon.kill()
    assert first["reachable"] is False and "cannot connect" in first["error"]
    assert second["unreachable_since"] == first["unreachable_since"]
    assert code == 0
    # No traceback or KeyboardInterrupt noise: the only output on stderr is the alert the
    # default logging handler sends for the outage, once for both samples (cooldown).
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "CRITICAL server_unreachable" in lines[0]


def test_exit_code_says_whether_the_last_sample_read_the_server() -> None:
    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    result = manage("db_connections", "--action=monitor", "--count=2", "--interval=0.05",
                    database_url=url)  # fmt: skip
    assert result.returncode == 2  # critical: the server is unreachable
    records = _lines(result.stdout)
    assert [r["reachable"] for r in records] == [False, False]
    assert records[0]["total_connections"] is None
    assert "Traceback" not in result.stderr


def test_stops_after_count_samples() -> None:
    result = manage("db_connections", "--action=monitor", "--watch", "--count=3",
                    "--interval=0.05")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["sequence"] for r in _lines(result.stdout)] == [1, 2, 3]


# -- bad values ----------------------------------------------------------------------------------
def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 3, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        ("--interval=0", ("--interval", "> 0")),
        ("--interval=-2", ("--interval", "> 0")),
        ("--interval=soon", ("--interval", "number of seconds", "soon")),
        ("--interval=inf", ("--interval", "> 0")),
        ("--count=0", ("--count", ">= 1")),
        ("--count=1.5", ("--count", "whole number")),
        ("--count=many", ("--count", "whole number")),
    ],
)
def test_bad_values_get_one_line(option: str, fragments: tuple[str, ...]) -> None:
    _one_line_error(manage("db_connections", "--action=monitor", option), *fragments)


def test_monitor_options_do_not_apply_to_status() -> None:
    result = manage("db_connections", "--action=status", "--watch")
    assert result.returncode == 3
    assert "--watch does not apply to --action=status" in result.stderr
    assert "Traceback" not in result.stderr


# -- the live view -------------------------------------------------------------------------------
def test_live_view_shows_utilization_states_applications_and_aas(sessions: Sessions) -> None:
    sessions.open_many(2, "t-live", "idle")
    view = MonitorView(interval=5, count=None, limit=50)
    monitor = Monitor("default", interval=1)
    view.update(monitor.sample())
    sessions.open("t-live", "idle in transaction")
    renderable = view.update(monitor.sample())
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(renderable)
    text = out.getvalue()

    assert "Utilization" in text and "usable" in text and "░" in text
    assert "AAS" in text
    assert "By state" in text and "By application" in text
    line = next(line for line in text.splitlines() if "t-live" in line and "│" in line)
    assert re.search(r"t-live\s*│\s*3\s*│\s*\+1\s*│", line), line  # count, change
    assert "Longest idle in txn" in text and "t-live" in text.split("Longest idle in txn")[1]


def test_utilization_colour_follows_the_thresholds(settings: Any) -> None:
    settings.DBCONNMGR = {"THRESHOLDS": {"UTILIZATION_WARNING": 50, "UTILIZATION_CRITICAL": 60}}
    assert utilization_style(49.9) == "green"
    assert utilization_style(50) == "yellow"
    assert utilization_style(60) == "bold red"
    bar = utilization_bar(50, plain=True, width=10)
    assert bar.plain == "[#####.....]"
    assert bar.spans[0].style == "yellow"


def test_live_view_on_a_terminal_then_ctrl_c(sessions: Sessions) -> None:
    """Under a pseudo-terminal: the rich view, refreshed in place, and a clean exit on ^C."""
    sessions.open_many(2, "t-tty", "idle")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=dsn_to_url(superuser_dsn()), COLUMNS="120", LINES="40", TERM="xterm",
    )  # fmt: skip
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "db_connections", "--action=monitor",
         "--watch", "--interval=0.2"],
        cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 30
        while output.count(b"sample ") < 3 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                output += os.read(master, 65536)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        output += drain_terminal(master)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = output.decode(errors="replace")
    assert code == 0
    assert "sample 3" in text and "Utilization" in text and "t-tty" in text
    assert "\x1b[" in text  # cursor moves and colours: a live view, not JSON
    assert '"sequence"' not in text
    assert "Traceback" not in text


def test_monitor_samples_feed_health_alerts_once_per_cooldown(sessions) -> None:
    """Each sample is evaluated and dispatched: a warning goes out once, not per sample."""
    import io

    from django.core.management import call_command
    from django.test import override_settings

    from dbconnmgr import alerts
    from tests import alert_handlers

    sessions.open_many(2, "t-monitor-alert", "idle")
    alerts.reset()
    alert_handlers.RECEIVED.clear()
    config = {
        # Any open connection is over 0.1 % of the usable slots: a utilization warning.
        "THRESHOLDS": {"UTILIZATION_WARNING": 0.1, "UTILIZATION_CRITICAL": 99},
        "ALERTS": {"HANDLERS": ["tests.alert_handlers.record"], "COOLDOWN": 3600},
    }
    try:
        with override_settings(DBCONNMGR=config):
            call_command(
                "db_connections", "--action=monitor", "--count=3", "--interval=0.05",
                "--format=json", stdout=io.StringIO(),
            )  # fmt: skip
        utilization = [a for a in alert_handlers.RECEIVED if a.finding.code == "utilization"]
        assert len(utilization) == 1, alert_handlers.RECEIVED
        assert utilization[0].finding.severity.label == "warning"
    finally:
        alerts.reset()
        alert_handlers.RECEIVED.clear()


# -- invalid thresholds, locks, the pool -----------------------------------------------------------
@pytest.mark.parametrize(
    "thresholds",
    [
        {"UTILIZATION_WARNING": "high"},
        "70,85",
        {"UTILIZATION_WARNING": 90, "UTILIZATION_CRITICAL": 80},
    ],
)
def test_invalid_thresholds_are_unknown_and_the_monitor_keeps_sampling(thresholds: Any) -> None:
    result = manage(
        "db_connections", "--action=monitor", "--count=3", "--interval=0.05",
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"THRESHOLDS": thresholds})},
    )  # fmt: skip
    assert result.returncode == 3
    records = _lines(result.stdout)
    assert [r["sequence"] for r in records] == [1, 2, 3]
    assert all(r["reachable"] for r in records)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("UNKNOWN: DBCONNMGR['THRESHOLDS'] is invalid")
    assert "sampling goes on" in lines[0]


def test_invalid_thresholds_do_not_break_the_live_view(settings: Any) -> None:
    settings.DBCONNMGR = {"THRESHOLDS": {"UTILIZATION_CRITICAL": "lots"}}
    assert utilization_style(99.0) == "default"


def test_a_locked_catalog_makes_samples_late_not_the_monitor_stall(own_server: PgServer) -> None:
    """ACCESS EXCLUSIVE on pg_authid (read for role names) blocks every reader of it.

    The monitor's own connection gives up after its time limit (1 s here), says why in the
    sample and keeps sampling; once the lock is gone, samples read the server again.
    """
    mon = Streamed(
        "db_connections", "--action=monitor", "--watch", "--interval=0.2",
        database_url=own_server.url,
    )  # fmt: skip
    locker = psycopg.connect(own_server.dsn())
    try:
        mon.wait_for(lambda r: r["reachable"])
        locker.execute("LOCK TABLE pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE")
        late = mon.wait_for(lambda r: not r["reachable"])
        again = mon.next_record()  # it keeps going while the lock is held
        locker.rollback()
        mon.wait_for(lambda r: r["reachable"])
        code, stderr = mon.interrupt()
    finally:
        locker.close()
        mon.kill()
    assert "lock" in late["error"]
    assert again["sequence"] == late["sequence"] + 1
    assert code == 0
    assert "Traceback" not in stderr, stderr


def test_a_locked_samples_table_fails_the_recording_not_the_monitor(own_server: PgServer) -> None:
    assert manage("migrate", "dbconnmgr", "-v0", database_url=own_server.url).returncode == 0
    locker = psycopg.connect(own_server.dsn())
    try:
        locker.execute("LOCK TABLE dbconnmgr_connectionsample IN ACCESS EXCLUSIVE MODE")
        result = manage(
            "db_connections", "--action=monitor", "--record", "--count=2", "--interval=0.1",
            database_url=own_server.url,
        )  # fmt: skip
    finally:
        locker.close()
    assert result.returncode == 0, result.stderr
    assert [r["reachable"] for r in _lines(result.stdout)] == [True, True]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # said once, not once per sample
    assert "could not record samples (will retry)" in lines[0]
    assert "lock timeout" in lines[0]


def test_monitor_on_a_pooled_alias_reads_through_one_private_connection(dsn: str) -> None:
    """The pool (min_size 3) is never opened: no session of the pooled alias's application
    is counted (the monitor's own reading session is never counted)."""
    result = manage(
        "db_connections", "--action=monitor", "--database=pooled", "--count=2",
        "--interval=0.05", settings_module="tests.settings_pool", database_url=dsn_to_url(dsn),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for record in _lines(result.stdout):
        assert "t-ci-pooled" not in record["by_application"], record
