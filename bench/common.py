"""Shared helpers for benchmarks: timing with medians, a results table, many connections.

Machines here are noisy: every benchmark measures its baseline in the same run and
reports medians and ratios, never absolute targets alone.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from devtools.pgserver import PgServer


def setup_django(database_url: str, settings_module: str = "example_project.settings") -> None:
    """Configure Django in this process against ``database_url``."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()


def median_seconds(fn: Callable[[], object], repeat: int = 21, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved_samples(
    fns: dict[str, Callable[[], object]],
    repeat: int = 21,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Times of several callables measured in alternation (round i runs each once), so
    drift hits all alike. ``clock`` is wall time by default; ``time.thread_time`` measures
    this thread's CPU."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return samples


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeat: int = 21,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Medians of :func:`interleaved_samples`."""
    samples = interleaved_samples(fns, repeat, warmup, clock)
    return {name: statistics.median(values) for name, values in samples.items()}


def median_ratio(samples: dict[str, list[float]], name: str, baseline: str) -> float:
    """The median over rounds of ``name``'s time / ``baseline``'s time in the same round:
    steadier than a ratio of medians when the machine's speed drifts during the run."""
    pairs = zip(samples[name], samples[baseline], strict=True)
    return statistics.median(ours / base for ours, base in pairs)


def ratio_spread(
    samples: dict[str, list[float]], name: str, baseline: str
) -> tuple[float, float, float]:
    """Min, median and max over rounds of ``name``'s time / ``baseline``'s time in the same
    round: the spread a figure is quoted with."""
    pairs = zip(samples[name], samples[baseline], strict=True)
    ratios = sorted(ours / base for ours, base in pairs)
    return ratios[0], statistics.median(ratios), ratios[-1]


def spread_text(low: float, median: float, high: float, unit: str = "x") -> str:
    """``1.02x (0.97-1.10x)``: a median with its min-max."""
    return f"{median:.3f}{unit} ({low:.3f}-{high:.3f}{unit})"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count, for a table's title."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f}, {five:.1f}, {fifteen:.1f} on {os.cpu_count()} CPUs"


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """Print an aligned plain-text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


@contextmanager
def idle_connections(
    dsn: str, count: int, application_name: str
) -> Iterator[list[psycopg.Connection]]:
    """Hold ``count`` idle client connections open for the duration of the block."""
    conns: list[psycopg.Connection] = []
    try:
        for _ in range(count):
            conns.append(psycopg.connect(dsn, application_name=application_name, autocommit=True))
        yield conns
    finally:
        for conn in conns:
            conn.close()


@contextmanager
def bench_server(max_connections: int = 1100, **settings: Any) -> Iterator[PgServer]:
    """A throwaway server sized for benchmarks."""
    server = PgServer(max_connections=max_connections, **settings).start()
    try:
        yield server
    finally:
        server.stop()
