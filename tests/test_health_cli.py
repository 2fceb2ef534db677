"""``--action=health``: Nagios exit codes from real servers, one clear line when it cannot."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from devtools.pgserver import PgServer, free_port
from tests.conftest import Sessions, manage


def health(server_url: str, *args: str, dbconnmgr: dict[str, Any] | None = None):
    return manage(
        "db_connections",
        "--action=health",
        *args,
        database_url=server_url,
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps(dbconnmgr or {})},
    )


def first_line(result) -> str:
    line: str = result.stdout.splitlines()[0]
    return line


def test_exit_codes_follow_utilization(held: Sessions, health_server: PgServer) -> None:
    """0 below 70 %, 1 from 70 %, 2 from 85 % of the 17 usable slots (reader excluded)."""
    quiet = {"THRESHOLDS": {"IDLE_RATIO_WARNING": None}}
    held.open_many(6, "t-cli")
    result = health(health_server.url, dbconnmgr=quiet)
    assert result.returncode == 0, result.stdout + result.stderr
    assert first_line(result).startswith(
        "OK: default: every check passed | utilization=35.3%;70;85"
    )

    held.open_many(6, "t-cli")  # 12 of 17
    result = health(health_server.url, dbconnmgr=quiet)
    assert result.returncode == 1, result.stdout + result.stderr
    assert first_line(result).startswith("WARNING: default: 1 warning - 12 of 17 usable slots")

    held.open_many(3, "t-cli")  # 15 of 17
    result = health(health_server.url, "--format=json", dbconnmgr=quiet)
    assert result.returncode == 2, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "critical"
    assert payload["postgresql_info"]["total_connections"] == 15
    assert payload["findings"][0]["code"] == "utilization"

    # Table output: the Nagios line first, then every check; no colour without a terminal.
    result = health(health_server.url)
    assert result.returncode == 2
    assert "\x1b[" not in result.stdout
    assert first_line(result).startswith("CRITICAL: default: 1 critical, 1 warning - 15 of 17")
    assert " | utilization=88.2%;70;85;0;100 connections=15;;;0;17" in first_line(result)
    for code in ("utilization", "idle_ratio", "idle_in_transaction", "lock_waits", "visibility"):
        assert code in result.stdout


def test_warning_and_critical_options(held: Sessions, health_server: PgServer) -> None:
    held.open_many(6, "t-opt")  # 6 of 17 in use (35.3 %), 11 free
    assert health(health_server.url, "--warning=30").returncode == 1
    assert health(health_server.url, "--warning=30%", "--critical=35").returncode == 2
    assert health(health_server.url, "--warning=count:6").returncode == 1
    assert health(health_server.url, "--critical=count:7").returncode == 0
    result = health(health_server.url, "--warning=free:12", "--critical=free:11")
    assert result.returncode == 2
    assert "only 11 usable slot(s) left" in first_line(result)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--warning=lots"], "--warning: expected a percentage of usable slots"),
        (["--critical=count:2.5"], "whole number"),
        (["--warning=90"], "UTILIZATION_WARNING (90) must be below UTILIZATION_CRITICAL (85)"),
        (["--warning=150%"], "between 0 (excluded) and 100"),
        (["--database=nope"], "unknown database alias 'nope'"),
    ],
)
def test_a_check_that_cannot_run_exits_3(args: list[str], fragment: str) -> None:
    result = manage("db_connections", "--action=health", *args)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("UNKNOWN: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_health_options_are_refused_by_other_actions() -> None:
    result = manage("db_connections", "--action=status", "--warning=50")
    assert result.returncode == 3
    assert "--warning does not apply to --action=status" in result.stderr


def test_restricted_role_exits_3(make_role, sessions: Sessions) -> None:
    from tests.conftest import dsn_to_url

    sessions.open("t-cli-hidden")
    plain = make_role("t_cli_plain")
    result = manage("db_connections", "--action=health", database_url=dsn_to_url(plain))
    assert result.returncode == 3, result.stdout + result.stderr
    assert first_line(result).startswith("UNKNOWN: default: 1 unknown - restricted visibility")


def test_full_reserved_unreachable_exit_2_and_bad_password_3(small_server: PgServer) -> None:
    with psycopg.connect(small_server.dsn(), autocommit=True) as admin:
        admin.execute("CREATE ROLE app LOGIN PASSWORD 'pw'")
    held = [psycopg.connect(small_server.dsn("app", "pw")) for _ in range(3)]
    try:
        result = health(small_server.url_for("app", "pw"))
        assert result.returncode == 2, result.stdout + result.stderr
        assert first_line(result).startswith("CRITICAL: default: 1 critical - ")
        assert "only reserved slots are left" in first_line(result)

        result = health(small_server.url_for("app", "wrong"))
        assert result.returncode == 3, result.stdout + result.stderr
        assert "authentication failed" in first_line(result)

        held += [psycopg.connect(small_server.dsn()) for _ in range(3)]
        result = health(small_server.url, "--format=json")
        assert result.returncode == 2, result.stderr
        payload = json.loads(result.stdout)
        assert payload["findings"][0]["code"] == "server_full"
        assert "Traceback" not in result.stderr
    finally:
        for conn in held:
            conn.close()

    result = health(f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres")
    assert result.returncode == 2
    assert "cannot connect" in first_line(result)
