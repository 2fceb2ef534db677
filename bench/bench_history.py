"""History reads over a long recorded history, each beside ``count(*)`` of the same rows in
the same run: peak (``peak_hours()``) over 7 to 365 days and the admin page's charts over
365 days, read through the hourly rollup; the old way (every sample sent to Python) once,
for comparison.

A year of samples every 5 s (6.3 million rows, ``BENCH_HISTORY_DAYS`` and
``BENCH_HISTORY_SECONDS`` change that) is planted by the server in one statement, then the
rollup is rebuilt from it (timed: what ``--action=rollup`` costs once). Targets: peak over
180 days <= 0.5 s with flat memory; charts (week series + heatmap) over 365 days <= 300 ms.
Memory is Python's own allocation peak during the call (tracemalloc), which is what grows
when rows are sent to Python.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

from bench.bench_admin import PLANT
from bench.common import bench_server, interleaved_samples, load_average, print_table

DAYS = int(os.environ.get("BENCH_HISTORY_DAYS", "365"))
SECONDS = int(os.environ.get("BENCH_HISTORY_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_HISTORY_ROUNDS", "9"))
#: Also time the old read (every sample to Python) over 180 days: about 25 s at 5 s samples.
RAW = os.environ.get("BENCH_HISTORY_RAW", "1") != "0"


def _peak_mib(fn: Callable[[], object]) -> float:
    """Python's allocation peak during ``fn()``, MiB."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    """Start a server, plant the history, roll it up, measure."""
    with bench_server(max_connections=50) as server:
        from bench.common import setup_django

        setup_django(server.url)
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from dbconnmgr.core.charts import heatmap_svg, line_chart_svg
        from dbconnmgr.core.samples import hourly_peaks
        from dbconnmgr.history import (
            hourly_heatmap,
            peak_hours,
            rebuild_rollup,
            utilization_series,
        )
        from dbconnmgr.models import ConnectionSample

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(PLANT % (DAYS, SECONDS))
            cur.execute("ANALYZE dbconnmgr_connectionsample")
            cur.execute("SELECT count(*) FROM dbconnmgr_connectionsample")
            (planted,) = cur.fetchone()
        planting = time.perf_counter() - started
        now = timezone.now()
        started = time.perf_counter()
        hours = rebuild_rollup("default", now=now)["default"]
        rebuilding = time.perf_counter() - started
        with connection.cursor() as cur:
            cur.execute("ANALYZE dbconnmgr_connectionhour")
        print(
            f"planted {planted:,} samples ({DAYS} days every {SECONDS} s) in {planting:.0f} s; "
            f"rebuilt the rollup ({hours:,} hour rows) in {rebuilding:.1f} s; {load_average()}"
        )

        def count_rows(days: int) -> Callable[[], object]:
            def count() -> object:
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM dbconnmgr_connectionsample WHERE alias = 'default'"
                        " AND taken_at >= %s AND taken_at <= %s",
                        (now - timedelta(days=days), now),
                    )
                    return cur.fetchall()

            return count

        def peak(days: int) -> Callable[[], object]:
            return lambda: peak_hours("default", days, now=now)

        def charts(days: int) -> Callable[[], object]:
            def draw() -> object:
                week = utilization_series(
                    "default", seconds=7 * 86400, bucket_seconds=3600, now=now
                )
                return line_chart_svg(week), heatmap_svg(
                    hourly_heatmap("default", days=days, now=now)
                )

            return draw

        windows = [d for d in (7, 30, 180, 365) if d <= DAYS]
        rows: list[tuple[str, ...]] = []
        for days in windows:
            fns: dict[str, Callable[[], object]] = {"count": count_rows(days), "peak": peak(days)}
            if days == max(windows):
                fns["charts"] = charts(days)
            samples = interleaved_samples(fns, repeat=ROUNDS, warmup=1)
            base = statistics.median(samples["count"])
            target = {180: "<= 500 ms", 365: ""}.get(days, "")
            for name, label, note in (
                ("count", f"count(*) of {days} days of samples (baseline)", ""),
                ("peak", f"peak_hours() over {days} days, from the rollup", target),
                ("charts", f"admin charts over {days} days (week series + heatmap)", "<= 300 ms"),
            ):
                if name not in samples:
                    continue
                med = statistics.median(samples[name])
                ratios = sorted(a / b for a, b in zip(samples[name], samples["count"], strict=True))
                mib = _peak_mib(fns[name])
                rows.append((
                    label, f"{med * 1000:.1f}",
                    f"{min(samples[name]) * 1000:.1f}-{max(samples[name]) * 1000:.1f}",
                    f"{med / base:.3f}x" if name != "count" else "1.00x",
                    f"{ratios[0]:.3f}-{ratios[-1]:.3f}x" if name != "count" else "-",
                    f"{mib:.2f}", note,
                ))  # fmt: skip
        print_table(
            f"History reads, {ROUNDS} interleaved rounds each (medians; Python allocation peak)",
            rows,
            ("what", "median ms", "min-max ms", "vs count(*)", "per-round min-max", "peak MiB",
             "target"),
        )  # fmt: skip

        if RAW and DAYS >= 180:

            def raw_peak() -> object:
                rows = (
                    ConnectionSample.objects.filter(
                        alias="default",
                        taken_at__gte=now - timedelta(days=180),
                        taken_at__lte=now,
                    )
                    .order_by()
                    .values_list("taken_at", "total_connections")
                    .iterator(chunk_size=5000)
                )
                return hourly_peaks(rows, timezone.get_current_timezone())

            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            old = raw_peak()
            seconds = time.perf_counter() - started
            rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
            count_seconds = statistics.median(
                _timed(count_rows(180)) for _ in range(3)
            )  # same moment
            new = peak(180)()
            print(
                f"\nthe old read (every sample of 180 days to Python), once: {seconds:.1f} s, "
                f"{seconds / count_seconds:.0f}x count(*) ({count_seconds * 1000:.0f} ms), "
                f"process high-water mark +{rss_growth:.1f} MiB; same report as the rollup's: "
                f"{'yes' if old == new else 'NO'}"
            )


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
