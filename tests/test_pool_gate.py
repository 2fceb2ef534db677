"""The connector gate, explained pool errors and per-process figures, against the real server.

Each case runs in a fresh Python (its own pools and counters), configured by
``database_config()`` from the environment, as a project's settings.py would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg

from devtools.pgserver import PgServer
from tests.conftest import ROOT

# A project's settings.py in a few lines, then the scenario; it prints one JSON document.
PRELUDE = """
import json, os, sys, threading, time
import django
from django.conf import settings
from dbconnmgr.database_settings import database_config
settings.configure(
    INSTALLED_APPS=["dbconnmgr"], USE_TZ=True,
    DATABASES={"default": database_config(service="gate-test")},
)
django.setup()
from django.db import connection, connections, OperationalError
from dbconnmgr import process_stats

def figures():
    return process_stats.collect(["default"])[0]

def hold(seconds, ready):
    connection.ensure_connection()
    ready.set()
    time.sleep(seconds)
    connection.close()

def held(seconds=3.0):
    ready = threading.Event()
    thread = threading.Thread(target=hold, args=(seconds, ready), daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread

def attempt():
    t0 = time.monotonic()
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        return {"error": str(exc), "cause": type(exc.__cause__).__name__,
                "seconds": time.monotonic() - t0}
    finally:
        connection.close()
    return {"error": None, "seconds": time.monotonic() - t0}
"""


def run(scenario: str, url: str, **env: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "CONN_"))} | {
        "DATABASE_URL": url,
        **env,
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + scenario],
        capture_output=True, text=True, env=environment, timeout=120, cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def session_url() -> str:
    return os.environ["DATABASE_URL"]


def test_reject_fails_at_once_naming_the_limit_and_the_setting() -> None:
    out = run(
        """
thread = held()
result = attempt()
f = figures()
print(json.dumps({**result, "rejected": f.rejected, "size": f.pool_size, "max": f.pool_max}))
""",
        session_url(),
        DB_POOL_SIZE="1",
        DB_POOL_ON_FULL="reject",
        DB_POOL_TIMEOUT="20",
    )
    assert out["cause"] == "PoolRejected"
    assert "database 'default'" in out["error"]
    assert "all 1 pooled connections" in out["error"]
    assert "DB_POOL_ON_FULL=reject" in out["error"] and "DB_MAX_CONNS" in out["error"]
    assert out["seconds"] < 10  # not the 20 s of the queue's timeout
    assert (out["rejected"], out["size"], out["max"]) == (1, 1, 1)


def test_queue_waits_the_timeout_then_explains() -> None:
    out = run(
        """
thread = held(5)
result = attempt()
f = figures()
print(json.dumps({**result, "timeouts": f.timeouts, "queued": f.requests_queued,
                  "wait": f.wait_seconds}))
""",
        session_url(),
        DB_POOL_SIZE="1",
        DB_POOL_TIMEOUT="0.5",
    )
    assert out["cause"] == "PoolExhausted"
    assert out["error"].startswith("database 'default': no pooled connection within 0.5 s: ")
    assert "1 of 1 connections of this process, 0 free" in out["error"]
    assert "DB_POOL_TIMEOUT" in out["error"]
    assert out["seconds"] >= 0.5
    # the first checkout may queue too, while the pool opens its first connection
    assert out["timeouts"] == 1 and out["queued"] >= 1 and out["wait"] >= 0.5


def test_full_queue_fails_at_once_naming_max_waiting() -> None:
    out = run(
        """
thread = held(5)
waiter = threading.Thread(target=attempt, daemon=True)
waiter.start()
deadline = time.monotonic() + 10
while figures().requests_waiting != 1 and time.monotonic() < deadline:
    time.sleep(0.01)
result = attempt()
print(json.dumps(result))
""",
        session_url(),
        DB_POOL_SIZE="1",
        DB_POOL_MAX_WAITING="1",
        DB_POOL_TIMEOUT="20",
    )
    assert out["cause"] == "PoolExhausted"
    assert "1 requests already wait" in out["error"]
    assert "DB_POOL_MAX_WAITING=1" in out["error"]
    assert out["seconds"] < 10


def test_sqlalchemy_names_size_the_real_pool() -> None:
    out = run(
        """
connection.ensure_connection()
pool = connection.pool
connection.close()
print(json.dumps({"min": pool.min_size, "max": pool.max_size, "timeout": pool.timeout,
                  "lifetime": pool.max_lifetime, "check": pool._check is not None}))
""",
        session_url() + "?pool_size=2&max_overflow=3&pool_recycle=120",
        DB_POOL_TIMEOUT="7",
        DB_POOL_PRE_PING="true",
    )
    assert out == {"min": 2, "max": 5, "timeout": 7.0, "lifetime": 120.0, "check": True}


def test_churn_of_an_unpooled_alias() -> None:
    out = run(
        """
for _ in range(3):
    connection.ensure_connection()
    connection.close()
f = figures()
print(json.dumps({"opened": f.opened, "closed": f.closed, "pooled": f.pooled}))
""",
        session_url(),
        DB_POOL="false",
        CONN_MAX_AGE="0",
    )
    assert out == {"opened": 3, "closed": 3, "pooled": False}


def test_failures_are_counted_by_cause(small_server: PgServer) -> None:
    wrong = small_server.url_for("postgres", "wrong-password")
    scenario = """
for _ in range(2):
    attempt()
print(json.dumps(figures().failures))
"""
    assert run(scenario, wrong, DB_POOL="false")["auth"] == 2
    # Pooled: the pool connects in its own threads; the engine still sees the cause.
    pooled = run(scenario, wrong, DB_POOL_SIZE="1", DB_POOL_TIMEOUT="1")
    assert pooled["auth"] >= 1 and pooled["other"] == 0

    hogs = [psycopg.connect(small_server.dsn()) for _ in range(6)]  # reserved slots too: full
    try:
        full = run(
            scenario, small_server.url_for("postgres", small_server.password), DB_POOL="false"
        )
    finally:
        for hog in hogs:
            hog.close()
    assert full["too_many_clients"] == 2


def test_a_checkout_ends_once_however_the_connection_is_closed() -> None:
    """The engine's close() ends a checkout once: closed twice, closed inside atomic()."""
    out = run(
        """
from django.db import transaction
out = {}
for _ in range(3):
    connection.ensure_connection()
    connection.close()
    connection.close()  # nothing left to return
out["after_cycles"] = figures().in_use
try:
    with transaction.atomic():
        connection.ensure_connection()
        out["in_atomic"] = figures().in_use
        connection.close()
        connection.close()  # closed in the transaction already
        out["closed_in_atomic"] = figures().in_use
except Exception as exc:
    out["exit"] = type(exc).__name__
out["after"] = figures().in_use
out["again"] = attempt()["error"]
out["rejected"] = figures().rejected
print(json.dumps(out))
""",
        session_url(),
        DB_POOL_SIZE="1",
        DB_POOL_ON_FULL="reject",
    )
    assert out["after_cycles"] == 0
    assert (out["in_atomic"], out["closed_in_atomic"], out["after"]) == (1, 0, 0), out
    assert out["again"] is None and out["rejected"] == 0, out
