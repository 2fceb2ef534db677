"""Prometheus scrape at 1,000 client connections: dbconnmgr's ``/metrics`` vs
postgres_exporter (Debian ``prometheus-postgres-exporter``, 0.11) on the same server, same
run, scraped in alternation over HTTP on the loopback.

- ``dbconnmgr``: example_project under gunicorn (one sync worker), ``GET /dbconnmgr/metrics``
  with a bearer token: one snapshot of the server (every pg_stat_activity row, the limits),
  the health checks, this process's figures.
- ``postgres_exporter``: its default collectors (pg_stat_activity counts, pg_settings,
  databases, locks, bgwriter, replication...), ``GET /metrics``.

``BENCH_SCRAPE_ROUNDS`` (default 21) sets the rounds; the table shows medians.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_load import stop, wait_until_serving
from bench.common import (
    bench_server,
    idle_connections,
    interleaved_samples,
    load_average,
    print_table,
    ratio_spread,
    spread_text,
)
from devtools.pgserver import PgServer, free_port
from devtools.system_packages import ensure_debian_packages, find_binary

#: Beyond the project's dependencies (gunicorn serves /metrics); see bench/setup.py.
NEEDS = ("gunicorn", "prometheus_client")

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 1000
TOKEN = "bench-scrape-token-0123456789"
EXPORTER = "prometheus-postgres-exporter"


def getter(port: int, path: str, token: str | None = None) -> Callable[[], int]:
    """A function that GETs ``path`` on a kept-alive connection; returns the body's size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get() -> int:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} on port {port}: HTTP {response.status}: {body[:200]!r}")
        return len(body)

    return get


def wait_for(fn: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fn()
            return
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout} s: {exc}") from exc
            time.sleep(0.2)


def exporter_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown version"


def run(server: PgServer, binary: str, rounds: int) -> None:
    env = dict(os.environ)
    exporter_port, web_port = free_port(), free_port()
    exporter = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{exporter_port}"],
        env={**env, "DATA_SOURCE_NAME": server.url + "?sslmode=disable"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "example_project.wsgi:application",
         "--workers", "1", "--bind", f"127.0.0.1:{web_port}", "--log-level", "error"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "DJANGO_SETTINGS_MODULE": "example_project.settings",
             "DATABASE_URL": server.url, "DB_POOL": "false", "DBCONNMGR_HEALTH_TOKENS": TOKEN},
    )  # fmt: skip
    try:
        wait_until_serving(web_port)
        scrapes: dict[str, Callable[[], object]] = {
            "dbconnmgr /metrics": getter(web_port, "/dbconnmgr/metrics", TOKEN),
            "postgres_exporter": getter(exporter_port, "/metrics"),
        }
        for name, get in scrapes.items():
            wait_for(get, name)
        sizes = {name: int(str(get())) for name, get in scrapes.items()}
        samples = interleaved_samples(scrapes, repeat=rounds)
    finally:
        stop(exporter)
        stop(web)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["postgres_exporter"]
    rows: list[tuple[str, ...]] = [
        (name, f"{seconds * 1000:.1f}",
         f"{min(samples[name]) * 1000:.1f}-{max(samples[name]) * 1000:.1f}",
         f"{seconds / base:.2f}",
         spread_text(*ratio_spread(samples, name, "postgres_exporter")), f"{sizes[name]:,}")
        for name, seconds in medians.items()
    ]  # fmt: skip
    print_table(
        f"Scrape at {CONNECTIONS} idle client connections, medians of {rounds} interleaved "
        f"rounds, wall time over HTTP ({exporter_version(binary)}; {load_average()})",
        rows,
        ("scrape", "median ms", "min-max ms", "ratio of medians",
         "per-round ratio: median (min-max)", "bytes"),
    )  # fmt: skip


def main() -> None:
    ensure_debian_packages({EXPORTER: EXPORTER})
    binary = find_binary(EXPORTER)
    if binary is None:
        raise SystemExit(f"{EXPORTER} not found after installing it")
    rounds = int(os.environ.get("BENCH_SCRAPE_ROUNDS", "21"))
    with bench_server() as server, idle_connections(server.dsn(), CONNECTIONS, "bench-idle"):
        run(server, binary, rounds)
