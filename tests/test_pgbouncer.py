"""PgBouncer: both sides of a pooler, read from a real PgBouncer in front of a real server.

The suite starts PgBouncer (transaction mode, default_pool_size 2) in front of a PostgreSQL
with 17 usable slots (tests/conftest.py). Clients hold transactions through it so that
servers are in use and further clients wait, as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

import devtools.demo
from dbconnmgr.backends.pgbouncer import PgBouncerConsole, read_console
from dbconnmgr.checks.databases import Context, check_database_settings
from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable
from dbconnmgr.database_settings import database_config
from devtools.pgbouncerserver import ADMIN_USER, NOBODY_USER, PgBouncerServer
from devtools.pgserver import PgServer, free_port
from devtools.system_packages import MissingPackages
from tests.conftest import ROOT, manage


@contextlib.contextmanager
def busy_pool(bouncer: PgBouncerServer, holders: int, waiters: int) -> Iterator[None]:
    """``holders`` clients inside a transaction (each holds a server connection) and
    ``waiters`` clients blocked waiting for one, released at exit."""
    conns = []
    threads = []
    try:
        for i in range(holders):
            conn = psycopg.connect(bouncer.url(), application_name=f"holder-{i}")
            conn.execute("SELECT 1")  # BEGIN ... SELECT: the transaction keeps its server
            conns.append(conn)
        for _ in range(waiters):
            conn = psycopg.connect(bouncer.url(), application_name="waiter", autocommit=True)
            conns.append(conn)

            def wait(c: psycopg.Connection[Any] = conn) -> None:
                with contextlib.suppress(psycopg.Error):
                    c.execute("SELECT 1")

            thread = threading.Thread(target=wait, daemon=True)
            thread.start()
            threads.append(thread)
        console = PgBouncerConsole("default", bouncer.console_url())
        deadline = time.monotonic() + 10
        while console.read().waiting_clients < waiters:
            assert time.monotonic() < deadline, "clients never started waiting"
            time.sleep(0.05)
        yield
    finally:
        for conn in conns[:holders]:
            conn.rollback()  # frees the server connection: the waiters get theirs
        for thread in threads:
            thread.join(timeout=10)
        for conn in conns:
            conn.close()


def run(
    action: str, bouncer: PgBouncerServer, pgbouncer: Any, *args: str, url: str | None = None
) -> Any:
    return manage(
        "db_connections",
        f"--action={action}",
        *args,
        database_url=url or bouncer.url(),
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"PGBOUNCER": {"default": pgbouncer}})},
    )


def configured(bouncer: PgBouncerServer, upstream: PgServer) -> dict[str, str]:
    return {"CONSOLE": bouncer.console_url(), "SERVER": upstream.url}


def test_console_reads_pools_clients_and_settings(bouncer: PgBouncerServer) -> None:
    with busy_pool(bouncer, holders=2, waiters=1):
        pooler = PgBouncerConsole("default", bouncer.console_url()).read()
    assert pooler.version.startswith("PgBouncer 1.")
    assert pooler.pool_mode == "transaction"
    assert pooler.setting("default_pool_size") == 2
    (pool,) = [p for p in pooler.pools if p.user == "postgres"]
    assert (pool.database, pool.pool_mode, pool.pool_size) == ("postgres", "transaction", 2)
    assert pool.active_servers == 2
    assert pool.waiting_clients == 1
    assert pool.saturation_percent == 100.0
    assert all(p.database != "pgbouncer" for p in pooler.pools), "the console's own pool"
    apps = {name: count for name, count, _ in pooler.by_application()}
    assert apps["waiter"] == 1 and apps["holder-0"] == 1
    assert pooler.max_server_connections() == 2


def test_status_shows_pgbouncer_beside_the_server(
    bouncer: PgBouncerServer, bouncer_upstream: PgServer
) -> None:
    setting = configured(bouncer, bouncer_upstream)
    with busy_pool(bouncer, holders=2, waiters=1):
        result = run("status", bouncer, setting, "--format=json")
        table = run("status", bouncer, setting)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["server"]["usable_connections"] == 17  # read on the server directly
    part = doc["pgbouncer"]
    assert part["reachable"] is True and part["error"] is None
    assert part["waiting_client_connections"] == 1
    (pool,) = [p for p in part["pools"] if p["user"] == "postgres"]
    assert pool["active_server_connections"] == 2 and pool["pool_size"] == 2
    # the two server connections PgBouncer holds are PostgreSQL client backends too
    assert doc["total_connections"] >= 2
    assert table.returncode == 0, table.stderr
    assert "PgBouncer pools" in table.stdout and "transaction" in table.stdout


def test_health_finds_waiting_clients_and_a_saturated_pool(
    bouncer: PgBouncerServer, bouncer_upstream: PgServer
) -> None:
    setting = configured(bouncer, bouncer_upstream)
    with busy_pool(bouncer, holders=2, waiters=1):
        result = run("health", bouncer, setting, "--format=json")
    doc = json.loads(result.stdout)
    findings = {f["code"]: f for f in doc["findings"]}
    assert findings["pgbouncer_waiting"]["severity"] == "warning"
    assert findings["pgbouncer_waiting"]["data"]["waiting_clients"] == 1
    assert findings["pgbouncer_saturation"]["severity"] == "critical"
    assert findings["pgbouncer_saturation"]["subject"] == "postgres/postgres"
    assert findings["pgbouncer_server_connections"]["severity"] == "ok"
    assert findings["utilization"]["severity"] == "ok"  # the server part still reports
    assert result.returncode == 2
    assert doc["pgbouncer"]["reachable"] is True

    quiet = run("health", bouncer, setting, "--format=json")
    codes = {f["code"]: f["severity"] for f in json.loads(quiet.stdout)["findings"]}
    assert codes["pgbouncer_waiting"] == "ok" and codes["pgbouncer_saturation"] == "ok"


def test_health_flags_pool_sizes_beyond_the_servers_slots(bouncer_upstream: PgServer) -> None:
    """Pool sizes 30 against 17 usable slots: PgBouncer could exhaust the server."""
    with PgBouncerServer(bouncer_upstream, default_pool_size=30, reserve_pool_size=2) as big:
        with psycopg.connect(big.url(), autocommit=True) as client:
            client.execute("SELECT 1")
            result = run("health", big, configured(big, bouncer_upstream), "--format=json")
        capped = PgBouncerServer(bouncer_upstream, default_pool_size=30, max_db_connections=10)
        with capped, psycopg.connect(capped.url(), autocommit=True) as client:
            client.execute("SELECT 1")
            pooler = PgBouncerConsole("default", capped.console_url()).read()
    finding = next(
        f for f in json.loads(result.stdout)["findings"]
        if f["code"] == "pgbouncer_server_connections"
    )  # fmt: skip
    assert finding["severity"] == "critical"
    assert finding["data"]["max_server_connections"] == 32
    assert finding["data"]["usable_connections"] == 17
    assert pooler.max_server_connections() == 10  # max_db_connections caps the pool


@pytest.mark.parametrize(
    ("console", "kind", "words"),
    [
        ("unreachable", "unreachable", "PgBouncer console 127.0.0.1:"),
        ("nobody", "auth", "stats_users"),
        ("server", "not_console", "not PgBouncer's console"),
        ("database", "not_console", "not PgBouncer's console"),
    ],
)
def test_a_console_that_cannot_be_read_is_one_line_and_unknown(
    bouncer: PgBouncerServer, bouncer_upstream: PgServer, console: str, kind: str, words: str
) -> None:
    url = {
        "unreachable": f"postgres://pgb_stats:x@127.0.0.1:{free_port()}/pgbouncer",
        "nobody": bouncer.console_url(NOBODY_USER),
        "server": bouncer_upstream.url,
        "database": bouncer.url(),  # PgBouncer's port, a real database
    }[console]
    problem = read_console("default", url)
    assert isinstance(problem, PoolerUnavailable), problem
    assert problem.kind == kind
    assert words in problem.message
    assert "\n" not in problem.message

    setting = {"CONSOLE": url, "SERVER": bouncer_upstream.url}
    health = run("health", bouncer, setting, "--format=json")
    doc = json.loads(health.stdout)
    codes = {f["code"]: f["severity"] for f in doc["findings"]}
    assert codes["pgbouncer_unavailable"] == "unknown"
    assert codes["utilization"] == "ok"  # the server part still reports
    assert doc["status"] == "unknown" and health.returncode == 3
    assert doc["pgbouncer"]["reachable"] is False
    assert "Traceback" not in health.stderr

    status = run("status", bouncer, setting)
    assert status.returncode == 3
    assert "Slots" in status.stdout  # the server part was shown
    (line,) = status.stderr.strip().splitlines()
    assert line.startswith("error: PgBouncer console") and words in line


def test_admin_user_reads_the_console_too(bouncer: PgBouncerServer) -> None:
    pooler = read_console("default", bouncer.console_url(ADMIN_USER))
    assert isinstance(pooler, PoolerSnapshot)


# -- settings for an alias behind PgBouncer -----------------------------------------------------
def test_database_config_behind_a_transaction_pooler() -> None:
    env = {"DATABASE_URL": "postgres://app:pw@pgbouncer:6432/app", "DB_PGBOUNCER": "transaction"}
    config = database_config(env=env, service="web")
    assert config["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert config["OPTIONS"]["prepare_threshold"] is None
    assert "pool" not in config["OPTIONS"]  # PgBouncer is the pool
    session = database_config(env={**env, "DB_PGBOUNCER": "session"})
    assert "pool" not in session["OPTIONS"] and "DISABLE_SERVER_SIDE_CURSORS" not in session
    with pytest.raises(ImproperlyConfigured, match="DB_POOL with DB_PGBOUNCER=transaction"):
        database_config(env={**env, "DB_POOL": "true"})
    with pytest.raises(ImproperlyConfigured, match="DB_PGBOUNCER must be a PgBouncer pool_mode"):
        database_config(env={**env, "DB_PGBOUNCER": "transactions"})


def test_unsafe_settings_behind_a_transaction_pooler_are_errors() -> None:
    pooled = database_config(
        env={"DATABASE_URL": "postgres://app:pw@pgbouncer:6432/app"}, pool=True,
        OPTIONS={"prepare_threshold": 5},
    )  # fmt: skip
    ctx = Context(pooler_modes={"default": "transaction"})
    messages = check_database_settings({"default": pooled}, context=ctx)
    texts = [m.msg for m in messages if m.id == "dbconnmgr.E018"]
    assert len(texts) == 3
    assert any("native pool" in t for t in texts)
    assert any("server-side cursors" in t for t in texts)
    assert any("prepare_threshold" in t for t in texts)
    safe = database_config(
        env={"DATABASE_URL": "postgres://app:pw@pgbouncer:6432/app", "DB_PGBOUNCER": "transaction"}
    )
    assert check_database_settings({"default": safe}, context=ctx) == []
    # session mode keeps the session: nothing to refuse
    session = Context(pooler_modes={"default": "session"})
    assert check_database_settings({"default": pooled}, context=session) == []


def test_django_through_a_transaction_pooler_with_database_config(
    bouncer: PgBouncerServer,
) -> None:
    """The settings database_config() makes work through PgBouncer in transaction mode:
    queries, atomic blocks, and .iterator() (a client-side cursor)."""
    script = (
        "import json, django; django.setup()\n"
        "from django.db import connection, transaction\n"
        "with connection.cursor() as c:\n"
        "    c.execute('SELECT count(*) FROM generate_series(1, 10)'); n = c.fetchone()[0]\n"
        "with transaction.atomic():\n"
        "    with connection.cursor() as c:\n"
        "        c.execute('SELECT 1')\n"
        "with connection.chunked_cursor() as c:\n"  # what QuerySet.iterator() uses
        "    c.execute('SELECT generate_series(1, 5)')\n"
        "    rows = [r[0] for r in c.fetchmany(2) + c.fetchmany(3)]\n"
        "print(json.dumps({'n': n, 'rows': rows}))\n"
    )
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=bouncer.url(), DB_PGBOUNCER="transaction",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
        cwd=ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"n": 10, "rows": [1, 2, 3, 4, 5]}


def test_budget_counts_pgbouncer_pool_sizes_not_the_services_threads(
    bouncer: PgBouncerServer, bouncer_upstream: PgServer
) -> None:
    """4 processes x 32 threads through PgBouncer: the server sees at most its 2 + 0."""
    with psycopg.connect(bouncer.url(), autocommit=True) as client:
        client.execute("SELECT 1")  # the postgres/postgres pool exists
        result = run(
            "budget", bouncer, configured(bouncer, bouncer_upstream),
            "--service", "web=4x32", "--format=json", "--headroom=0",
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["through_pgbouncer"] == ["web"]
    assert [(s["name"], s["connections"]) for s in doc["services"]] == [("pgbouncer", 2)]
    assert doc["demand"] == 2 and doc["fits"] is True
    # without PgBouncer the same service asks for 128 connections of 17
    direct = manage(
        "db_connections", "--action=budget", "--service", "web=4x32", "--format=json",
        database_url=bouncer_upstream.url, settings_module="tests.settings_cli",
    )  # fmt: skip
    assert json.loads(direct.stdout)["demand"] == 128 and direct.returncode == 1


# -- the demo's PgBouncer part -------------------------------------------------------------------
def test_demo_shows_pgbouncer_beside_the_server(
    bouncer_upstream: PgServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """The demo's part, through example_project's settings: a client waits, status shows the
    pools and the waiting client's application, health flags the saturated pool."""
    devtools.demo.pgbouncer_part(bouncer_upstream)
    out = capfd.readouterr().out
    assert "$ python manage.py db_connections --action=status" in out
    assert "PgBouncer pools" in out and "1 waiting" in out
    assert "celery-worker" in out.split("PgBouncer clients by application")[1]
    health = out.split("--action=health")[1]
    assert health.startswith("\nCRITICAL: default:")
    assert "pgbouncer_saturation:postgres/postgres" in health
    assert "pgbouncer_waiting" in health


def test_demo_skips_pgbouncer_with_one_line_when_it_cannot_run(
    bouncer_upstream: PgServer, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    devtools.demo.pgbouncer_part(None)  # DATABASE_URL given: no throwaway server to front
    assert capfd.readouterr().out.strip().splitlines() == [
        "PgBouncer part skipped: it needs the demo's throwaway server (DATABASE_URL is set)"
    ]

    def missing(*args: object, **kwargs: object) -> None:
        raise MissingPackages("missing Debian packages pgbouncer: run as root: apt-get ...")

    monkeypatch.setattr(devtools.demo, "PgBouncerServer", missing)  # as non-root, not installed
    devtools.demo.pgbouncer_part(bouncer_upstream)
    lines = capfd.readouterr().out.strip().splitlines()
    assert lines == [
        "PgBouncer part skipped: missing Debian packages pgbouncer: run as root: apt-get ..."
    ]
