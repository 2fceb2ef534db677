"""Load: 128 concurrent clients against gunicorn (4 processes x 32 threads) and a server with
max_connections 50, for three connection settings measured side by side in one run.

- ``persistent``: Django's persistent connections, one per thread (CONN_MAX_AGE=600, no pool)
- ``conn_max_age_0``: a new connection per request (CONN_MAX_AGE=0, no pool)
- ``helpers``: dbconnmgr.database_settings.database_config(), pool sized by dbconnmgr.core.budget

Every configuration serves example_project's ``/products/`` view (one query) through
``example_project.settings``, configured only by environment variables. Errors are the
server's refusals ("too many clients", reserved slots) counted in the PostgreSQL log, and
the 5xx answers the clients saw. Throughput counts successful answers only.

``BENCH_LOAD_SECONDS`` (default 5) and ``BENCH_LOAD_ROUNDS`` (default 3) tune the run; the
table shows medians over the rounds.
"""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.common import bench_server, print_table
from dbconnmgr.core.budget import Service, compute_budget
from devtools.pgserver import PgServer, free_port

#: Beyond the project's dependencies (gunicorn serves example_project); see bench/setup.py.
NEEDS = ("gunicorn",)

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4
THREADS = 32
CLIENTS = PROCESSES * THREADS
MAX_CONNECTIONS = 50
HEADROOM = 3  # slots kept for psql and this benchmark's own monitoring connection
REFUSALS = ("too many clients", "remaining connection slots are reserved")


@dataclass
class Round:
    """One measurement window of one configuration."""

    ok: int = 0
    failed: int = 0  # 5xx answers and broken HTTP connections
    refused: int = 0  # server log lines: connection refused for lack of slots
    peak_connections: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def budgeted_pool_size(usable: int) -> int:
    """DB_MAX_CONNS for the web service, from the budget (10 for 47 usable slots)."""
    web = Service("web", processes=PROCESSES, threads=THREADS, pool_max_size=1)
    return compute_budget([web], usable, headroom=HEADROOM).safe_pool_max_size


def configurations(pool_max_size: int) -> dict[str, dict[str, str]]:
    """Environment of each configuration (on top of DATABASE_URL)."""
    return {
        "persistent (CONN_MAX_AGE=600)": {"DB_POOL": "false", "CONN_MAX_AGE": "600"},
        "CONN_MAX_AGE=0": {"DB_POOL": "false", "CONN_MAX_AGE": "0"},
        f"helpers (pool {pool_max_size}/process)": {
            "DB_POOL": "true",
            "DB_PROFILE": "production",
            "DB_MAX_CONNS": str(pool_max_size),
            "DB_MIN_CONNS": str(pool_max_size),
            "DB_POOL_TIMEOUT": "20",
        },
    }


def start_gunicorn(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """gunicorn with gthread workers serving example_project."""
    args = [
        sys.executable, "-m", "gunicorn", "example_project.wsgi:application",
        "--worker-class", "gthread", "--workers", str(PROCESSES), "--threads", str(THREADS),
        "--bind", f"127.0.0.1:{port}", "--keep-alive", "30", "--timeout", "120",
        "--backlog", "512", "--log-level", "error",
    ]  # fmt: skip
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_until_serving(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/products/")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn on port {port} did not answer within {timeout} s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def refusals_in_log(server: PgServer) -> int:
    assert server.root is not None
    text = (server.root / "log").read_text(errors="replace").lower()
    return sum(text.count(fragment) for fragment in REFUSALS)


def load(port: int, seconds: float, server: PgServer, application_name: str) -> Round:
    """CLIENTS threads, each a keep-alive HTTP client, for ``seconds``; loopback only."""
    result = Round()
    lock = threading.Lock()
    start_barrier = threading.Barrier(CLIENTS + 1)
    stop_at = [0.0]

    def client() -> None:
        ok = failed = 0
        latencies: list[float] = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start_barrier.wait()
        while time.monotonic() < stop_at[0]:
            began = time.perf_counter()
            try:
                conn.request("GET", "/products/")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    ok += 1
                    latencies.append(time.perf_counter() - began)
                else:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()
        with lock:
            result.ok += ok
            result.failed += failed
            result.latencies.extend(latencies)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    refused_before = refusals_in_log(server)
    with psycopg.connect(server.dsn(), autocommit=True) as monitor:
        began = time.monotonic()
        stop_at[0] = began + seconds
        start_barrier.wait()
        while time.monotonic() < stop_at[0]:
            row = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND application_name = %s",
                (application_name,),
            ).fetchone()
            result.peak_connections = max(result.peak_connections, row[0] if row else 0)
            time.sleep(0.1)
        for thread in threads:
            thread.join(120)
        result.seconds = time.monotonic() - began
    result.refused = refusals_in_log(server) - refused_before
    return result


#: A configuration's set-up around each of its rounds: given the server, it yields the
#: environment to add (e.g. a DATABASE_URL through a pooler it started) and cleans up after.
Setup = Callable[[PgServer], AbstractContextManager[dict[str, str]]]


@contextmanager
def no_setup(server: PgServer) -> Iterator[dict[str, str]]:
    """Nothing around the round: gunicorn connects to ``server`` directly."""
    yield {}


@dataclass(frozen=True)
class Config:
    """One way to configure Django's connections: environment variables, and a set-up."""

    name: str
    env: dict[str, str]
    setup: Setup = no_setup


def run_rounds(
    server: PgServer, configs: list[Config], rounds: int, seconds: float
) -> dict[str, list[Round]]:
    """``rounds`` rounds of every configuration, interleaved, each behind its own gunicorn."""
    results: dict[str, list[Round]] = {config.name: [] for config in configs}
    for round_no in range(rounds):
        for index, config in enumerate(configs):
            app = f"bench-load-{index}"
            with config.setup(server) as extra:
                env = {
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": "example_project.settings",
                    "DATABASE_URL": server.url,
                    "DB_APPLICATION_NAME": app,
                    **config.env,
                    **extra,
                }
                port = free_port()
                proc = start_gunicorn(port, env)
                try:
                    wait_until_serving(port)
                    results[config.name].append(load(port, seconds, server, app))
                finally:
                    stop(proc)
            print(
                f"  round {round_no + 1} {config.name}: {results[config.name][-1].rps:.0f} req/s, "
                f"{results[config.name][-1].failed} failed",
                flush=True,
            )
    return results


def print_summary(results: dict[str, list[Round]], baseline_name: str) -> None:
    """Medians over the rounds, throughput as a ratio to ``baseline_name``'s."""
    baseline = statistics.median(r.rps for r in results[baseline_name])
    rows: list[tuple[str, ...]] = []
    for name, measured in results.items():
        rps = statistics.median(r.rps for r in measured)
        latencies = sorted(x for r in measured for x in r.latencies)
        p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
        rows.append(
            (
                name,
                f"{rps:.0f}",
                f"{rps / baseline:.2f}x" if baseline else "-",
                str(int(statistics.median(r.failed for r in measured))),
                str(int(statistics.median(r.refused for r in measured))),
                str(max(r.peak_connections for r in measured)),
                f"{p50:.1f}",
            )
        )
    print_table(
        "Load: successful requests/s (median of rounds) and errors per round (median)",
        rows,
        ("settings", "ok req/s", f"vs {baseline_name}", "5xx/round", "refused/round",
         "peak conns", "p50 ms"),
    )  # fmt: skip


def rounds_and_seconds() -> tuple[int, float]:
    """``BENCH_LOAD_ROUNDS`` and ``BENCH_LOAD_SECONDS``."""
    return int(os.environ.get("BENCH_LOAD_ROUNDS", "3")), float(
        os.environ.get("BENCH_LOAD_SECONDS", "5")
    )


def print_setup(usable: int, budget: str, rounds: int, seconds: float) -> None:
    """The run's first line: clients, gunicorn, server, how the pools were sized, rounds."""
    print(
        f"{CLIENTS} clients -> gunicorn gthread {PROCESSES} x {THREADS} -> PostgreSQL "
        f"max_connections {MAX_CONNECTIONS} ({usable} usable); budget: {budget}; "
        f"{rounds} rounds x {seconds:g} s",
        flush=True,
    )


def main() -> None:
    rounds, seconds = rounds_and_seconds()
    with bench_server(max_connections=MAX_CONNECTIONS) as server:
        usable = MAX_CONNECTIONS - 3  # superuser_reserved_connections defaults to 3
        pool_max_size = budgeted_pool_size(usable)
        configs = [Config(name, env) for name, env in configurations(pool_max_size).items()]
        print_setup(
            usable,
            f"floor(({usable} - {HEADROOM}) x 0.95 / {PROCESSES}) = {pool_max_size} per process",
            rounds,
            seconds,
        )
        results = run_rounds(server, configs, rounds, seconds)
    print_summary(results, "CONN_MAX_AGE=0")
