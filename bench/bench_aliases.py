"""Several aliases at the cost of one: ``--database a,b,...`` at 1,000 client connections,
whole process, beside the same command on one alias in the same run.

20 aliases (``BENCH_ALIASES``) of one server, two ways (bench/aliases_settings.py):
``s00``... connect exactly as ``default`` (one reader serves them all), ``r00``... each as
a role of its own (20 readers, at most ``DEFAULT_MAX_READERS`` open at once). Target: 20
aliases <= 1.3x one. Each run also checks that every document counts the same sessions:
no alias counted another alias's reader.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

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
COUNT = int(os.environ.get("BENCH_ALIASES", "20"))
ROUNDS = int(os.environ.get("BENCH_ALIASES_ROUNDS", "15"))


def main() -> None:
    """Start a server, create the roles, hold 1,000 idle connections, measure."""
    with bench_server(max_connections=CONNECTIONS + 100) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            for i in range(COUNT):
                admin.execute(
                    f"CREATE ROLE bench_r{i:02d} LOGIN PASSWORD 'bench' IN ROLE pg_monitor"
                )
        env = dict(
            os.environ,
            DATABASE_URL=server.url,
            DJANGO_SETTINGS_MODULE="bench.aliases_settings",
            BENCH_ALIASES=str(COUNT),
        )
        # As installed (pip writes bytecode): the warm-up runs write the project's .pyc files,
        # which a shell's PYTHONDONTWRITEBYTECODE would otherwise make every run recompile.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        same = ",".join(f"s{i:02d}" for i in range(COUNT))
        roles = ",".join(f"r{i:02d}" for i in range(COUNT))

        def run(action: str, database: str) -> list[dict[str, object]]:
            out = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "db_connections", f"--action={action}",
                 f"--database={database}", "--format=json"],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if out.returncode not in (0, 1, 2):  # health: ok, warning, critical
                raise RuntimeError(f"{action} {database}: exit {out.returncode}: {out.stderr}")
            if "," not in database:  # one alias: one indented document
                return [json.loads(out.stdout)]
            return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

        cases: dict[str, Callable[[], object]] = {
            "status, 1 alias (baseline)": lambda: run("status", "default"),
            f"status, {COUNT} aliases, one reader": lambda: run("status", same),
            f"status, {COUNT} aliases, {COUNT} readers": lambda: run("status", roles),
            "health, 1 alias": lambda: run("health", "default"),
            f"health, {COUNT} aliases, {COUNT} readers": lambda: run("health", roles),
        }
        with idle_connections(server.dsn(), CONNECTIONS - 1, "bench-idle"):
            counted = {
                name: sorted({int(str(doc.get("total_connections"))) for doc in run("status", db)})
                for name, db in (("one reader", same), ("one reader per alias", roles))
            }
            samples = interleaved_samples(cases, repeat=ROUNDS, warmup=1)
    base = "status, 1 alias (baseline)"
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rows: list[tuple[str, ...]] = []
    for name in cases:
        baseline = "health, 1 alias" if name.startswith("health") else base
        rows.append((
            name, f"{medians[name] * 1000:.0f}",
            f"{medians[name] / medians[baseline]:.3f}x",
            spread_text(*ratio_spread(samples, name, baseline)) if name != baseline else "-",
            "<= 1.3x" if name != baseline else "",
        ))  # fmt: skip
    print_table(
        f"Several aliases of one server at {CONNECTIONS} connections, whole process, "
        f"{ROUNDS} interleaved rounds ({load_average()})",
        rows,
        ("command", "median ms", "vs 1 alias", "per-round ratio: median (min-max)", "target"),
    )  # fmt: skip
    print(
        "\nsessions counted by the documents of one run (one value per run = no alias "
        f"counted another's reader): {counted}"
    )


if __name__ == "__main__":
    main()
