"""close-idle of 1,000 idle connections, side by side with django-pgactivity.

For each run 1,000 idle sessions of an ordinary role (``application_name`` bench-idle) are
opened (not timed), then one contender terminates them (timed):

- ``dbconnmgr close_idle_connections()``: the library, in this process: selection, one
  terminating statement, and the wait until every backend has really exited.
- ``pgactivity ...terminate()``: django-pgactivity's queryset in this process (it signals
  and returns; it does not wait for the backends to exit).
- raw SQL ``SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ...``: the floor
  (no re-check, no report, no wait for exit).
- ``manage.py db_connections --action=close-idle --noinput`` and
  ``manage.py pgactivity --terminate -y``: the two commands, each a whole process, with
  ``manage.py check`` as the process-startup baseline.

After each run the server is asked how many of the 1,000 are still there, right away (for
pgactivity) and the terminating statements dbconnmgr executed are counted. dbconnmgr's audit
log (one line per termination) is written to memory, not the terminal, but is written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_server, load_average, print_table, setup_django

#: Beyond the project's dependencies: django-pgactivity (not pg-activity, whose top-level
#: package is also named pgactivity); see bench/setup.py.
NEEDS = ("pgactivity.models",)

COUNT = 1000
APP = "bench-idle"
REPEAT = int(os.environ.get("BENCH_CLOSE_IDLE_RUNS", "5"))
ROOT = Path(__file__).resolve().parent.parent


def _open_idle(socket_dsn: str) -> list[psycopg.Connection]:
    conns = []
    for _ in range(COUNT):
        conn = psycopg.connect(socket_dsn, application_name=APP, autocommit=True)
        conns.append(conn)
    return conns


def _remaining(admin: psycopg.Connection) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP,)
    ).fetchone()
    return int(row[0]) if row else -1


def _manage(url: str, settings_module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE=settings_module)
    env["PYTHONPATH"] = str(ROOT)
    # As installed (pip writes bytecode): the warm-up runs write the project's .pyc files,
    # which a shell's PYTHONDONTWRITEBYTECODE would otherwise make every run recompile.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    with bench_server(max_connections=COUNT + 100) as server:
        assert server.root is not None
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("CREATE ROLE bench_app LOGIN")
        # Unix socket + trust: opening 1,000 sessions per run stays cheap.
        socket_dsn = f"host={server.root} port={server.port} user=bench_app dbname=postgres"
        setup_django(server.url, "bench.pgactivity_settings")

        from django.db import connection
        from pgactivity.models import PGActivity

        from dbconnmgr import close_idle_connections

        audit = logging.getLogger("dbconnmgr")
        audit.handlers = [logging.StreamHandler(io.StringIO())]
        audit.propagate = False

        terminating: list[int] = []

        def count_terminating(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if "pg_terminate_backend" in sql:
                terminating[-1] += 1
            return execute(sql, params, many, context)

        def lib_dbconnmgr() -> str:
            terminating.append(0)
            with connection.execute_wrapper(count_terminating):
                report = close_idle_connections(application=APP, older_than=0)
            return f"reported {len(report.terminated)} terminated"

        def lib_pgactivity() -> str:
            pids = PGActivity.objects.filter(application_name=APP).terminate()
            return f"reported {len(pids)} terminated"

        def raw_sql() -> str:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s",
                    (APP,),
                ).fetchone()
            return f"signalled {row[0] if row else '?'}"

        def cli_dbconnmgr() -> str:
            out = _manage(server.url, "example_project.settings", "db_connections",
                          "--action=close-idle", f"--application={APP}", "--idle-for=0",
                          "--noinput", "--format=json")  # fmt: skip
            assert out.returncode == 0, out.stderr
            return f"reported {len(json.loads(out.stdout)['terminated'])} terminated"

        def cli_pgactivity() -> str:
            out = _manage(server.url, "bench.pgactivity_settings", "pgactivity", "--terminate",
                          "-y", "-f", f"application_name={APP}")  # fmt: skip
            assert out.returncode == 0, out.stderr
            return f"said {out.stdout.strip()!r}"

        contenders: dict[str, Callable[[], str]] = {
            "dbconnmgr close_idle_connections()": lib_dbconnmgr,
            "pgactivity PGActivity...terminate()": lib_pgactivity,
            "raw SQL pg_terminate_backend (floor)": raw_sql,
            "manage.py db_connections --action=close-idle": cli_dbconnmgr,
            "manage.py pgactivity --terminate -y": cli_pgactivity,
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        notes: dict[str, str] = {}
        left: dict[str, list[int]] = {name: [] for name in contenders}
        gone: dict[str, list[float]] = {name: [] for name in contenders}
        startup: list[float] = []
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            for _ in range(REPEAT):
                start = time.perf_counter()
                check = _manage(server.url, "example_project.settings", "check")
                startup.append(time.perf_counter() - start)
                assert check.returncode == 0, check.stderr
                for name, fn in contenders.items():
                    conns = _open_idle(socket_dsn)
                    assert _remaining(admin) == COUNT
                    start = time.perf_counter()
                    notes[name] = fn()
                    samples[name].append(time.perf_counter() - start)
                    left[name].append(_remaining(admin))
                    while _remaining(admin):  # until the server has really let them go
                        time.sleep(0.005)
                    gone[name].append(time.perf_counter() - start)
                    for conn in conns:
                        conn.close()

    base = statistics.median(samples["dbconnmgr close_idle_connections()"])
    rows: list[tuple[str, ...]] = []
    for name in contenders:
        med = statistics.median(samples[name])
        rows.append((
            name,
            f"{med:.3f} ({min(samples[name]):.3f}-{max(samples[name]):.3f})",
            f"{med / base:.2f}x",
            f"{statistics.median(gone[name]):.3f}",
            notes[name],
            f"{max(left[name])}",
        ))  # fmt: skip
    startup_median = statistics.median(startup)
    rows.append(("manage.py check (process startup)", f"{startup_median:.3f}",
                 f"{startup_median / base:.2f}x",
                 "-", "-", "-"))  # fmt: skip
    print_table(
        f"close {COUNT} idle connections: median (min-max) of {REPEAT} runs, seconds; "
        f"{load_average()}",
        rows,
        ("contender", "returns after", "vs dbconnmgr lib", "all gone after", "what it said",
         "max still there on return"),
    )  # fmt: skip
    lib = samples["dbconnmgr close_idle_connections()"]
    floor = samples["raw SQL pg_terminate_backend (floor)"]
    gone_ratios = sorted(
        ours / base
        for ours, base in zip(
            gone["dbconnmgr close_idle_connections()"],
            gone["raw SQL pg_terminate_backend (floor)"],
            strict=True,
        )
    )
    print(
        f"\ndbconnmgr returns after {statistics.median(lib):.3f} s "
        f"({min(lib):.3f}-{max(lib):.3f}); the floor's backends are all gone after "
        f"{statistics.median(gone['raw SQL pg_terminate_backend (floor)']):.3f} s; per run, "
        "dbconnmgr's all-gone / the floor's all-gone: median "
        f"{statistics.median(gone_ratios):.2f}x "
        f"({gone_ratios[0]:.2f}-{gone_ratios[-1]:.2f}x); floor returns "
        f"{statistics.median(floor):.3f} s"
    )
    print(
        f"terminating statements per dbconnmgr run: {sorted(set(terminating))} "
        f"(target: exactly 1); target for close-idle of {COUNT}: <= 1 s "
        f"-> {'met' if base <= 1.0 else 'NOT met'} ({base:.3f} s)"
    )
