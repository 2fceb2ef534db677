"""Attribution against the real server: which view, command or task holds each session."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import AsyncClient, Client

from dbconnmgr import check_connection_health, connection_monitor, process_stats, take_snapshot
from dbconnmgr.attribution import attributed, install
from dbconnmgr.core.attribution import clean_label, code_comment, code_of
from dbconnmgr.core.snapshot import Connection, Snapshot
from dbconnmgr.identity import command_name, process_application_name
from tests import attribution_views
from tests.conftest import superuser_dsn

ROOT = Path(__file__).resolve().parent.parent
SYNC_VIEW = "view:tests.attribution_views.hold_transaction"
ASYNC_VIEW = "view:tests.attribution_views.hold_transaction_async"


@pytest.fixture
def attribution_on(settings) -> Iterator[None]:
    install()
    settings.DBCONNMGR = {"ATTRIBUTION": True}
    settings.MIDDLEWARE = ["dbconnmgr.attribution.AttributionMiddleware", *settings.MIDDLEWARE]
    settings.ROOT_URLCONF = "tests.attribution_views"
    attribution_views.HELD.clear()
    attribution_views.RELEASE.clear()
    yield
    attribution_views.RELEASE.set()


def _in_thread(work: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _sessions_of(code: str, timeout: float = 10) -> tuple[Snapshot, list[Connection]]:
    deadline = time.monotonic() + timeout
    while True:
        snap = take_snapshot("default")
        found = [c for c in snap.others() if c.code == code]
        if found or time.monotonic() > deadline:
            return snap, found
        time.sleep(0.1)


def _status_json() -> Any:
    out = io.StringIO()
    call_command("db_connections", "--action=status", "--format=json", "--limit=50", stdout=out)
    return json.loads(out.getvalue())


def _idle_in_transaction_finding() -> Any:
    health = check_connection_health(
        "default", {"IDLE_IN_TRANSACTION_WARNING": 1, "IDLE_IN_TRANSACTION_CRITICAL": 3600}
    )
    return next(f for f in health["findings"] if f["code"] == "idle_in_transaction")


def test_a_view_holding_a_transaction_is_named_in_status_and_health(attribution_on) -> None:
    thread = _in_thread(lambda: Client().get("/hold/"))
    assert attribution_views.HELD.wait(10)
    time.sleep(1.2)  # past the 1 s threshold below
    _, found = _sessions_of(SYNC_VIEW)
    assert [c.state for c in found] == ["idle in transaction"]

    groups = {g["name"]: g for g in _status_json()["by_code"]}
    assert groups[SYNC_VIEW]["connections"] == 1
    assert groups[SYNC_VIEW]["by_state"] == {"idle in transaction": 1}

    finding = _idle_in_transaction_finding()
    assert finding["severity"] == "warning"
    assert "from view `tests.attribution_views.hold_transaction`" in finding["message"]
    assert finding["data"]["by_code"][SYNC_VIEW] == 1
    assert SYNC_VIEW in [s["code"] for s in finding["data"]["sessions"]]

    attribution_views.RELEASE.set()
    thread.join(10)


def test_an_async_view_is_named_too(attribution_on) -> None:
    thread = _in_thread(lambda: asyncio.run(AsyncClient().get("/hold-async/")))
    assert attribution_views.HELD.wait(10)
    time.sleep(1.2)
    _, found = _sessions_of(ASYNC_VIEW)
    assert [c.state for c in found] == ["idle in transaction"]
    assert (
        "from view `tests.attribution_views.hold_transaction_async`"
        in (_idle_in_transaction_finding()["message"])
    )
    attribution_views.RELEASE.set()
    thread.join(10)


def test_the_idle_session_keeps_its_last_statement_label(attribution_on) -> None:
    done = threading.Event()
    release = threading.Event()

    def work() -> None:
        with attributed("task", "t-idle-label"), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        done.set()
        release.wait(10)  # the connection stays open, idle, outside any scope

    thread = _in_thread(work)
    assert done.wait(10)
    _, found = _sessions_of("task:t-idle-label")
    assert [c.state for c in found] == ["idle"]
    release.set()
    thread.join(10)


def test_a_management_command_appears_under_its_own_label(attribution_on) -> None:
    done, release = threading.Event(), threading.Event()

    def work() -> None:
        call_command("showmigrations", "dbconnmgr", stdout=io.StringIO())
        done.set()
        release.wait(10)  # its connection stays open: idle, its last statement the command's

    thread = _in_thread(work)
    assert done.wait(20)
    _, found = _sessions_of("command:showmigrations")
    release.set()
    thread.join(10)
    assert [c.state for c in found] == ["idle"]


def test_connection_monitor_labels_nest_inside_the_code(attribution_on, dsn: str) -> None:
    held, release = threading.Event(), threading.Event()

    def work() -> None:
        with (
            attributed("task", "t-outer"),
            connection_monitor("inner", sample_server=False),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT 1")
            held.set()
            release.wait(10)

    thread = _in_thread(work)
    assert held.wait(10)
    _, found = _sessions_of("task:t-outer")
    assert len(found) == 1
    with psycopg.connect(dsn, autocommit=True) as psql:
        row = psql.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (found[0].pid,)
        ).fetchone()
    assert row is not None
    assert row[0] == code_comment("task:t-outer", "inner") + "SELECT 1"
    release.set()
    thread.join(10)


HOSTILE = "x'*/ SELECT 1; --\n\x1b[31m<script>alert(1)</script>[bold]%s"


def test_hostile_labels_stay_inside_the_comment_and_out_of_every_output(
    attribution_on, dsn: str
) -> None:
    held, release = threading.Event(), threading.Event()

    def work() -> None:
        with (
            attributed("task", HOSTILE),
            connection_monitor(HOSTILE, sample_server=False),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT %s", [1])  # with parameters: "%" must stay escaped
            cursor.execute("SELECT 2")
            held.set()
            release.wait(10)

    thread = _in_thread(work)
    assert held.wait(10)
    code = "task:x'*/ SELECT 1; -- [31m<script>alert(1)</script>[bold]%s"
    snap, found = _sessions_of(code)
    assert len(found) == 1, [c.code for c in snap.others()]
    with psycopg.connect(dsn, autocommit=True) as psql:
        row = psql.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (found[0].pid,)
        ).fetchone()
    assert row is not None
    query = row[0]
    # The comment ends where dbconnmgr ended it: the statement that ran is the code's own.
    assert query == code_comment(code, clean_label(HOSTILE)) + "SELECT 2"
    assert query.count("*/") == 1 and "\n" not in query and "\x1b" not in query

    # The terminal table shows the label literally, without control characters.
    from dbconnmgr.render import Renderer

    out = io.StringIO()
    Renderer(out).status(snap, limit=100)
    text = out.getvalue()
    assert "<script>alert(1)</script>[bold]" in text
    assert "\x1b" not in text

    # /metrics: the label value is escaped by the exposition format and parses back whole.
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from dbconnmgr.metrics import DatabaseCollector

    registry = CollectorRegistry()
    registry.register(DatabaseCollector(["default"], process_figures=False))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    codes = {s.labels["code"] for s in families["dbconnmgr_connections_by_code"].samples}
    assert code in codes

    release.set()
    thread.join(10)


def test_leak_detection_logs_the_stack_that_took_the_connection(
    attribution_on, settings, caplog
) -> None:
    settings.DBCONNMGR = {"ATTRIBUTION": True, "LEAK_THRESHOLD": 0.3}
    before = process_stats.collect(["default"])[0].leaks
    caplog.set_level(logging.WARNING, logger="dbconnmgr.leaks")
    thread = _in_thread(lambda: Client().get("/hold/"))
    assert attribution_views.HELD.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not caplog.records:
        time.sleep(0.05)
    attribution_views.RELEASE.set()
    thread.join(10)
    records = [r for r in caplog.records if r.name == "dbconnmgr.leaks"]
    assert records, "no leak was logged"
    first = records[0].getMessage()
    assert first.startswith(f"{SYNC_VIEW} has held a ")
    assert 'cursor.execute("SELECT 1")  # takes the connection' in first
    assert "attribution_views.py" in first
    # Once per hold (connection, transaction), not once per check.
    kinds = [r.getMessage().split(" on ")[0] for r in records]
    assert len(kinds) == len(set(kinds)) <= 2
    assert process_stats.collect(["default"])[0].leaks - before == len(records)


def test_the_celery_task_name_labels_its_statements(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    from devtools.redisserver import RedisServer

    redis = RedisServer().start()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings_attribution",
        CELERY_BROKER_URL=redis.url,
    )
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--pool=solo",
         "--concurrency=1", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        os.environ["CELERY_BROKER_URL"] = redis.url
        from tests.celery_app import app, hold_connection

        app.conf.broker_url = redis.url
        hold_connection.delay(6)
        _, found = _sessions_of("task:tests.celery_app.hold_connection", timeout=30)
        assert found, (tmp_path / "worker.log").read_text()[-2000:]
        assert found[0].state == "idle in transaction"
    finally:
        worker.terminate()
        worker.wait(20)
        log.close()
        redis.stop()


def test_command_names_and_process_identity_fit_63_bytes() -> None:
    assert command_name(["manage.py", "db_connections", "--action=status"]) == "db_connections"
    assert command_name(["/srv/app/manage.py", "migrate"]) == "migrate"
    assert command_name(["gunicorn", "proj.wsgi"]) is None
    assert command_name(["manage.py", "--help"]) is None
    name = process_application_name("web:db_connections", host="app-1.example.internal", pid=48213)
    assert name == "web:db_connections@app-1.example.internal:48213"
    long = process_application_name("w" * 80, host="h" * 80, pid=4194304)
    assert len(long.encode()) == 63 and long.endswith(":4194304")
    assert process_application_name("wéb", host="h", pid=1) == "w?b@h:1"  # ASCII, as PG keeps


def test_database_config_names_the_command_in_application_name(monkeypatch) -> None:
    from dbconnmgr.database_settings import database_config

    url = "postgres://u:p@db.example:5432/shop"
    monkeypatch.setattr(sys, "argv", ["manage.py", "migrate"])
    assert (
        database_config(env={"DATABASE_URL": url}, service="web")["OPTIONS"]["application_name"]
        == "web:migrate"
    )
    config = database_config(env={"DATABASE_URL": url}, service="web", process_identity=True)
    assert (
        config["OPTIONS"]["application_name"]
        == (f"web:migrate@{socket.gethostname()}:{os.getpid()}")[:63]
        or len(config["OPTIONS"]["application_name"]) <= 63
    )
    assert config["OPTIONS"]["application_name"].endswith(f":{os.getpid()}")
    with pytest.raises(Exception, match="process_identity needs an engine"):
        database_config(env={"DATABASE_URL": "mysql://u:p@db.example/shop"}, process_identity=True)


_IDENTITY_SCRIPT = """
import os, sys, django
from django.conf import settings
from dbconnmgr.database_settings import database_config
settings.configure(DATABASES={"default": database_config(service="web", process_identity=True)},
                   INSTALLED_APPS=[])
django.setup()
from django.db import connection
connection.ensure_connection()
print(os.getpid(), flush=True)
sys.stdin.readline()
"""


def test_two_processes_on_one_host_are_told_apart_by_application_name() -> None:
    from tests.conftest import dsn_to_url

    env = dict(os.environ, DATABASE_URL=dsn_to_url(superuser_dsn()))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _IDENTITY_SCRIPT],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        pids = [int(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
        snap = take_snapshot("default")
        names = {c.application_name for c in snap.others()}
        host = socket.gethostname().split(".")[0]
        for pid in pids:
            assert any(n.startswith("web@") and n.endswith(f":{pid}") and host in n for n in names)
    finally:
        for p in procs:
            p.communicate("\n", timeout=20)


def test_code_of_reads_back_only_well_formed_comments() -> None:
    assert code_of(code_comment("view:a.b", None) + "SELECT 1") == "view:a.b"
    assert code_of("SELECT 1 /*dbconnmgr_code='view%3Aa'*/") is None
    assert code_of("/*dbconnmgr_code='view%3Aa.b SELECT 1") is None  # never closed
    assert code_of("/*dbconnmgr_monitor='bulk'*/ SELECT 1") == "block:bulk"
    assert code_of(None) is None


@pytest.mark.django_db
def test_the_admin_page_shows_filters_and_groups_by_code(attribution_on, django_user_model) -> None:
    from django.contrib.auth.models import Permission

    held, release = threading.Event(), threading.Event()

    def work() -> None:
        with attributed("task", HOSTILE), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            held.set()
            release.wait(10)

    thread = _in_thread(work)
    try:
        assert held.wait(10)
        code = "task:x'*/ SELECT 1; -- [31m<script>alert(1)</script>[bold]%s"
        assert _sessions_of(code)[1]
        user = django_user_model.objects.create_user("codeviewer", password="pw", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_connections"))
        client = Client()
        client.force_login(user)
        page = "/admin/dbconnmgr/connections/default/"
        html = client.get(page).content.decode()
        escaped = "task:x&#x27;*/ SELECT 1; -- [31m&lt;script&gt;alert(1)&lt;/script&gt;[bold]%s"
        assert "<th>code</th>" in html
        assert 'id="dbc-by-code"' in html and escaped in html
        assert "<script>alert(1)" not in html
        filtered = client.get(page, {"code": code}).content.decode()
        assert "Connections (1 matching" in filtered
        assert (
            client.get(page, {"code": "view:nothing.here"})
            .content.decode()
            .count("No connection matches.")
            == 1
        )
    finally:
        release.set()
        thread.join(10)


def test_top_codes_keeps_n_labels_and_sums_the_rest_as_other() -> None:
    from dbconnmgr.core.attribution import top_codes

    counts = {f"view:v{n}": n for n in range(1, 16)}
    top = top_codes(counts, 3)
    assert top == {"view:v15": 15, "view:v14": 14, "view:v13": 13, "other": sum(range(1, 13))}
    assert top_codes({"view:a": 2}, 3) == {"view:a": 2}


def test_clean_label_drops_control_characters_and_caps_the_length() -> None:
    from dbconnmgr.core.attribution import MAX_LABEL_LENGTH

    assert clean_label("a\nb\x1b[1m\u202ec") == "a b [1m c"
    assert len(clean_label("x" * 500)) == MAX_LABEL_LENGTH
    assert clean_label("shop.views.export") == "shop.views.export"


def test_a_connection_monitor_block_holding_a_transaction_too_long_is_logged(
    attribution_on, settings, caplog
) -> None:
    settings.DBCONNMGR = {"ATTRIBUTION": True, "LEAK_THRESHOLD": 0.2}
    caplog.set_level(logging.WARNING, logger="dbconnmgr.leaks")

    def work() -> None:
        with (
            attributed("task", "t-outer-task"),
            connection_monitor("t-slow-block", sample_server=False, log=False),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT 1")  # the block's first statement
            time.sleep(0.8)

    _in_thread(work).join(10)
    messages = [r.getMessage() for r in caplog.records if r.name == "dbconnmgr.leaks"]
    assert len(messages) == 1, messages
    assert messages[0].startswith("task:t-outer-task block:t-slow-block has held a transaction")
    assert 'cursor.execute("SELECT 1")  # the block\'s first statement' in messages[0]


def test_the_command_hook_wraps_basecommand_execute_once(attribution_on) -> None:
    """internals.wrap_command_execute: the one method every way of running a command
    passes through keeps its signature and is wrapped once however often it is asked."""
    from django.core.management.base import BaseCommand

    from dbconnmgr import internals
    from dbconnmgr.attribution import _command_execute

    wrapped = BaseCommand.execute
    assert getattr(wrapped, "_dbconnmgr_wrapped", False)
    internals.wrap_command_execute(_command_execute)
    assert BaseCommand.execute is wrapped
    assert wrapped.__wrapped__.__qualname__ == "BaseCommand.execute"  # type: ignore[attr-defined]
