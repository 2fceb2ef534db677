"""Amazon Redshift (emulated): snapshot at 500 sessions against a raw aggregate.

The Redshift catalog emulation (devtools.redshiftemu, PostgreSQL 18, max_connections 600)
holds 500 idle sessions of an ordinary user (not timed), through ``ENGINE =
"dbconnmgr.db.redshift"`` (``DATABASE_URL=redshift://...``). Then, interleaved over 101
rounds through the same Django connection:

- ``raw``: one aggregate over the same views the snapshot reads, what a hand-written check
  would send: sessions by state from STV_SESSIONS joined to STV_RECENTS (running) and
  SVV_TRANSACTIONS (open transactions), ``GROUP BY`` state;
- ``snapshot``: ``take_snapshot()``: the reader's clock, users, databases and every session
  with its running query, open transaction, lock wait and last query end (SYS_QUERY_HISTORY)
  in one round trip, plus the WLM queues (a superuser's second round trip; none here: the
  bench's queues table is empty, the views are still read).

Medians and the median of the per-round ratios (the figure held against the target:
<= 1.5x). The emulation's views are PostgreSQL views over pg_stat_activity: the figures say
what dbconnmgr adds over a plain aggregate of the same views, not how fast a cluster is.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import psycopg

from bench.common import interleaved_samples, median_ratio, print_table, setup_django
from devtools.redshiftemu import RedshiftEmulation

COUNT = 500
USER = "bench_app"
ROUNDS = 101
SETTLE = 1.0

RAW = """
SELECT CASE WHEN r.pid IS NOT NULL THEN 'active'
            WHEN t.pid IS NOT NULL THEN 'idle in transaction'
            ELSE 'idle' END, COUNT(*)
FROM stv_sessions s
LEFT JOIN (SELECT DISTINCT pid FROM stv_recents WHERE status = 'Running') r
       ON r.pid = s.process
LEFT JOIN (SELECT DISTINCT pid FROM svv_transactions
           WHERE lockable_object_type = 'transactionid' AND granted) t
       ON t.pid = s.process
GROUP BY 1
"""


#: The same four views the snapshot's sessions statement reads, joined the same way, but
#: aggregated: sessions by state with the oldest idle time (the last query's end).
RAW_SAME_VIEWS = """
SELECT CASE WHEN r.pid IS NOT NULL THEN 'active'
            WHEN t.pid IS NOT NULL THEN 'idle in transaction'
            ELSE 'idle' END, COUNT(*), MIN(h.last_end)
FROM stv_sessions s
LEFT JOIN (SELECT DISTINCT pid FROM stv_recents WHERE status = 'Running') r
       ON r.pid = s.process
LEFT JOIN (SELECT DISTINCT pid FROM svv_transactions
           WHERE lockable_object_type = 'transactionid' AND granted) t
       ON t.pid = s.process
LEFT JOIN (SELECT session_id, MAX(end_time) AS last_end FROM sys_query_history
           WHERE end_time IS NOT NULL GROUP BY session_id) h
       ON h.session_id = s.process
GROUP BY 1
"""


def main() -> None:
    emulation = RedshiftEmulation(max_connections=COUNT + 100).start()
    conns: list[Any] = []
    try:
        dsn = emulation.create_user(USER, "pw")
        for _ in range(COUNT):
            conn = psycopg.connect(dsn, autocommit=True)
            conn.execute("SELECT 1")
            conns.append(conn)
        time.sleep(SETTLE)
        import os

        os.environ["DB_REDSHIFT_NODE_TYPE"] = "ra3.4xlarge"
        setup_django(emulation.url)

        from django.db import connection

        from dbconnmgr import take_snapshot

        snap = take_snapshot()
        assert snap.total_connections >= COUNT, snap.total_connections

        def raw_aggregate() -> None:
            with connection.cursor() as cursor:
                cursor.execute(RAW)
                cursor.fetchall()

        def raw_same_views() -> None:
            with connection.cursor() as cursor:
                cursor.execute(RAW_SAME_VIEWS)
                cursor.fetchall()

        samples = interleaved_samples(
            {"raw": raw_aggregate, "same": raw_same_views, "snapshot": take_snapshot},
            repeat=ROUNDS,
        )
        medians = {name: statistics.median(values) for name, values in samples.items()}
        ratio = median_ratio(samples, "snapshot", "raw")
        same = median_ratio(samples, "snapshot", "same")
        print_table(
            f"snapshot at {snap.total_connections} emulated Redshift sessions ({ROUNDS} "
            "interleaved rounds)",
            [
                ("raw aggregate over STV_SESSIONS/STV_RECENTS/SVV_TRANSACTIONS",
                 f"{medians['raw'] * 1000:.2f}", "1.00x", "1.00x"),
                ("raw aggregate over the snapshot's four views (SYS_QUERY_HISTORY too)",
                 f"{medians['same'] * 1000:.2f}", f"{medians['same'] / medians['raw']:.2f}x",
                 f"{median_ratio(samples, 'same', 'raw'):.2f}x"),
                ("take_snapshot()", f"{medians['snapshot'] * 1000:.2f}",
                 f"{medians['snapshot'] / medians['raw']:.2f}x", f"{ratio:.2f}x"),
            ],
            ("what", "median ms", "ratio of medians", "median of ratios"),
        )  # fmt: skip
        print(
            f"\ntarget: snapshot {ratio:.2f}x the three-view aggregate <= 1.5x: "
            f"{'yes' if ratio <= 1.5 else 'NO'}; {same:.2f}x the four-view aggregate: "
            f"{'yes' if same <= 1.5 else 'NO'}"
        )
    finally:
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        emulation.stop()
