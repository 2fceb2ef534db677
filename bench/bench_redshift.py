"""Amazon Redshift (emulated): snapshot at 500 sessions against raw aggregates.

The Redshift catalog emulation (devtools.redshiftemu, PostgreSQL 18, max_connections 600)
holds 500 idle sessions of an ordinary user (not timed); the reader is the emulation's
superuser, so the snapshot reads the WLM queues too, through ``ENGINE =
"dbconnmgr.db.redshift"`` (``DATABASE_URL=redshift://...``). Then, interleaved over 101
rounds through the same Django connection:

- ``every view`` (the baseline the 1.5x target is held against): one round trip of raw
  aggregates over every view the snapshot reads, each read as the snapshot reads it:
  sessions by state with the oldest idle time from STV_SESSIONS joined to STV_RECENTS,
  SVV_TRANSACTIONS and SYS_QUERY_HISTORY (what decides a session's state and age), the
  users' and databases' CONNECTION LIMITs (SVV_USER_INFO, PG_DATABASE_INFO: what the
  utilization is held against) and the WLM queues' totals (STV_WLM_SERVICE_CLASS_CONFIG,
  STV_WLM_SERVICE_CLASS_STATE, STV_WLM_QUERY_STATE). The clock statement (no view) is
  left out: the baseline is the smaller for it;
- ``four views``: the sessions aggregate alone (the views the sessions statement reads);
- ``three views``: the same without SYS_QUERY_HISTORY, what a hand-written check of
  states would read; not the same views (it cannot tell how long a session is idle), kept
  for comparison with earlier runs;
- ``statements``: the snapshot's statements in one round trip, rows fetched, no Python
  model: what the server and the wire cost;
- ``take_snapshot()``.

Each figure: the median time and the median of the per-round ratios to ``every view``
with their interquartile range. The emulation's views are PostgreSQL views over
pg_stat_activity: the figures say what dbconnmgr adds over plain aggregates of the same
views, not how fast a cluster is.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Any

import psycopg

from bench.common import interleaved_samples, load_average, median_ratio, print_table, setup_django
from dbconnmgr.backends.redshift.sql import SNAPSHOT_SQL, WLM_SQL
from devtools.redshiftemu import RedshiftEmulation

COUNT = 500
USER = "bench_app"
ROUNDS = 101
SETTLE = 1.0
TARGET = 1.5

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

#: The four views the snapshot's sessions statement reads, joined the same way, but
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

#: Every view the snapshot reads (a superuser's: the WLM queues too), aggregated, in one
#: round trip as the snapshot sends its statements.
RAW_EVERY_VIEW = ";\n".join(
    (
        RAW_SAME_VIEWS.strip(),
        "SELECT COUNT(*), SUM(CASE WHEN superuser THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN TRIM(connection_limit) <> 'UNLIMITED' THEN 1 ELSE 0 END) "
        "FROM svv_user_info",
        "SELECT COUNT(*), SUM(CASE WHEN TRIM(datconnlimit) <> 'UNLIMITED' THEN 1 ELSE 0 END) "
        "FROM pg_database_info",
        "SELECT COUNT(*), SUM(c.num_query_tasks), SUM(s.num_queued_queries), "
        "SUM(s.num_executing_queries) FROM stv_wlm_service_class_config c "
        "LEFT JOIN stv_wlm_service_class_state s ON s.service_class = c.service_class "
        "WHERE c.service_class > 4",
        "SELECT COUNT(*), MAX(queue_time), SUM(slot_count) FROM stv_wlm_query_state",
    )
)


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
        os.environ["DB_REDSHIFT_NODE_TYPE"] = "ra3.4xlarge"
        setup_django(emulation.url)

        from django.db import connection

        from dbconnmgr import take_snapshot

        snap = take_snapshot()
        assert snap.total_connections >= COUNT, snap.total_connections
        assert snap.extras["wlm"]["visible"], "the bench reads as a superuser: WLM included"

        def run(sql: str) -> None:
            # one round trip, every result set fetched (psycopg's cursor: nextset())
            with connection.cursor() as wrapper:
                cursor = wrapper.cursor
                cursor.execute(sql)
                cursor.fetchall()
                while cursor.nextset():
                    cursor.fetchall()

        statements = SNAPSHOT_SQL + ";\n" + WLM_SQL
        samples = interleaved_samples(
            {
                "every": lambda: run(RAW_EVERY_VIEW),
                "four": lambda: run(RAW_SAME_VIEWS),
                "three": lambda: run(RAW),
                "statements": lambda: run(statements),
                "snapshot": take_snapshot,
            },
            repeat=ROUNDS,
        )
        labels = {
            "every": "raw aggregates over every view the snapshot reads (baseline)",
            "four": "raw aggregate over the sessions statement's four views",
            "three": "raw aggregate over STV_SESSIONS/STV_RECENTS/SVV_TRANSACTIONS",
            "statements": "the snapshot's statements, rows fetched, no Python model",
            "snapshot": "take_snapshot()",
        }
        rows: list[tuple[str, ...]] = []
        for name, label in labels.items():
            ratios = [a / b for a, b in zip(samples[name], samples["every"], strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            rows.append(
                (
                    label,
                    f"{statistics.median(samples[name]) * 1000:.2f}",
                    f"{statistics.median(ratios):.2f}x",
                    f"{q1:.2f}-{q3:.2f}x",
                )
            )
        print_table(
            f"snapshot at {snap.total_connections} emulated Redshift sessions ({ROUNDS} "
            f"interleaved rounds; {load_average()})",
            rows,
            ("what", "median ms", "median ratio", "ratio IQR"),
        )
        ratio = median_ratio(samples, "snapshot", "every")
        four = median_ratio(samples, "snapshot", "four")
        three = median_ratio(samples, "snapshot", "three")
        print(
            f"\ntarget: snapshot {ratio:.2f}x the aggregates over every view it reads <= "
            f"{TARGET}x: {'yes' if ratio <= TARGET else 'NO'} (the sessions views' "
            f"aggregate alone: {four:.2f}x; the three-view one: {three:.2f}x)"
        )
    finally:
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        emulation.stop()
