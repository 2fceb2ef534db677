"""The database load split: what it costs to record, and its charts over 30 days of samples,
each beside a baseline measured in the same run.

1. Recording: one monitor sample stored the way ``--action=monitor --record`` stores it
   (``Recorder``: a bounded transaction, one INSERT), with its load split (a busy sample's:
   five wait classes, ten applications and ten code labels plus ``other``) vs the same
   sample without it. Target: <= 1.5x.
2. Charts: 518,400 samples (30 days every 5 s), each with a load split, planted by the
   server, then the hourly rollup rebuilt from them (timed: what ``--action=rollup`` costs
   once; ``--action=monitor --record`` keeps it up to date an hour at a time). The admin
   page's load charts (by wait class and by application, drawn as SVG) for the day
   (quarter hours, aggregated by the database from the samples) and for the week (hours:
   the rollup's whole hours, the partial first and last hours from the samples), uncached,
   vs one ``count(*)`` over the 30 days. Target: <= 500 ms.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from bench.common import bench_server, interleaved_samples, median_ratio, print_table

if TYPE_CHECKING:
    from dbconnmgr.core.load import LoadSplit

SAMPLES_DAYS = 30
SAMPLE_SECONDS = 5

# 30 days of samples every 5 s: a daily wave of active sessions split over five wait
# classes, six applications and eight code labels (a realistic busy split).
PLANT = """
INSERT INTO dbconnmgr_connectionsample
    (taken_at, alias, vendor, total_connections, active_connections,
     idle_in_transaction_connections, waiting_connections, max_connections,
     usable_connections, utilization_percent, by_state, by_application, load,
     refused_connections)
SELECT t, 'default', 'postgresql', n, a, 0, a / 6, 100, 97, round(n * 100.0 / 97, 1),
       '{}'::jsonb, '{}'::jsonb,
       jsonb_build_object(
           'wait_class', jsonb_strip_nulls(jsonb_build_object(
               'CPU', a - a / 3 - a / 6 - a / 10, 'Lock', nullif(a / 6, 0),
               'IO', nullif(a / 3, 0), 'Client', nullif(a / 10, 0))),
           'application', jsonb_strip_nulls(jsonb_build_object(
               'web', a - a / 3 - a / 5, 'celery', nullif(a / 3, 0),
               'reports', nullif(a / 5, 0))),
           'code', jsonb_strip_nulls(jsonb_build_object(
               'shop.views.checkout', a - a / 2 - a / 4, 'shop.views.export', nullif(a / 2, 0),
               'tasks.sync_stock', nullif(a / 4, 0)))),
       CASE WHEN a > 20 THEN a - 20 END
FROM (
    SELECT t, n, greatest(1, n / 4 + (random() * 3)::int) AS a
    FROM (
        SELECT t, (20 + 40 * (1 + sin(extract(epoch FROM t) / 86400 * 2 * pi())) / 2
                   + 10 * (extract(isodow FROM t) < 6)::int + random() * 8)::int AS n
        FROM generate_series(now() - interval '%s days', now(), interval '%s seconds') AS t
    ) waves
) s
"""


def busy_split() -> LoadSplit:
    """A load split as a busy server's sample has it: every part of the JSON filled."""
    from dbconnmgr.core import load

    return load.LoadSplit(
        active_sessions=60,
        by_wait_class={"CPU": 30, "Lock": 12, "IO": 10, "Client": 5, "LWLock": 3},
        by_application={f"service-{i}": 5 for i in range(10)} | {"other": 10},
        by_code={f"shop.views.view_number_{i}": 5 for i in range(10)} | {"other": 10},
    )


def main() -> None:
    """Start a server, time recording with and without the split, plant 30 days, chart."""
    with bench_server(max_connections=100) as server:
        from bench.common import setup_django

        setup_django(server.url)
        from django.core.management import call_command
        from django.db import connection

        from dbconnmgr.core.charts import load_chart_svg
        from dbconnmgr.history import fill_hour_loads, load_charts, load_series, rebuild_rollup
        from dbconnmgr.models import ConnectionHour, ConnectionSample
        from dbconnmgr.monitor_loop import Monitor, Recorder

        call_command("migrate", verbosity=0)
        sample = Monitor("default", 1.0).sample()
        with_split = dataclasses.replace(sample, load=busy_split())
        without = dataclasses.replace(sample, load=None)
        recorder = Recorder(5.0)
        rounds = interleaved_samples(
            {"without": lambda: recorder(without), "with": lambda: recorder(with_split)},
            repeat=301,
            warmup=20,
        )
        ratio = median_ratio(rounds, "with", "without")
        stored = ConnectionSample.objects.exclude(load=None).latest()
        assert stored.load == busy_split().as_dict()
        med = {k: sorted(v)[len(v) // 2] for k, v in rounds.items()}
        print_table(
            "Recording one monitor sample (Recorder: bounded transaction + INSERT)",
            [
                ("sample without the load split (baseline)", f"{med['without'] * 1000:.2f}",
                 "1.00x", ""),
                ("sample with a busy load split (25 parts)", f"{med['with'] * 1000:.2f}",
                 f"{ratio:.2f}x", "target <= 1.5x"),
            ],
            ("what", "median ms", "ratio (median per round)", "note"),
        )  # fmt: skip

        ConnectionSample.objects.all().delete()
        with connection.cursor() as cur:
            cur.execute(PLANT % (SAMPLES_DAYS, SAMPLE_SECONDS))
            cur.execute("ANALYZE dbconnmgr_connectionsample")
            cur.execute("SELECT count(*) FROM dbconnmgr_connectionsample")
            (planted,) = cur.fetchone()
        started = time.perf_counter()
        hours = rebuild_rollup("default")["default"]
        rebuilding = time.perf_counter() - started
        with connection.cursor() as cur:
            cur.execute("ANALYZE dbconnmgr_connectionhour")

        def count_rows() -> None:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM dbconnmgr_connectionsample WHERE alias = 'default'"
                    " AND taken_at >= now() - interval '30 days'"
                )
                cur.fetchall()

        def charts(seconds: int, bucket: int) -> None:
            for dimension in ("wait_class", "application"):
                series = load_series(
                    "default", dimension=dimension, seconds=seconds, bucket_seconds=bucket
                )
                assert series.points
                load_chart_svg(series)

        def peak_month() -> None:  # what --action=peak --days=30 draws: daily buckets
            load_charts(
                "default", ("wait_class", "application", "code"), seconds=30 * 86400,
                bucket_seconds=86400,
            )  # fmt: skip

        def code_week() -> None:
            load_chart_svg(
                load_series("default", dimension="code", seconds=7 * 86400, bucket_seconds=3600)
            )

        history = interleaved_samples(
            {
                "count": count_rows,
                "day": lambda: charts(86400, 900),
                "week": lambda: charts(7 * 86400, 3600),
                "code": code_week,
                "month": peak_month,
            },
            repeat=7,
            warmup=1,
        )
        meds = {k: sorted(v)[len(v) // 2] for k, v in history.items()}
        rows: list[tuple[str, ...]] = [
            ("count(*) over the 30 days (baseline)", f"{meds['count'] * 1000:.0f}",
             f"{min(history['count']) * 1000:.0f}-{max(history['count']) * 1000:.0f}",
             "1.00x", "")
        ]  # fmt: skip
        for key, what in (
            ("day", "day: load by wait class + by application, 15-min buckets, SVG"),
            ("week", "week: load by wait class + by application, hourly, SVG"),
            ("code", "week: load by code label alone, hourly, SVG"),
            ("month", "30 days: by wait class, application, code; daily (peak --days=30)"),
        ):
            spread = f"{min(history[key]) * 1000:.0f}-{max(history[key]) * 1000:.0f}"
            rows.append(
                (what, f"{meds[key] * 1000:.0f}", spread,
                 f"{median_ratio(history, key, 'count'):.2f}x", "target <= 500 ms")
            )  # fmt: skip
        print_table(
            f"Load charts over {planted} samples ({SAMPLES_DAYS} days every {SAMPLE_SECONDS} s), "
            f"uncached; rollup of {hours} hours rebuilt once in {rebuilding:.1f} s",
            rows,
            ("what", "median ms", "range ms", "ratio", "note"),
        )

        # A rollup written before it carried the split (migration 0006 leaves its hours
        # null): the week is read from the samples until the monitor fills the hours in, a
        # day per recorded sample.
        def admin_week() -> None:  # the admin page's one pass over both dimensions
            load_charts("default", ("wait_class", "application"), seconds=7 * 86400,
                        bucket_seconds=3600)  # fmt: skip

        ConnectionHour.objects.update(load=None)
        unfilled = interleaved_samples({"week": admin_week}, 3, 0)["week"]
        fills = []
        while True:
            started = time.perf_counter()
            if not fill_hour_loads("default"):
                break
            fills.append(time.perf_counter() - started)
        filled = interleaved_samples({"week": admin_week}, 3, 0)["week"]
        print_table(
            "Hours rolled up before the rollup carried the split",
            [
                ("week load charts (admin: one pass), every hour unfilled: from the samples",
                 f"{sorted(unfilled)[1] * 1000:.0f}", "no SVG"),
                (f"filling them: {len(fills)} calls of a day each (one per recorded sample)",
                 f"{sorted(fills)[len(fills) // 2] * 1000:.0f}",
                 f"per call, {min(fills) * 1000:.0f}-{max(fills) * 1000:.0f}"),
                ("the same once filled", f"{sorted(filled)[1] * 1000:.0f}", "no SVG"),
            ],
            ("what", "median ms", "note"),
        )  # fmt: skip


if __name__ == "__main__":
    main()
