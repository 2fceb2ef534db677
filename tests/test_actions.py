"""close-idle and force-close against the real server: what is terminated, what survives."""

from __future__ import annotations

import json
import logging
import re
import threading
import time

import psycopg
import pytest
from django.db import connection

from dbconnmgr import close_idle_connections, force_close_connections
from dbconnmgr.core.termination import TerminationReport
from tests.conftest import Session, Sessions, dsn_to_url, manage, superuser_dsn, wait_for_state


def alive(dsn: str, *pids: int) -> set[int]:
    """The pids among ``pids`` that still have a backend."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
        ).fetchall()
    return {pid for (pid,) in rows}


def assert_terminated(session: Session) -> None:
    """The victim's backend is gone and its next query fails with AdminShutdown (57P01).

    The server sends the 57P01 FATAL message and closes the socket. If the client's query
    reaches the already closed socket first, psycopg reports the reset instead ("connection
    socket closed"), before reading the FATAL message: seen on PostgreSQL 18, a race in the
    client, not a different outcome on the server.
    """
    assert not alive(superuser_dsn(), session.pid)
    with pytest.raises(psycopg.OperationalError) as info:
        session.conn.execute("SELECT 1")
    if not isinstance(info.value, psycopg.errors.AdminShutdown):
        assert "socket closed" in str(info.value) or "server closed" in str(info.value)
    assert session.conn.closed


def assert_usable(session: Session) -> None:
    assert session.conn.execute("SELECT 1").fetchone() == (1,)


def info_user(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["user"])


def outcomes(report: TerminationReport) -> dict[int, str]:
    return {r.pid: r.outcome for r in report.results}


@pytest.fixture
def app_dsn(make_role) -> str:
    """An ordinary role whose sessions the suite's superuser may terminate."""
    dsn: str = make_role("t_ci_app")
    return dsn


def test_old_idle_sessions_are_terminated_and_the_rest_survive(
    sessions: Sessions, app_dsn: str, dsn: str
) -> None:
    old = [sessions.open("t-ci-basic", dsn=app_dsn) for _ in range(3)]
    time.sleep(1.5)
    young = [sessions.open("t-ci-basic", dsn=app_dsn) for _ in range(2)]
    active = sessions.open("t-ci-basic", "active", dsn=app_dsn)
    in_txn = sessions.open("t-ci-basic", "idle in transaction", dsn=app_dsn)
    other_app = sessions.open("t-ci-other", dsn=app_dsn)

    report = close_idle_connections(older_than=1.0, application="t-ci-basic")

    old_pids = {s.pid for s in old}
    assert {c.pid for c in report.selected} == old_pids
    assert set(report.terminated) == old_pids
    assert report.counts()["terminated"] == 3
    assert report.executed and not report.failed
    for session in old:
        assert_terminated(session)
    for session in [*young, in_txn, other_app]:
        assert_usable(session)
    survivors = [s.pid for s in (*young, active, in_txn, other_app)]
    # what the report says is what the server did
    assert alive(dsn, *old_pids, *survivors) == set(survivors)


def test_idle_in_transaction_states_are_selected_by_state(sessions: Sessions, app_dsn: str) -> None:
    idle = sessions.open("t-ci-state", dsn=app_dsn)
    in_txn = sessions.open("t-ci-state", "idle in transaction", dsn=app_dsn)
    aborted = sessions.open("t-ci-state", "idle in transaction (aborted)", dsn=app_dsn)

    report = close_idle_connections(
        older_than=0,
        application="t-ci-state",
        states=("idle in transaction", "idle in transaction (aborted)"),
    )
    assert set(report.terminated) == {in_txn.pid, aborted.pid}
    assert_usable(idle)
    with pytest.raises(psycopg.errors.AdminShutdown):
        in_txn.conn.execute("SELECT 1")


def test_a_session_that_turns_active_after_selection_survives(
    sessions: Sessions, app_dsn: str, dsn: str
) -> None:
    """The condition is re-checked in the statement that signals."""
    turns_active = sessions.open("t-ci-race", dsn=app_dsn)
    runs_query = sessions.open("t-ci-race", dsn=app_dsn)
    stays_idle = sessions.open("t-ci-race", dsn=app_dsn)
    closes_itself = sessions.open("t-ci-race", dsn=app_dsn)
    time.sleep(1.2)

    selected = threading.Barrier(2)
    finished: dict[str, object] = {}

    def client() -> None:
        selected.wait(timeout=10)  # close-idle has read its candidates
        finished["result"] = turns_active.conn.execute("SELECT pg_sleep(1.5), 42").fetchone()

    thread = threading.Thread(target=client)
    thread.start()

    def confirm(plan: TerminationReport) -> bool:
        assert len(plan.pids("would_terminate")) == 4
        selected.wait(timeout=10)
        wait_for_state(dsn, turns_active.pid, "active")
        runs_query.conn.execute("SELECT 1")  # idle again, but its idle time restarted
        closes_itself.conn.close()
        deadline = time.monotonic() + 10  # the backend exits shortly after the client leaves
        while alive(dsn, closes_itself.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return True

    report = close_idle_connections(older_than=1.0, application="t-ci-race", confirm=confirm)
    thread.join(10)

    got = outcomes(report)
    assert got[stays_idle.pid] == "terminated"
    assert got[turns_active.pid] == "no_longer_matching"
    assert got[runs_query.pid] == "no_longer_matching"
    assert got[closes_itself.pid] == "already_gone"
    reasons = {r.pid: r.reason for r in report.results}
    assert "active" in reasons[turns_active.pid]
    assert finished["result"] == ("", 42)  # its query ran to the end
    assert_usable(turns_active)
    assert_usable(runs_query)
    assert_terminated(stays_idle)
    assert report.counts()["terminated"] == 1
    assert report.counts()["no_longer_matching"] == 2


def test_superusers_are_spared_unless_asked(sessions: Sessions) -> None:
    su = sessions.open("t-ci-super")  # the suite's superuser
    report = close_idle_connections(older_than=0, application="t-ci-super")
    assert outcomes(report) == {su.pid: "protected"}
    assert not report.executed
    assert any("superuser" in f for f in report.findings)
    assert_usable(su)

    report = close_idle_connections(older_than=0, application="t-ci-super",
                                    include_superusers=True)  # fmt: skip
    assert set(report.terminated) == {su.pid}
    assert_terminated(su)


def test_background_processes_and_own_backend_survive(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        background = {
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
            ).fetchall()
        }
    assert background
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    # Background processes have an empty application_name, no state: never candidates.
    report = close_idle_connections(
        older_than=0, application="", states=("idle", "idle in transaction"), dry_run=True
    )
    assert not {c.pid for c in report.selected} & (background | {own})
    report = close_idle_connections(older_than=0, user="postgres", include_superusers=True,
                                    application="dbconnmgr-tests")  # fmt: skip
    assert own not in {c.pid for c in report.selected}
    assert alive(dsn, *background, own) == background | {own}


def test_dry_run_changes_nothing(sessions: Sessions, app_dsn: str) -> None:
    idle = sessions.open_many(2, "t-ci-dry")
    for _ in range(2):
        idle.append(sessions.open("t-ci-dry", dsn=app_dsn))
    report = close_idle_connections(older_than=0, application="t-ci-dry", dry_run=True)
    assert report.dry_run and not report.executed
    assert report.counts()["would_terminate"] == 2
    assert report.counts()["protected"] == 2
    assert report.terminated == ()
    for session in idle:
        assert_usable(session)

    result = manage("db_connections", "--action=close-idle", "--idle-for=0",
                    "--application=t-ci-dry", "--dry-run", "--format=json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["dry_run"] is True
    assert payload["terminated"] == []
    assert payload["counts"]["would_terminate"] == 2
    for session in idle:
        assert_usable(session)


def test_refuses_without_a_terminal(sessions: Sessions, app_dsn: str) -> None:
    victim = sessions.open("t-ci-refuse", dsn=app_dsn)
    result = manage("db_connections", "--action=close-idle", "--idle-for=0",
                    "--application=t-ci-refuse")  # fmt: skip
    assert result.returncode == 3  # unknown: a usage problem
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "refusing" in lines[0] and "--noinput" in lines[0]
    assert_usable(victim)


def test_noinput_terminates_and_reports_json(sessions: Sessions, app_dsn: str) -> None:
    victims = [sessions.open("t-ci-json", dsn=app_dsn) for _ in range(2)]
    keep = sessions.open("t-ci-json", "active", dsn=app_dsn)
    result = manage("db_connections", "--action=close-idle", "--idle-for=0",
                    "--application=t-ci-json", "--noinput", "--format=json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    pids = sorted(s.pid for s in victims)
    assert sorted(payload["terminated"]) == pids
    assert payload["counts"]["selected"] == 2
    assert payload["counts"]["terminated"] == 2
    assert payload["not_terminated"] == []
    assert {row["state"] for row in payload["selected"]} == {"idle"}
    assert {row["user"] for row in payload["selected"]} == {"t_ci_app"}
    assert payload["performed_by"]["db_role"] == "postgres"
    assert keep.pid not in payload["terminated"]
    for session in victims:
        assert_terminated(session)
    # the audit trail (example_project logs dbconnmgr at INFO on stderr)
    for pid in pids:
        assert f"terminated backend pid={pid}" in result.stderr
    assert "role postgres" in result.stderr and "OS user" in result.stderr


def test_table_report_is_plain_text(sessions: Sessions, app_dsn: str) -> None:
    sessions.open("t-ci-table", dsn=app_dsn)
    result = manage("db_connections", "--action=close-idle", "--idle-for=0",
                    "--application=t-ci-table", "--noinput")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert "Selected (1)" in result.stdout
    assert "terminated" in result.stdout and "t_ci_app" in result.stdout


def test_audit_log_says_what_why_and_who(
    sessions: Sessions, app_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    victim = sessions.open("t-ci-audit", dsn=app_dsn)
    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        close_idle_connections(older_than=0, application="t-ci-audit")
    records = [r for r in caplog.records if getattr(r, "dbconnmgr", {}).get("pid") == victim.pid]
    assert len(records) == 1
    data = records[0].dbconnmgr  # type: ignore[attr-defined]
    assert data["outcome"] == "terminated"
    assert data["db_role"] == "postgres"
    assert data["os_user"]
    assert data["user"] == "t_ci_app"
    message = records[0].getMessage()
    assert (
        "close-idle" in message and "t-ci-audit" in message and "unchanged for at least" in message
    )


def test_permission_denied_is_reported_not_raised(make_role, sessions: Sessions) -> None:
    plain = make_role("t_ci_plain", "pw", "pg_read_all_stats")  # sees states, may not signal
    other = make_role("t_ci_other")
    own = sessions.open("t-ci-perm", dsn=plain)
    theirs = [sessions.open("t-ci-perm", dsn=other) for _ in range(2)]
    su = sessions.open("t-ci-perm")

    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    "--application=t-ci-perm", "--format=json",
                    database_url=dsn_to_url(plain))  # fmt: skip
    assert result.returncode == 1, result.stderr  # partly done
    assert "Traceback" not in result.stderr
    payload = json.loads(result.stdout)
    by_pid = {row["pid"]: row["outcome"] for row in payload["selected"]}
    assert by_pid[own.pid] == "terminated"
    assert {by_pid[s.pid] for s in theirs} == {"permission_denied"}
    assert by_pid[su.pid] == "protected"
    assert payload["counts"]["permission_denied"] == 2
    assert any("pg_signal_backend" in f for f in payload["findings"])
    assert_terminated(own)
    for session in [*theirs, su]:
        assert_usable(session)

    # nothing this role may terminate: still exit 3, nothing signalled
    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    f"--user={info_user(other)}", "--application=t-ci-perm", "--format=json",
                    database_url=dsn_to_url(plain))  # fmt: skip
    assert result.returncode == 1, result.stderr  # partly done
    payload = json.loads(result.stdout)
    assert payload["executed"] is False  # nothing to signal: the statement did not run
    assert payload["counts"]["permission_denied"] == 2
    assert any("GRANT pg_signal_backend TO t_ci_plain" in f for f in payload["findings"])

    # pg_signal_backend lifts the refusal, except for superusers' sessions
    signaller = make_role("t_ci_signal", "pw", "pg_read_all_stats", "pg_signal_backend")
    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    "--application=t-ci-perm", "--format=json",
                    database_url=dsn_to_url(signaller))  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert sorted(payload["terminated"]) == sorted(s.pid for s in theirs)
    assert_usable(su)

    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    "--application=t-ci-perm", "--include-superusers",
                    database_url=dsn_to_url(signaller))  # fmt: skip
    assert result.returncode == 3  # unknown: no permission
    assert "needs a superuser" in result.stderr and "Traceback" not in result.stderr
    assert_usable(su)


def test_hidden_sessions_are_counted_not_touched(make_role, sessions: Sessions) -> None:
    blind = make_role("t_ci_blind", "pw", "pg_signal_backend")  # may signal, cannot see
    other = make_role("t_ci_other2")
    theirs = [sessions.open("t-ci-hidden", dsn=other) for _ in range(2)]
    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    "--application=t-ci-hidden", "--format=json",
                    database_url=dsn_to_url(blind))  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["selected"] == []
    assert payload["hidden_connections"] == 2
    assert any("pg_read_all_stats" in f for f in payload["findings"])
    for session in theirs:
        assert_usable(session)


def test_bad_arguments_from_python() -> None:
    with pytest.raises(ValueError, match="states must be among"):
        close_idle_connections(states=("active",))
    with pytest.raises(ValueError, match="older_than"):
        close_idle_connections(older_than=-1)
    with pytest.raises(ValueError, match="older_than"):
        close_idle_connections(older_than=float("nan"))


def test_force_close_terminates_the_projects_sessions_only(
    sessions: Sessions, app_dsn: str
) -> None:
    # tests/settings.py gives the default alias application_name "dbconnmgr-tests"
    mine = [sessions.open("dbconnmgr-tests") for _ in range(2)]  # superuser's sessions
    busy = sessions.open("dbconnmgr-tests", "active")
    not_mine = sessions.open("t-ci-someone-else")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]

    plan = force_close_connections(dry_run=True, include_superusers=True)
    assert own not in {c.pid for c in plan.selected}
    assert {s.pid for s in [*mine, busy]} <= {c.pid for c in plan.selected}
    assert connection.connection is not None  # dry run: nothing closed
    for session in mine:
        assert_usable(session)

    report = force_close_connections(include_superusers=True)
    assert report.local is not None and report.local.connection_closed
    assert connection.connection is None
    assert {s.pid for s in [*mine, busy]} <= set(report.terminated)
    assert not_mine.pid not in {c.pid for c in report.selected}
    for session in mine:
        assert_terminated(session)
    assert_usable(not_mine)
    with connection.cursor() as cursor:  # Django reconnects as usual
        cursor.execute("SELECT 1")


def test_force_close_spares_superusers_by_default(sessions: Sessions) -> None:
    su = sessions.open("dbconnmgr-tests")
    report = force_close_connections()
    assert outcomes(report).get(su.pid) == "protected"
    assert_usable(su)


def test_bad_options_are_one_line_errors() -> None:
    for args, fragment in (
        (["--action=close-idle", "--state=busy"], "invalid choice"),
        (["--action=close-idle", "--idle-for=-1"], ">= 0"),
        (["--action=close-idle", "--idle-for=soon"], "expected a number"),
        (["--action=force-close", "--idle-for=10"], "does not apply"),
        (["--action=status", "--dry-run"], "does not apply"),
    ):
        result = manage("db_connections", *args)
        assert result.returncode == 3, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (args, result.stderr)
        assert fragment in lines[0], (args, lines[0])


POOL_SCRIPT = """
import json, time
import django
django.setup()
from django.db import connections
import dbconnmgr
from dbconnmgr.internals import open_pool

conn = connections["pooled"]
with conn.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    own = cursor.fetchone()[0]
pool = conn.pool
deadline = time.monotonic() + 10
while pool.get_stats()["pool_size"] < 3 and time.monotonic() < deadline:
    time.sleep(0.05)
report = dbconnmgr.force_close_connections("pooled", include_superusers=True)
print(json.dumps({
    "own": own,
    "report": report.as_dict(),
    "pool_left": open_pool(conn) is not None,
    "connection_open": conn.connection is not None,
}))
"""


def test_force_close_closes_the_native_pool(sessions: Sessions, dsn: str) -> None:
    from tests.conftest import run_with_pooled_alias

    outsider = sessions.open("t-ci-pooled")  # another process of the same project
    # The same database as the sessions (pytest-django may have switched to test_*).
    data = run_with_pooled_alias(POOL_SCRIPT, dsn)
    report = data["report"]
    local = report["local"]
    assert local["connection_closed"] is True and local["pool_closed"] is True
    assert local["pool_current_size"] >= 3
    assert data["pool_left"] is False
    assert data["connection_open"] is False
    selected = {row["pid"] for row in report["selected"]}
    assert data["own"] in local["backend_pids"]
    assert not selected & set(local["backend_pids"])  # closed, not terminated
    assert report["counts"]["already_gone"] == 0
    assert outsider.pid in report["terminated"]
    assert_terminated(outsider)
    with psycopg.connect(dsn, autocommit=True) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't-ci-pooled'"
        ).fetchone()
    assert left == (0,)


def _manage_on_terminal(answer: str, *args: str) -> tuple[int, str]:
    """Run manage.py with a pseudo-terminal as stdin and type ``answer``."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT, superuser_dsn

    master, slave = pty.openpty()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="example_project.settings",
               DATABASE_URL=dsn_to_url(superuser_dsn()))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "db_connections", *args],
        cwd=ROOT, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    os.close(slave)
    try:
        os.write(master, answer.encode() + b"\n")
        out, _err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, out


@pytest.mark.parametrize("answer", ["n", "y", "\x04"])  # Ctrl-D: end of input is "no"
def test_asks_on_a_terminal(sessions: Sessions, app_dsn: str, answer: str) -> None:
    victim = sessions.open("t-ci-ask", dsn=app_dsn)
    code, out = _manage_on_terminal(
        answer, "--action=close-idle", "--idle-for=0", "--application=t-ci-ask"
    )
    assert code == 0
    assert "Terminate 1 backend(s)" in out
    assert str(victim.pid) in out
    if answer == "y":
        assert_terminated(victim)
    else:
        assert "cancelled, nothing was terminated" in out
        assert_usable(victim)


# -- settings are validated before anything changes; a late failure still reports -----------
@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ({"TERMINATE_TIMEOUT": "abc"}, "DBCONNMGR['TERMINATE_TIMEOUT'] must be seconds"),
        ({"TERMINATE_TIMEOUT": -1}, "DBCONNMGR['TERMINATE_TIMEOUT'] must be seconds"),
        ({"IDLE_TIMEOUT": "5m"}, "DBCONNMGR['IDLE_TIMEOUT'] must be seconds"),
    ],
)
def test_close_idle_refuses_bad_settings_before_terminating_anything(
    settings, sessions: Sessions, app_dsn: str, setting: dict[str, object], fragment: str
) -> None:
    from dbconnmgr.exceptions import InvalidSetting

    victims = [sessions.open("t-ci-settings", dsn=app_dsn) for _ in range(2)]
    settings.DBCONNMGR = setting
    older_than = None if "IDLE_TIMEOUT" in setting else 0.0
    with pytest.raises(InvalidSetting, match=re.escape(fragment)):
        close_idle_connections(older_than=older_than, application="t-ci-settings")
    for session in victims:
        assert_usable(session)


def test_close_idle_command_with_bad_terminate_timeout_changes_nothing(
    sessions: Sessions, app_dsn: str, dsn: str
) -> None:
    victims = [sessions.open("t-ci-settings-cli", dsn=app_dsn) for _ in range(2)]
    result = manage(
        "db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
        "--application=t-ci-settings-cli",
        settings_module="tests.settings_cli", database_url=dsn_to_url(dsn),
        extra_env={"DBCONNMGR_JSON": json.dumps({"TERMINATE_TIMEOUT": "abc"})},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "DBCONNMGR['TERMINATE_TIMEOUT']" in line
    for session in victims:
        assert_usable(session)


def test_force_close_refuses_bad_settings_before_closing_anything(settings) -> None:
    from dbconnmgr.exceptions import InvalidSetting

    connection.ensure_connection()
    settings.DBCONNMGR = {"TERMINATE_TIMEOUT": "abc"}
    with pytest.raises(InvalidSetting, match="TERMINATE_TIMEOUT"):
        force_close_connections(include_superusers=True)
    assert connection.connection is not None  # this process's connection was not closed


def _failing_wait(*args: object, **kwargs: object) -> set[int]:
    from django.db import OperationalError

    raise OperationalError("server closed the connection unexpectedly\nmore detail")


def test_failure_after_signalling_still_reports_and_audits(
    monkeypatch, sessions: Sessions, app_dsn: str, caplog
) -> None:
    from dbconnmgr.backends.postgresql.reader import PostgreSQLBackend
    from dbconnmgr.exceptions import TerminationIncomplete

    victims = [sessions.open("t-ci-late", dsn=app_dsn) for _ in range(2)]
    pids = {s.pid for s in victims}
    # The signals are real; the wait for the backends to exit fails afterwards.
    monkeypatch.setattr(PostgreSQLBackend, "still_running", _failing_wait)
    with (
        caplog.at_level(logging.INFO, logger="dbconnmgr"),
        pytest.raises(TerminationIncomplete, match="could not confirm") as caught,
    ):
        close_idle_connections(older_than=0, application="t-ci-late")
    report = caught.value.report
    assert report.executed
    assert set(report.pids("not_exited")) == pids
    assert all("exit not confirmed: OperationalError" in r.reason for r in report.results)
    assert report.failed
    audit = [r.getMessage() for r in caplog.records if r.name == "dbconnmgr"]
    assert any("signalling up to 2" in line for line in audit)
    for session in victims:
        assert any(f"pid={session.pid}" in line for line in audit)
    deadline = time.monotonic() + 10
    while alive(superuser_dsn(), *pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(superuser_dsn(), *pids)  # they really were terminated


def test_command_prints_the_report_when_the_wait_fails(
    monkeypatch, sessions: Sessions, app_dsn: str
) -> None:
    import io

    from django.core.management import call_command

    from dbconnmgr.backends.postgresql.reader import PostgreSQLBackend

    victim = sessions.open("t-ci-late-cli", dsn=app_dsn)
    monkeypatch.setattr(PostgreSQLBackend, "still_running", _failing_wait)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
            "--application=t-ci-late-cli", "--format=json", stdout=out, stderr=err,
        )  # fmt: skip
    assert exited.value.code == 3
    document = json.loads(out.getvalue())
    assert [r["pid"] for r in document["selected"]] == [victim.pid]
    assert document["selected"][0]["outcome"] == "not_exited"
    assert "exit not confirmed" in document["selected"][0]["reason"]
    [line] = err.getvalue().strip().splitlines()
    assert "could not confirm" in line and "OperationalError" in line
