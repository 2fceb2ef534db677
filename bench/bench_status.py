"""Status at 1,000 client connections, beside baselines measured in the same run.

1. In-process: ``take_snapshot()`` (every row, limits, aggregations) vs one raw aggregate
   query over pg_stat_activity through the same Django connection. Target <= 1.5x.
2. Whole command: ``manage.py db_connections --action=status`` vs ``manage.py check``,
   each a fresh process. Target <= 1.05x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import (
    bench_server,
    idle_connections,
    interleaved_samples,
    load_average,
    print_table,
    ratio_spread,
    spread_text,
)

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 1000
# Baseline: the aggregate a DBA writes for the figures status prints (counts by database,
# user, application, client and state; oldest transaction; longest idle in transaction).
RAW_AGGREGATE = (
    "SELECT datname, usename, application_name, client_addr, state, count(*),"
    " max(now() - xact_start),"
    " max(now() - state_change) FILTER (WHERE state LIKE 'idle in transaction%%')"
    " FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3, 4, 5"
)
# The smallest aggregate there is, for perspective.
STATE_COUNT = "SELECT state, count(*) FROM pg_stat_activity GROUP BY state"


def _in_process(url: str) -> list[tuple[str, ...]]:
    code = f"""
import json, os, sys
sys.path.insert(0, {str(ROOT)!r})
from bench.common import setup_django, interleaved_medians
setup_django({url!r})
from django.db import connection
from dbconnmgr import take_snapshot
from dbconnmgr.payloads import status_payload

def raw():
    with connection.cursor() as cur:
        cur.execute({RAW_AGGREGATE!r})
        cur.fetchall()

def states():
    with connection.cursor() as cur:
        cur.execute({STATE_COUNT!r})
        cur.fetchall()

def snap():
    take_snapshot("default")

def snap_and_aggregate():
    status_payload(take_snapshot("default"), 10)

print(json.dumps(interleaved_medians(
    {{"raw": raw, "states": states, "snapshot": snap, "status_payload": snap_and_aggregate}},
    repeat=101)))
print(take_snapshot("default").total_connections)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    medians = json.loads(out[0])
    total = out[1]
    raw = medians["raw"]
    return [
        ("raw status-equivalent aggregate (baseline)", f"{raw * 1000:.2f}", "1.00x",
         f"rows seen: {total}"),
        ("raw count by state only", f"{medians['states'] * 1000:.2f}",
         f"{medians['states'] / raw:.2f}x", "(smallest aggregate, for perspective)"),
        ("take_snapshot()", f"{medians['snapshot'] * 1000:.2f}",
         f"{medians['snapshot'] / raw:.2f}x", "target <= 1.5x"),
        ("take_snapshot() + status_payload()", f"{medians['status_payload'] * 1000:.2f}",
         f"{medians['status_payload'] / raw:.2f}x", "(all breakdowns, informative)"),
    ]  # fmt: skip


def _whole_command(url: str) -> list[tuple[str, ...]]:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="example_project.settings")
    # As installed (pip writes bytecode): the warm-up runs write the project's .pyc files,
    # which a shell's PYTHONDONTWRITEBYTECODE would otherwise make every run recompile.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]

    def run(*args: str) -> object:
        return subprocess.run(
            [*manage, *args], env=env, cwd=ROOT, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    rounds = int(os.environ.get("BENCH_STATUS_ROUNDS", "15"))
    samples = interleaved_samples(
        {
            "check": lambda: run("check"),
            "status": lambda: run("db_connections", "--action=status"),
            "status_json": lambda: run("db_connections", "--action=status", "--format=json"),
        },
        repeat=rounds,
        warmup=2,
    )
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["check"]

    def row(label: str, name: str, note: str) -> tuple[str, ...]:
        return (label, f"{medians[name] * 1000:.0f}", f"{medians[name] / base:.3f}x",
                spread_text(*ratio_spread(samples, name, "check")), note)  # fmt: skip

    return [
        ("manage.py check (baseline)", f"{base * 1000:.0f}", "1.00x", "-", ""),
        row("db_connections --action=status", "status", "target <= 1.05x"),
        row("db_connections --action=status --format=json", "status_json", ""),
    ]


def main() -> None:
    """Start a server, hold 1,000 idle connections, measure both comparisons."""
    with bench_server(max_connections=CONNECTIONS + 100) as server:
        dsn = server.dsn()
        with idle_connections(dsn, CONNECTIONS - 1, "bench-idle"):
            header = ("what", "median ms", "ratio", "note")
            print_table(
                f"In-process, {CONNECTIONS} client connections", _in_process(server.url), header
            )
            rows = _whole_command(server.url)
            print_table(
                f"Whole process, {CONNECTIONS} client connections "
                f"({os.environ.get('BENCH_STATUS_ROUNDS', '15')} interleaved rounds; "
                f"{load_average()})",
                rows,
                ("what", "median ms", "ratio of medians", "per-round ratio: median (min-max)",
                 "note"),
            )  # fmt: skip


if __name__ == "__main__":
    main()
