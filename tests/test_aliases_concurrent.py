"""Several aliases read at once, on one server with 20 aliases: a bounded number of reader
connections open at a time, one reader for aliases that connect the same way, and no alias
counting another alias's reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT, Sessions, dsn_to_url, manage, superuser_dsn

SETTINGS = "tests.settings_aliases"
ROLES = [f"t_alias{i:02d}" for i in range(10)]


@pytest.fixture
def alias_roles(make_role: Callable[..., str]) -> list[str]:
    return [make_role(name, "pw", "pg_monitor") for name in ROLES]


@contextmanager
def readers_watched(dsn: str) -> Iterator[list[int]]:
    """Poll the server while the block runs; yields the list of how many sessions of the
    alias roles were open at each look."""
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY(%s)", (ROLES,)
                ).fetchone()
                seen.append(int(row[0]) if row else 0)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=10)


def _documents(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.usefixtures("alias_roles")
@pytest.mark.parametrize("action", ["status", "health"])
def test_twenty_aliases_count_the_same_sessions(action: str, sessions: Sessions) -> None:
    sessions.open_many(3, "t-aliases")
    with readers_watched(superuser_dsn()) as seen:
        result = manage(
            "db_connections", f"--action={action}", "--database=all", "--format=json",
            settings_module=SETTINGS,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = _documents(result.stdout)
    assert [d["alias"] for d in docs] == [
        "default", *(f"same{i:02d}" for i in range(10)), *(f"role{i:02d}" for i in range(10))
    ]  # fmt: skip
    if action == "status":
        # every alias saw the same sessions: none counted a reader of another alias
        assert len({d["total_connections"] for d in docs}) == 1, [
            (d["alias"], d["total_connections"]) for d in docs
        ]
        held = [{g["name"]: g["connections"] for g in d["by_application"]} for d in docs]
        assert {groups.get("t-aliases") for groups in held} == {3}
    from dbconnmgr.readers import DEFAULT_MAX_READERS

    assert seen and max(seen) <= DEFAULT_MAX_READERS
    assert max(seen) >= 1  # the watch did see readers of the role aliases


READ = """
import json, django
django.setup()
from dbconnmgr.readers import read_snapshots
aliases = ["default", *(f"same{i:02d}" for i in range(10)), *(f"role{i:02d}" for i in range(10))]
results = read_snapshots(aliases, max_readers=2)
print(json.dumps({
    alias: [s.own_pid, s.total_connections, [c.pid for c in s.connections]]
    for alias, s in results.items()
}))
"""


@pytest.mark.usefixtures("alias_roles")
def test_read_snapshots_bounds_readers_and_leaves_them_out() -> None:
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, DATABASE_URL=dsn_to_url(superuser_dsn())
    )
    with readers_watched(superuser_dsn()) as seen:
        result = subprocess.run(
            [sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    read: dict[str, list[Any]] = json.loads(result.stdout)
    own = {alias: pid for alias, (pid, _, _) in read.items()}
    # aliases that connect as default does share default's reader; each role has its own
    assert {own[f"same{i:02d}"] for i in range(10)} == {own["default"]}
    assert len({own[f"role{i:02d}"] for i in range(10)} | {own["default"]}) == 11
    readers = set(own.values())
    for alias, (pid, _total, pids) in read.items():
        assert not (set(pids) & (readers - {pid})), f"{alias} counted another reader"
    assert len({total for _, total, _ in read.values()}) == 1
    assert seen and max(seen) <= 2


@pytest.mark.usefixtures("alias_roles")
def test_monitor_samples_twenty_aliases_together(sessions: Sessions) -> None:
    sessions.open_many(2, "t-aliases-monitor")
    with readers_watched(superuser_dsn()) as seen:
        result = manage(
            "db_connections", "--action=monitor", "--database=all", "--format=json", "--watch",
            "--count=2", "--interval=0.3", settings_module=SETTINGS,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = _documents(result.stdout)
    assert len(docs) == 2 * 21
    for tick in (docs[:21], docs[21:]):
        assert [d["alias"] for d in tick][:2] == ["default", "same00"]
        assert len({d["total_connections"] for d in tick}) == 1  # no reader counted twice
        assert {d["by_application"].get("t-aliases-monitor") for d in tick} == {2}
    from dbconnmgr.readers import DEFAULT_MAX_READERS

    assert seen and 1 <= max(seen) <= DEFAULT_MAX_READERS
    # no reader stays open between ticks: the watch saw none again after the first tick's
    first = next(i for i, n in enumerate(seen) if n)
    assert 0 in seen[first:]


def test_an_unreachable_alias_is_judged_while_the_others_are_read() -> None:
    from devtools.pgserver import free_port

    result = manage(
        "db_connections", "--action=health", "--database=default,same00,down",
        "--format=json", settings_module=SETTINGS,
        extra_env={"T_ALIASES_DOWN_PORT": str(free_port())},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # the server of `down` is not there
    assert "Traceback" not in result.stderr
    docs = {d["alias"]: d for d in _documents(result.stdout)}
    assert list(docs) == ["default", "same00", "down"]
    assert docs["down"]["status"] == "critical"
    assert docs["default"]["server_info"]["reachable"] is True
    assert docs["down"]["server_info"]["reachable"] is False


def test_monitor_reports_an_unreachable_alias_and_goes_on() -> None:
    from devtools.pgserver import free_port

    result = manage(
        "db_connections", "--action=monitor", "--database=default,down", "--format=json",
        "--watch", "--count=2", "--interval=0.2", settings_module=SETTINGS,
        extra_env={"T_ALIASES_DOWN_PORT": str(free_port())},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # the last sample of `down` is unreachable
    assert "Traceback" not in result.stderr
    docs = _documents(result.stdout)
    assert [(d["alias"], d["sequence"], d["reachable"]) for d in docs] == [
        ("default", 1, True), ("down", 1, False), ("default", 2, True), ("down", 2, False),
    ]  # fmt: skip
