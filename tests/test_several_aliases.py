"""``--database`` with several aliases or ``all``: one document per alias; health's worst code."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from tests.conftest import ROOT, Sessions, drain_terminal, dsn_to_url, manage, superuser_dsn

SETTINGS = "tests.settings_pool"  # aliases default and pooled (PostgreSQL), legacy (SQLite)


def documents(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_status_all_is_one_json_line_per_postgresql_alias() -> None:
    result = manage(
        "db_connections", "--action=status", "--database=all", "--format=json",
        settings_module=SETTINGS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert [d["alias"] for d in docs] == ["default", "pooled"]  # legacy is SQLite


def test_health_exits_with_the_worst_code(sessions: Sessions) -> None:
    sessions.open_many(2, "t-several")
    # legacy (SQLite) cannot be checked: UNKNOWN (3); default is over count:2: CRITICAL (2).
    result = manage(
        "db_connections", "--action=health", "--database=legacy,default", "--format=json",
        "--warning=count:1", "--critical=count:2", settings_module=SETTINGS,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # critical outranks unknown
    [doc] = documents(result.stdout)
    assert (doc["alias"], doc["status"]) == ("default", "critical")
    assert result.stderr.startswith("UNKNOWN: ")


def test_other_actions_take_one_alias() -> None:
    result = manage(
        "db_connections", "--action=close-idle", "--database=default,pooled", "--dry-run",
        settings_module=SETTINGS,
    )  # fmt: skip
    assert result.returncode == 3
    assert "--action=close-idle takes one --database alias" in result.stderr
    assert "Traceback" not in result.stderr


def test_monitor_writes_one_json_line_per_alias_per_sample(sessions: Sessions) -> None:
    sessions.open_many(2, "t-several-monitor")
    result = manage(
        "db_connections", "--action=monitor", "--database=all", "--format=json", "--watch",
        "--count=2", "--interval=0.2", settings_module=SETTINGS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert [(d["alias"], d["sequence"]) for d in docs] == [
        ("default", 1), ("pooled", 1), ("default", 2), ("pooled", 2),
    ]  # fmt: skip
    # both aliases read the same server here: each line counts the held sessions
    for doc in docs:
        by_application = doc["by_application"]
        assert isinstance(by_application, dict)
        assert by_application.get("t-several-monitor") == 2


def test_the_live_view_refuses_a_list_on_a_terminal() -> None:
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, DATABASE_URL=dsn_to_url(superuser_dsn())
    )
    master, slave = pty.openpty()
    with subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "db_connections", "--action=monitor",
         "--database=default,pooled"],
        cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    ) as proc:  # fmt: skip
        os.close(slave)
        code = proc.wait(timeout=60)
    text = drain_terminal(master).decode(errors="replace")
    os.close(master)
    assert code == 3, text
    assert "the live view shows one alias" in text and "--format=json" in text
    assert "Traceback" not in text
