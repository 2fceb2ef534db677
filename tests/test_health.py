"""Health evaluation against real servers: each finding in each severity."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from dbconnmgr import (
    Finding,
    ServerUnavailable,
    Severity,
    check_connection_health,
    check_health,
    evaluate,
    evaluate_unavailable,
    take_snapshot,
)
from dbconnmgr.core.health import threshold_errors
from devtools.pgserver import PgServer, free_port
from tests.conftest import Sessions, database_alias

QUIET = {"IDLE_RATIO_WARNING": None}  # held idle sessions would also trip the idle ratio


def settled(alias: str, held: Sessions, extra: int = 0):
    """A snapshot showing exactly the held sessions (plus ``extra`` others) and the reader.

    A closed connection's backend leaves pg_stat_activity a moment later (the fixtures'
    short-lived admin connections): wait for that rather than count it.
    """
    expected = {s.pid for s in held.opened}
    deadline = time.monotonic() + 10
    while True:
        snap = take_snapshot(alias)
        pids = {c.pid for c in snap.others()}
        if expected <= pids and len(pids) == len(expected) + extra:
            return snap
        assert time.monotonic() < deadline, f"sessions never settled: {pids} vs {expected}"
        time.sleep(0.02)


def finding(report, code: str, subject: str = "") -> Finding:
    matches = [f for f in report.findings if f.code == code and f.subject == subject]
    assert len(matches) == 1, [f.key for f in report.findings]
    found: Finding = matches[0]
    return found


# -- severities -----------------------------------------------------------------------------
def test_severity_values_are_nagios_codes_and_unknown_ranks_below_critical() -> None:
    assert [int(s) for s in Severity] == [0, 1, 2, 3]
    assert [s.label for s in Severity] == ["ok", "warning", "critical", "unknown"]
    assert Severity.worst([Severity.WARNING, Severity.UNKNOWN]) is Severity.UNKNOWN
    assert Severity.worst([Severity.UNKNOWN, Severity.CRITICAL]) is Severity.CRITICAL
    assert Severity.worst([]) is Severity.OK
    assert Severity.from_label("Critical") is Severity.CRITICAL


# -- utilization ----------------------------------------------------------------------------
def test_utilization_crosses_70_and_85_percent_of_usable_slots(
    held: Sessions, health_alias: str
) -> None:
    """17 usable slots (20 - 3 reserved); the reader's own connection is not counted."""
    expected = {11: Severity.OK, 12: Severity.WARNING, 15: Severity.CRITICAL}
    for count, severity in expected.items():
        held.open_many(count - len(held.opened), "t-util")
        report = evaluate(settled(health_alias, held), QUIET)
        util = finding(report, "utilization")
        assert util.data["total_connections"] == count
        assert util.data["usable_connections"] == 17
        assert util.data["utilization_percent"] == round(count * 100 / 17, 1)
        assert util.severity is severity, util.message
        assert report.status is severity
    assert "15 of 17 usable slots in use (88.2%)" in util.message


def test_utilization_as_absolute_count_and_as_free_slots(held: Sessions, health_alias: str) -> None:
    counts = {"UTILIZATION_WARNING": None, "UTILIZATION_CRITICAL": None, **QUIET}
    by_count = {**counts, "CONNECTIONS_WARNING": 5, "CONNECTIONS_CRITICAL": 8}
    by_free = {**counts, "FREE_SLOTS_WARNING": 5, "FREE_SLOTS_CRITICAL": 2}

    held.open_many(4, "t-count")  # the reader is not counted
    snap = settled(health_alias, held)
    assert finding(evaluate(snap, by_count), "utilization").severity is Severity.OK
    held.open("t-count")  # 5
    snap = settled(health_alias, held)
    util = finding(evaluate(snap, by_count), "utilization")
    assert (util.severity, util.data["rule"]) == (Severity.WARNING, "count")
    held.open_many(3, "t-count")  # 8
    snap = settled(health_alias, held)
    assert finding(evaluate(snap, by_count), "utilization").severity is Severity.CRITICAL
    assert finding(evaluate(snap, by_free), "utilization").severity is Severity.OK  # 9 free

    held.open_many(4, "t-count")  # 12 in use, 5 free
    util = finding(evaluate(settled(health_alias, held), by_free), "utilization")
    assert (util.severity, util.data["free_connections"]) == (Severity.WARNING, 5)
    held.open_many(3, "t-count")  # 15 in use, 2 free
    util = finding(evaluate(settled(health_alias, held), by_free), "utilization")
    assert (util.severity, util.data["rule"]) == (Severity.CRITICAL, "free")
    assert util.message.startswith("only 2 usable slot(s) left")


def test_database_and_role_connection_limits(
    held: Sessions, health_server: PgServer, health_alias: str
) -> None:
    with psycopg.connect(health_server.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS t_capped_db")
        admin.execute("CREATE DATABASE t_capped_db CONNECTION LIMIT 5")
        admin.execute("DROP ROLE IF EXISTS t_capped")
        admin.execute("CREATE ROLE t_capped LOGIN PASSWORD 'pw' CONNECTION LIMIT 4")
    try:
        db_dsn = health_server.dsn(dbname="t_capped_db")
        role_dsn = health_server.dsn("t_capped", "pw")
        for _ in range(3):
            held.open("t-db", dsn=db_dsn)
            held.open("t-role", dsn=role_dsn)
        report = evaluate(settled(health_alias, held), QUIET)
        db = finding(report, "database_utilization", "t_capped_db")
        role = finding(report, "role_utilization", "t_capped")
        assert (db.severity, db.data["connections"], db.data["limit"]) == (Severity.OK, 3, 5)
        assert (role.severity, role.data["utilization_percent"]) == (Severity.WARNING, 75.0)
        assert db.key == "database_utilization:t_capped_db"

        held.open("t-db", dsn=db_dsn)  # 4 of 5: 80 %
        held.open("t-role", dsn=role_dsn)  # 4 of 4: 100 %
        report = evaluate(settled(health_alias, held), QUIET)
        assert finding(report, "database_utilization", "t_capped_db").severity is Severity.WARNING
        role = finding(report, "role_utilization", "t_capped")
        assert role.severity is Severity.CRITICAL
        assert "role t_capped: 4 of its 4 connections in use" in role.message
        assert finding(report, "utilization").severity is Severity.OK
    finally:
        held.close_all()
        with psycopg.connect(health_server.dsn(), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS t_capped_db (FORCE)")
            admin.execute("DROP ROLE IF EXISTS t_capped")


# -- idle ratio -----------------------------------------------------------------------------
def test_idle_ratio(held: Sessions, health_alias: str) -> None:
    t = {"IDLE_RATIO_MIN_CONNECTIONS": 4, "IDLE_RATIO_WARNING": 50, "IDLE_RATIO_CRITICAL": 80}
    held.open("t-busy", "active")
    held.open_many(2, "t-idle")
    few = finding(evaluate(settled(health_alias, held), t), "idle_ratio")
    assert few.severity is Severity.OK
    assert "not judged below 4 connections" in few.message

    held.open("t-busy", "active")
    held.open("t-busy", "active")  # 3 active, 2 idle: 40 %
    ratio = finding(evaluate(settled(health_alias, held), t), "idle_ratio")
    assert (ratio.severity, ratio.data["idle_percent"]) == (Severity.OK, 40.0)
    held.open("t-idle")  # 3 of 6: 50 %
    ratio = finding(evaluate(settled(health_alias, held), t), "idle_ratio")
    assert (ratio.severity, ratio.data["idle_percent"]) == (Severity.WARNING, 50.0)
    held.open_many(9, "t-idle")  # 12 of 15: 80 %
    ratio = finding(evaluate(settled(health_alias, held), t), "idle_ratio")
    assert (ratio.severity, ratio.data["idle_connections"]) == (Severity.CRITICAL, 12)


# -- ages -----------------------------------------------------------------------------------
def _ages(code: str, prefix: str, held: Sessions, alias: str, state: str) -> None:
    t = {f"{prefix}_WARNING": 1, f"{prefix}_CRITICAL": 2.5}
    session = held.open("t-age", state)
    held.open("pg_dump", state)  # exempt by default
    held.open("t-backup-7", state)
    exempt = {**t, "EXEMPT_APPLICATIONS": ["pg_dump", "t-backup-*"]}

    result = finding(evaluate(settled(alias, held), exempt), code)
    assert result.severity is Severity.OK, result.message
    time.sleep(1.1)
    snap = settled(alias, held)
    result = finding(evaluate(snap, exempt), code)
    assert result.severity is Severity.WARNING
    assert [s["pid"] for s in result.data["sessions"]] == [session.pid]
    assert result.data["sessions"][0]["application_name"] == "t-age"
    assert "query" not in json.dumps(result.data)
    # Only the default allow-list: the backup job counts now, pg_dump still does not.
    defaults = finding(evaluate(snap, t), code)
    assert {s["application_name"] for s in defaults.data["sessions"]} == {"t-age", "t-backup-7"}
    time.sleep(1.5)
    result = finding(evaluate(settled(alias, held), exempt), code)
    assert result.severity is Severity.CRITICAL
    assert result.data["count"] == 1
    assert result.data["longest_seconds"] >= 2.5


def test_idle_in_transaction(held: Sessions, health_alias: str) -> None:
    _ages("idle_in_transaction", "IDLE_IN_TRANSACTION", held, health_alias, "idle in transaction")


def test_idle_in_transaction_aborted_counts_too(held: Sessions, health_alias: str) -> None:
    session = held.open("t-aborted", "idle in transaction (aborted)")
    time.sleep(1.1)
    t = {"IDLE_IN_TRANSACTION_WARNING": 1}
    result = finding(evaluate(settled(health_alias, held), t), "idle_in_transaction")
    assert result.severity is Severity.WARNING
    assert result.data["sessions"][0]["pid"] == session.pid
    assert result.data["sessions"][0]["state"] == "idle in transaction (aborted)"


def test_long_transaction(held: Sessions, health_alias: str) -> None:
    _ages("long_transaction", "TRANSACTION_AGE", held, health_alias, "idle in transaction")


def test_long_query(held: Sessions, health_alias: str) -> None:
    _ages("long_query", "QUERY_AGE", held, health_alias, "active")


# -- locks ----------------------------------------------------------------------------------
@contextlib.contextmanager
def lock_wait(dsn: str) -> Iterator[tuple[int, int]]:
    """One session holds a table lock, another waits for it: yields (blocker, waiter)."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS t_locked (id int)")
    blocker = psycopg.connect(dsn, application_name="t-locker")
    blocker.execute("LOCK TABLE t_locked IN ACCESS EXCLUSIVE MODE")
    waiter = psycopg.connect(dsn, application_name="t-waiter")

    def wait() -> None:
        with contextlib.suppress(psycopg.Error):
            waiter.execute("LOCK TABLE t_locked IN ACCESS EXCLUSIVE MODE")

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        with psycopg.connect(dsn, autocommit=True) as admin:
            while True:
                row = admin.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                    (waiter.info.backend_pid,),
                ).fetchone()
                if row and row[0] == "Lock":
                    break
                assert time.monotonic() < deadline, "the waiter never waited"
                time.sleep(0.02)
        yield blocker.info.backend_pid, waiter.info.backend_pid
    finally:
        blocker.rollback()
        thread.join(10)
        waiter.close()
        blocker.close()


def test_lock_waits_name_the_blocker(
    held: Sessions, health_server: PgServer, health_alias: str
) -> None:
    t = {"LOCK_WAIT_WARNING": 1, "LOCK_WAIT_CRITICAL": 2.5}
    with lock_wait(health_server.dsn()) as (blocker, waiter):
        result = finding(evaluate(settled(health_alias, held, extra=2), t), "lock_waits")
        assert result.severity is Severity.OK
        assert result.data["count"] == 1
        time.sleep(1.1)
        result = finding(evaluate(settled(health_alias, held, extra=2), t), "lock_waits")
        assert result.severity is Severity.WARNING
        assert result.data["blocking_pids"] == [blocker]
        (session,) = result.data["sessions"]
        assert (session["pid"], session["application_name"]) == (waiter, "t-waiter")
        assert session["blocked_by"] == [
            {"pid": blocker, "application_name": "t-locker", "user": "postgres",
             "state": "idle in transaction"}
        ]  # fmt: skip
        assert f"blocked by pid {blocker} (t-locker)" in result.message
        time.sleep(1.5)
        result = finding(evaluate(settled(health_alias, held, extra=2), t), "lock_waits")
        assert result.severity is Severity.CRITICAL
    result = finding(evaluate(settled(health_alias, held), t), "lock_waits")
    assert (result.severity, result.data["count"]) == (Severity.OK, 0)


# -- visibility -----------------------------------------------------------------------------
def test_restricted_visibility_is_unknown_never_ok(held: Sessions, health_server: PgServer) -> None:
    held.open("t-hidden")  # a superuser's session the plain role cannot inspect
    with psycopg.connect(health_server.dsn(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS t_plain")
        admin.execute("DROP ROLE IF EXISTS t_stats")
        admin.execute("CREATE ROLE t_plain LOGIN PASSWORD 'pw'")
        admin.execute("CREATE ROLE t_stats LOGIN PASSWORD 'pw' IN ROLE pg_read_all_stats")
    try:
        with database_alias("plain", health_server.url_for("t_plain", "pw")):
            report = check_health("plain")
            vis = finding(report, "visibility")
            assert vis.severity is Severity.UNKNOWN
            assert vis.data["hidden_connections"] >= 1
            assert "pg_read_all_stats" in vis.message
            assert report.status is Severity.UNKNOWN
            assert all(f.severity is Severity.OK for f in report.findings if f is not vis)
            # A critical finding on what the role *can* count still wins over unknown.
            tight = {"UTILIZATION_WARNING": 1, "UTILIZATION_CRITICAL": 2}
            assert check_health("plain", tight).status is Severity.CRITICAL
            health = check_connection_health("plain")
            assert health["status"] == "unknown"
            assert health["postgresql_info"]["visibility"] == "restricted"
        with database_alias("stats", health_server.url_for("t_stats", "pw")):
            report = check_health("stats")
            assert finding(report, "visibility").severity is Severity.OK
            assert report.status is Severity.OK
    finally:
        with psycopg.connect(health_server.dsn(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename IN ('t_plain', 't_stats')"
            )
            admin.execute("DROP ROLE t_plain")
            admin.execute("DROP ROLE t_stats")


# -- server unavailable ---------------------------------------------------------------------
def test_full_server_is_critical_not_an_exception(small_server: PgServer) -> None:
    with psycopg.connect(small_server.dsn(), autocommit=True) as admin:
        admin.execute("CREATE ROLE app LOGIN PASSWORD 'pw'")
    held = [psycopg.connect(small_server.dsn("app", "pw")) for _ in range(3)]
    try:
        with database_alias("app", small_server.url_for("app", "pw")):
            health = check_connection_health("app")
        assert health["status"] == "critical"
        assert health["status_code"] == 2
        (only,) = health["findings"]
        assert (only["code"], only["data"]["kind"]) == ("server_full", "reserved")
        assert health["postgresql_info"]["reachable"] is False
        assert health["postgresql_info"]["utilization_percent"] is None

        held += [psycopg.connect(small_server.dsn()) for _ in range(3)]
        with database_alias("full", small_server.url):
            report = check_health("full")
        assert report.status is Severity.CRITICAL
        assert (report.findings[0].code, report.findings[0].data["kind"]) == ("server_full", "full")
        assert "too many clients" in report.findings[0].message
    finally:
        for conn in held:
            conn.close()


def test_unreachable_is_critical_and_bad_password_unknown(health_server: PgServer) -> None:
    with database_alias("gone", f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"):
        report = check_health("gone")
    assert (report.status, report.findings[0].code) == (Severity.CRITICAL, "server_unreachable")
    assert report.snapshot is None
    with database_alias("badpw", health_server.url_for("postgres", "wrong")):
        report = check_health("badpw")
    assert (report.status, report.findings[0].code) == (Severity.UNKNOWN, "authentication_failed")


def test_every_problem_kind_maps_to_a_finding() -> None:
    expected = {
        "full": ("server_full", Severity.CRITICAL),
        "reserved": ("server_full", Severity.CRITICAL),
        "unreachable": ("server_unreachable", Severity.CRITICAL),
        "timeout": ("server_unreachable", Severity.CRITICAL),
        "auth": ("authentication_failed", Severity.UNKNOWN),
        "other": ("server_error", Severity.UNKNOWN),
    }
    for kind, (code, severity) in expected.items():
        report = evaluate_unavailable(ServerUnavailable("boom", kind=kind, alias="x"))  # type: ignore[arg-type]
        assert (report.findings[0].code, report.status, report.alias) == (code, severity, "x")


# -- the dict API ---------------------------------------------------------------------------
def test_check_connection_health_dict(held: Sessions, health_alias: str) -> None:
    held.open_many(2, "t-dict", "idle")
    held.open("t-dict", "idle in transaction")
    held.open("t-dict", "active")
    health = check_connection_health(health_alias)
    json.dumps(health)  # plain JSON types only
    info = health["postgresql_info"]
    assert health["status"] == "ok"
    assert info["total_connections"] == 4  # the reader's own connection is not counted
    assert (info["max_connections"], info["usable_connections"]) == (20, 17)
    assert info["utilization_percent"] == round(4 * 100 / 17, 1)
    assert info["max_connections_utilization_percent"] == 20.0
    assert info["active_connections"] == 1
    assert info["idle_connections"] == 2
    assert info["idle_in_transaction_connections"] == 1
    assert info["free_connections"] == 13
    assert health["server_info"] == info  # postgresql_info is its alias on PostgreSQL
    assert health["schema"] == "dbconnmgr.health/1"
    assert (health["alias"], health["database"]) == (health_alias, "postgres")
    assert {f["code"] for f in health["findings"]} >= {
        "utilization", "idle_ratio", "idle_in_transaction", "long_transaction",
        "long_query", "lock_waits", "visibility",
    }  # fmt: skip
    if (health["postgresql_info"]["utilization_percent"] or 0) > 90:  # the documented pattern
        pytest.fail("not that full")


def test_settings_thresholds_are_used_by_default(
    held: Sessions, health_alias: str, settings
) -> None:
    held.open_many(4, "t-settings")
    assert check_health(health_alias).status is Severity.OK
    settings.DBCONNMGR = {"THRESHOLDS": {"UTILIZATION_WARNING": 10, "UTILIZATION_CRITICAL": 20}}
    assert check_health(health_alias).status is Severity.CRITICAL  # 4 of 17: 23.5 %
    settings.DBCONNMGR = {"THRESHOLDS": {"UTILIZATION_WARNING": 90}}
    with pytest.raises(ValueError, match=r"UTILIZATION_WARNING \(90\) must be below"):
        check_health(health_alias)


def test_unknown_threshold_keys_are_refused(held: Sessions, health_alias: str) -> None:
    snap = settled(health_alias, held)
    with pytest.raises(ValueError, match="unknown key 'UTILISATION_WARNING'"):
        evaluate(snap, {"UTILISATION_WARNING": 50})


def test_threshold_errors() -> None:
    assert threshold_errors({"UTILIZATION_WARNING": 70, "UTILIZATION_CRITICAL": 85}) == []
    assert threshold_errors({"UTILIZATION_WARNING": 120}) == [
        "UTILIZATION_WARNING is a percentage: between 0 (excluded) and 100, got 120"
    ]
    assert "whole number" in threshold_errors({"CONNECTIONS_WARNING": 2.5})[0]
    assert "number or None" in threshold_errors({"QUERY_AGE_WARNING": "60"})[0]
    assert "number or None" in threshold_errors({"QUERY_AGE_WARNING": True})[0]
    assert (
        "must be above" in threshold_errors({"FREE_SLOTS_WARNING": 2, "FREE_SLOTS_CRITICAL": 5})[0]
    )
    assert "list of application names" in threshold_errors({"EXEMPT_APPLICATIONS": "pg_dump"})[0]
