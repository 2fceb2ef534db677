"""The admin page: its server time at 1,000 connections, and its history charts over 30 days
of 5-second samples, each beside a baseline measured in the same run.

1. Live page at 1,000 client connections: GET of the page (test client, in-process: the
   server's time, no network) vs the status JSON document (``take_snapshot()`` +
   ``status_payload()``) on the same connection. Target: the page <= 200 ms.
2. History: 518,400 samples (30 days every 5 s). The charts (week series + 30-day heatmap,
   aggregated in SQL, drawn as SVG) vs one ``count(*)`` over the same rows. Target <= 500 ms.
"""

from __future__ import annotations

import os

from bench.common import bench_server, idle_connections, interleaved_medians, print_table

CONNECTIONS = 1000
SAMPLES_DAYS = 30
SAMPLE_SECONDS = 5

# 30 days of samples every 5 s, planted by the server in one statement: a daily wave with a
# weekly pattern, as a recorded history looks.
PLANT = """
INSERT INTO dbconnmgr_connectionsample
    (taken_at, alias, vendor, total_connections, active_connections,
     idle_in_transaction_connections, waiting_connections, max_connections,
     usable_connections, utilization_percent, by_state, by_application)
SELECT t, 'default', 'postgresql', n, n / 4, 0, 0, 100, 97, round(n * 100.0 / 97, 1),
       '{}'::jsonb, '{}'::jsonb
FROM (
    SELECT t, (20 + 40 * (1 + sin(extract(epoch FROM t) / 86400 * 2 * pi())) / 2
               + 10 * (extract(isodow FROM t) < 6)::int + random() * 8)::int AS n
    FROM generate_series(now() - interval '%s days', now(), interval '%s seconds') AS t
) s
"""


def main() -> None:
    """Start a server, hold 1,000 idle connections, plant 30 days of samples, measure."""
    with bench_server(max_connections=CONNECTIONS + 100) as server:
        os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
        from bench.common import setup_django

        setup_django(server.url)
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from dbconnmgr import take_snapshot
        from dbconnmgr.core.charts import heatmap_svg, line_chart_svg
        from dbconnmgr.history import hourly_heatmap, rebuild_rollup, utilization_series
        from dbconnmgr.payloads import status_payload

        call_command("migrate", verbosity=0)
        with connection.cursor() as cur:
            cur.execute(PLANT % (SAMPLES_DAYS, SAMPLE_SECONDS))
            cur.execute("ANALYZE dbconnmgr_connectionsample")
            cur.execute("SELECT count(*) FROM dbconnmgr_connectionsample")
            (planted,) = cur.fetchone()
        # what --record keeps by itself: the finished hours rolled up
        rebuild_rollup("default")
        user = get_user_model().objects.create_superuser("bench", password="pw")
        client = Client()
        client.force_login(user)
        page = "/admin/dbconnmgr/connections/default/"

        def count_rows() -> None:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM dbconnmgr_connectionsample WHERE alias = 'default'"
                    " AND taken_at >= now() - interval '30 days'"
                )
                cur.fetchall()

        def charts() -> None:
            line_chart_svg(utilization_series("default", seconds=7 * 86400, bucket_seconds=3600))
            heatmap_svg(hourly_heatmap("default", days=SAMPLES_DAYS))

        history = interleaved_medians({"count": count_rows, "charts": charts}, repeat=9, warmup=1)
        print_table(
            f"History charts over {planted} samples ({SAMPLES_DAYS} days every {SAMPLE_SECONDS} s)",
            [
                ("count(*) over the same rows (baseline)", f"{history['count'] * 1000:.0f}",
                 "1.00x", ""),
                ("week series + 30-day heatmap, from the hourly rollup, SVG",
                 f"{history['charts'] * 1000:.0f}", f"{history['charts'] / history['count']:.2f}x",
                 "target <= 500 ms"),
            ],
            ("what", "median ms", "ratio", "note"),
        )  # fmt: skip

        with idle_connections(server.dsn(), CONNECTIONS - 1, "bench-idle"):

            def status_json() -> None:
                status_payload(take_snapshot("default"), 10)

            def live_fragment() -> None:
                assert client.get(page + "live/").status_code == 200

            def whole_page() -> None:
                assert client.get(page, {"period": "hour"}).status_code == 200

            def cold_page() -> None:
                cache.clear()
                whole_page()

            live = interleaved_medians(
                {
                    "status": status_json,
                    "live": live_fragment,
                    "page": whole_page,
                    "cold": cold_page,
                },
                repeat=9,
                warmup=2,
            )
            total = take_snapshot("default").total_connections
            base = live["status"]
            print_table(
                f"Admin page at {total} client connections (server time, in-process)",
                [
                    ("status JSON: take_snapshot() + status_payload() (baseline)",
                     f"{base * 1000:.1f}", "1.00x", ""),
                    ("live part (the refresh fragment)", f"{live['live'] * 1000:.1f}",
                     f"{live['live'] / base:.2f}x", "target <= 200 ms"),
                    ("whole page (live part + hour chart + cached heatmap)",
                     f"{live['page'] * 1000:.1f}", f"{live['page'] / base:.2f}x",
                     "target <= 200 ms"),
                    ("whole page, heatmap not cached (first view in 5 min)",
                     f"{live['cold'] * 1000:.1f}", f"{live['cold'] / base:.2f}x", ""),
                ],
                ("what", "median ms", "ratio", "note"),
            )  # fmt: skip


if __name__ == "__main__":
    main()
