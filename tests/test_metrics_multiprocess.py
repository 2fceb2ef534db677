"""/metrics under gunicorn with several workers (prometheus_client multiprocess mode): the
per-process figures are the sum over the workers, whichever worker answers the scrape."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.bench_load import stop
from devtools.pgserver import free_port
from tests.conftest import ROOT, dsn_to_url

TOKEN = "t0ken-for-the-multiprocess-metrics-test"
APP = "t-multiproc"
WORKERS = 2
POOL = 2  # DB_MIN_CONNS = DB_MAX_CONNS: a worker that served a request holds exactly 2


def get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Connection": "close", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def gunicorn(dsn: str, tmp_path: Path) -> Iterator[int]:
    """example_project under gunicorn, WORKERS sync workers (one request at a time each, so
    concurrent clients reach every worker), multiprocess mode, pooled."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("from dbconnmgr.metrics import child_exit  # noqa: F401\n")
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=dsn_to_url(dsn),
        DB_POOL="true",
        DB_MIN_CONNS=str(POOL),
        DB_MAX_CONNS=str(POOL),
        DB_APPLICATION_NAME=APP,
        DBCONNMGR_HEALTH_TOKENS=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "example_project.wsgi:application", "-c", str(config),
         "--worker-class", "sync", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--log-level", "error"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/dbconnmgr/metrics", TOKEN)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        yield port
    finally:
        stop(proc)


def app_connections(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP,)
        ).fetchone()
    return int(row[0]) if row else 0


def figures(text: str) -> dict[str, float]:
    """alias="default" samples by sample name (summed over any remaining labels)."""
    result: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("alias") == "default" and sample.name.startswith("dbconnmgr_"):
                result[sample.name] = result.get(sample.name, 0.0) + sample.value
    return result


def test_per_process_figures_are_summed_over_the_workers(gunicorn: int, dsn: str) -> None:
    port = gunicorn
    clients, each = 8, 25
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:  # a new HTTP connection per request: the workers share them
        got = [get(port, "/products/")[0] for _ in range(each)]
        with lock:
            statuses.extend(got)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * (clients * each)
    # Both workers served requests: each opened its pool of POOL connections.
    assert app_connections(dsn) == WORKERS * POOL
    # Every worker writes its figures at least every PUBLISH_SECONDS; wait for them.
    expected = {
        "dbconnmgr_pool_size": WORKERS * POOL,
        "dbconnmgr_pool_max": WORKERS * POOL,
        "dbconnmgr_pool_available": WORKERS * POOL,
        "dbconnmgr_pool_requests_total": clients * each,
        "dbconnmgr_connections_opened_total": WORKERS * POOL,
        "dbconnmgr_connections_closed_total": 0,
    }
    deadline = time.monotonic() + 15
    while True:
        status, text = get(port, "/dbconnmgr/metrics", TOKEN)
        assert status == 200, text
        seen = {name: figures(text).get(name) for name in expected}
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert seen == expected
    # Whichever worker answers, the same sums (and the server's gauges beside them).
    for _ in range(6):
        status, text = get(port, "/dbconnmgr/metrics", TOKEN)
        assert {name: figures(text).get(name) for name in expected} == expected
        assert 'dbconnmgr_up{alias="default"} 1.0' in text
        assert "pid=" not in text


_THREADS_AFTER_SETUP = """
import threading, django
django.setup()
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("dbconnmgr")))
from django.test import Client
Client().get("/dbconnmgr/health/")  # any request: this process serves requests
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("dbconnmgr")))
"""


def test_only_a_process_that_serves_requests_starts_the_metrics_writer(
    dsn: str, tmp_path: Path
) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set (django-prometheus users set it), migrate or shell
    start no thread: the writer starts at a process's first request."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=dsn_to_url(dsn),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_AFTER_SETUP],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    before, after = out.stdout.splitlines()[-2:]
    assert before == "[]"
    assert after == "['dbconnmgr-metrics']"
