"""MariaDB: snapshot at 1,000 connections and close-idle of 1,000 idle connections.

A throwaway MariaDB (devtools.mariadbserver, max_connections 1,100) holds 1,000 idle
sessions of an ordinary account (not timed). Then, each beside its baseline measured in the
same run:

- ``snapshot``: ``take_snapshot()`` (limits, status counters and every thread with its
  InnoDB transaction, in one round trip) against one raw aggregate query over the
  processlist (``SELECT COMMAND, COUNT(*) ... GROUP BY COMMAND``), both through the same
  Django connection, interleaved over 101 rounds: medians, and the median of the per-round
  ratios (the figure held against the target: <= 1.5x). Beside them, for reference, the
  rows the snapshot is built from (``SHOW FULL PROCESSLIST`` fetched, nothing built).
- ``close-idle``: ``close_idle_connections(older_than=0, user=...)`` until every one of the
  1,000 is gone (selection, per-id re-check and KILL in one compound statement, the wait
  until the threads have left the processlist), against the floor: one compound statement
  that KILLs every id with no re-check. Target: <= 1 s.
"""

from __future__ import annotations

import contextlib
import io
import logging
import statistics
import time
from typing import Any

import MySQLdb

from bench.common import interleaved_samples, median_ratio, print_table, setup_django
from devtools.mariadbserver import MariaDBServer

COUNT = 1000
USER = "bench_app"
REPEAT = 3
ROUNDS = 101
SETTLE = 2.0


def _open_idle(server: MariaDBServer) -> list[Any]:
    conns = []
    for _ in range(COUNT):
        conn = MySQLdb.connect(**server.connect_kwargs(USER, "pw"))
        conn.autocommit(True)
        conns.append(conn)
    time.sleep(SETTLE)  # the server settles its 1,000 new threads (not timed)
    return conns


def _remaining(server: MariaDBServer) -> int:
    sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'bench_app'"
    out = server.sql(sql)
    return int(out.strip())


def _close(conns: list[Any]) -> None:
    for conn in conns:
        with contextlib.suppress(MySQLdb.Error):
            conn.close()


def main() -> None:
    server = MariaDBServer(max_connections=COUNT + 100, thread_cache_size=0).start()
    try:
        server.sql(
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY 'pw'; "
            f"GRANT SELECT ON dbconnmgr.* TO '{USER}'@'%';"
        )
        setup_django(server.url)
        logging.getLogger("dbconnmgr").handlers[:] = [logging.StreamHandler(io.StringIO())]
        logging.getLogger("dbconnmgr").propagate = False

        from django.db import connection

        from dbconnmgr import take_snapshot
        from dbconnmgr.actions import close_idle_connections

        # -- snapshot -------------------------------------------------------------------------
        conns = _open_idle(server)
        snap = take_snapshot()
        assert snap.total_connections >= COUNT, snap.total_connections

        def raw_aggregate() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT COMMAND, COUNT(*) FROM information_schema.PROCESSLIST GROUP BY COMMAND"
                )
                cursor.fetchall()

        def processlist_rows() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SHOW FULL PROCESSLIST")
                cursor.fetchall()

        samples = interleaved_samples(
            {
                "raw": raw_aggregate,
                "rows": processlist_rows,
                "snapshot": take_snapshot,
            },
            repeat=ROUNDS,
        )
        medians = {name: statistics.median(values) for name, values in samples.items()}
        ratio = median_ratio(samples, "snapshot", "raw")
        print_table(
            f"snapshot at {snap.total_connections} MariaDB connections ({ROUNDS} interleaved "
            "rounds)",
            [
                ("raw aggregate over the processlist", f"{medians['raw'] * 1000:.2f}", "1.00x",
                 "1.00x"),
                ("SHOW FULL PROCESSLIST fetched (reference)", f"{medians['rows'] * 1000:.2f}",
                 f"{medians['rows'] / medians['raw']:.2f}x",
                 f"{median_ratio(samples, 'rows', 'raw'):.2f}x"),
                ("take_snapshot()", f"{medians['snapshot'] * 1000:.2f}",
                 f"{medians['snapshot'] / medians['raw']:.2f}x", f"{ratio:.2f}x"),
            ],
            ("what", "median ms", "ratio of medians", "median of ratios"),
        )  # fmt: skip
        _close(conns)

        # -- close-idle -----------------------------------------------------------------------
        ours: list[float] = []
        floor: list[float] = []
        for _ in range(REPEAT):
            conns = _open_idle(server)
            start = time.perf_counter()
            report = close_idle_connections(older_than=0, user=USER)
            ours.append(time.perf_counter() - start)
            assert len(report.terminated) == COUNT, report.counts()
            assert _remaining(server) == 0
            _close(conns)

            conns = _open_idle(server)
            ids = [c.thread_id() for c in conns]
            body = " ".join(f"KILL CONNECTION {int(i)};" for i in ids)
            start = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(f"BEGIN NOT ATOMIC {body} END")
            while _remaining(server):
                time.sleep(0.001)
            floor.append(time.perf_counter() - start)
            _close(conns)
        med_ours, med_floor = statistics.median(ours), statistics.median(floor)
        print_table(
            f"close-idle of {COUNT} idle MariaDB connections until all are gone "
            f"(median of {REPEAT})",
            [
                ("KILL every id, no re-check (floor)", f"{med_floor:.3f}", "1.00x"),
                ("close_idle_connections()", f"{med_ours:.3f}", f"{med_ours / med_floor:.2f}x"),
            ],
            ("what", "s", "vs floor"),
        )
        print(
            f"\ntargets: snapshot {ratio:.2f}x <= 1.5x: {'yes' if ratio <= 1.5 else 'NO'}; "
            f"close-idle {med_ours:.3f} s <= 1 s: {'yes' if med_ours <= 1 else 'NO'}"
        )
    finally:
        server.stop()
