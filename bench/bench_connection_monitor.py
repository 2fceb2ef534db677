"""connection_monitor overhead, beside a bare block measured in the same run.

Prints:
1. time per enter/exit pair: a bare ``with`` vs ``connection_monitor`` with server
   sampling off (log line filtered out, and formatted into a discarding handler) and on;
2. statements per block, counted by Django (CaptureQueriesContext) and by the server
   (xact_commit of pg_stat_database: every autocommit statement is one transaction);
3. cost per statement inside a block (label + counting) and on a hooked connection
   outside any block;
4. the label choice: a leading comment vs ``SET application_name`` per block, and which
   survives PostgreSQL's 1 kB ``track_activity_query_size`` on a bulk INSERT.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg

from bench.common import bench_server, interleaved_medians, print_table, setup_django

PAIRS = 500  # enter/exit pairs per timed sample
SAMPLED_PAIRS = 50  # the same with server sampling (two round trips each)
STATEMENTS = 200  # statements per timed sample
TARGET_US = 20.0


def _us(seconds: float, per: int) -> str:
    return f"{seconds * 1e6 / per:.2f}"


def main() -> None:
    with bench_server(max_connections=50) as server:
        # Django works in a database of its own, so that the server's per-database commit
        # counter (one per autocommit statement) counts its statements and nothing else.
        with psycopg.connect(server.dsn(), autocommit=True) as setup:
            setup.execute("CREATE DATABASE bench_monitor")
        setup_django(server.url_for("postgres", server.password, "bench_monitor"))
        from django.db import connections
        from django.test.utils import CaptureQueriesContext

        from dbconnmgr import connection_monitor
        from dbconnmgr.monitoring_block import _observe

        log = logging.getLogger("dbconnmgr.monitor")
        log.propagate = False
        log.handlers = [logging.NullHandler()]
        conn = connections["default"]
        conn.ensure_connection()

        def run(block_factory, pairs: int = PAIRS):
            def loop() -> None:
                for _ in range(pairs):
                    with block_factory():
                        pass

            return loop

        quiet = connection_monitor("bench", sample_server=False, log=False)
        logged = connection_monitor("bench", sample_server=False, log=True)

        def with_level(level: int, fn):
            def wrapped() -> None:
                log.setLevel(level)
                fn()

            return wrapped

        medians = interleaved_medians(
            {
                "bare": run(contextlib.nullcontext),
                "off_nolog": run(lambda: quiet),
                "off_filtered": with_level(logging.WARNING, run(lambda: logged)),
                "off_logged": with_level(logging.INFO, run(lambda: logged)),
            },
            repeat=15,
            warmup=2,
        )
        sampled = connection_monitor("bench", sample_server=True, log=False)
        sampled_median = interleaved_medians(
            {
                "bare": run(contextlib.nullcontext, SAMPLED_PAIRS),
                "on": run(lambda: sampled, SAMPLED_PAIRS),
            },
            repeat=15,
            warmup=2,
        )
        bare = medians["bare"]
        rows: list[tuple[str, ...]] = [
            ("bare `with nullcontext()`", _us(bare, PAIRS), "-", "1.00x"),
        ]
        for key, name in (
            ("off_nolog", "monitor, sampling off, log=False"),
            ("off_filtered", "monitor, sampling off, INFO filtered out"),
            ("off_logged", "monitor, sampling off, INFO line to a handler"),
        ):
            extra = (medians[key] - bare) / PAIRS * 1e6
            verdict = "ok" if extra <= TARGET_US else "OVER"
            rows.append(
                (name, _us(medians[key], PAIRS), f"{extra:.2f} ({verdict})",
                 f"{medians[key] / bare:.1f}x")
            )  # fmt: skip
        on_extra = (sampled_median["on"] - sampled_median["bare"]) / SAMPLED_PAIRS
        rows.append(
            ("monitor, sampling on (2 round trips)",
             _us(sampled_median["on"], SAMPLED_PAIRS), f"{on_extra * 1e6:.2f}",
             f"{sampled_median['on'] / sampled_median['bare']:.0f}x")
        )  # fmt: skip
        print_table(
            f"time per enter/exit pair, median of samples of {PAIRS} pairs (target: extra "
            f"<= {TARGET_US:.0f} us with sampling off)",
            rows,
            ("block", "us/pair", "extra us/pair", "ratio"),
        )

        # 2. Statements per block, counted by Django and by the server.
        admin = psycopg.connect(server.dsn(), autocommit=True)
        dbname = conn.settings_dict["NAME"]

        def commits() -> int:
            # A backend publishes its counters lazily: ask Django's to do it when it next
            # goes idle (this statement is one more commit, subtracted below).
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_stat_force_next_flush() FROM pg_class LIMIT 1")
            time.sleep(0.2)
            admin.execute("SELECT pg_stat_clear_snapshot()")
            row = admin.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (dbname,)
            ).fetchone()
            assert row is not None
            return int(row[0])

        blocks = 20
        rows = []  # reused: same type
        for name, factory in (
            ("bare block", contextlib.nullcontext),
            ("monitor, sampling off", lambda: connection_monitor("b", sample_server=False)),
            ("monitor, sampling on", lambda: connection_monitor("b", sample_server=True)),
        ):
            before = commits()
            with CaptureQueriesContext(conn) as captured:
                for _ in range(blocks):
                    with factory(), conn.cursor() as cursor:
                        cursor.execute("SELECT 1")
            server_count = commits() - before - 1  # minus the flush request
            rows.append(
                (name, f"{len(captured.captured_queries) / blocks:.2f}",
                 f"{server_count / blocks:.2f}")
            )  # fmt: skip
        print_table(
            f"statements per block with one SELECT inside ({blocks} blocks)",
            rows,
            ("block", "Django counted", "server counted (xact_commit)"),
        )

        # 3. Per statement.
        def statements(block_factory):
            def loop() -> None:
                with block_factory(), conn.cursor() as cursor:
                    for _ in range(STATEMENTS):
                        cursor.execute("SELECT 1")

            return loop

        def unhooked():
            with contextlib.suppress(ValueError):
                conn.execute_wrappers.remove(_observe)
            return contextlib.nullcontext()

        def hooked():
            if _observe not in conn.execute_wrappers:
                conn.execute_wrappers.insert(0, _observe)
            return contextlib.nullcontext()

        per = interleaved_medians(
            {
                "plain": statements(unhooked),
                "hooked_outside": statements(hooked),
                "inside": statements(lambda: quiet),
            },
            repeat=15,
            warmup=2,
        )
        plain = per["plain"]
        print_table(
            f"time per `SELECT 1` round trip, median of samples of {STATEMENTS}",
            [
                ("connection never seen by a monitor", _us(plain, STATEMENTS), "-"),
                (
                    "hooked connection, outside any block",
                    _us(per["hooked_outside"], STATEMENTS),
                    f"{(per['hooked_outside'] - plain) / STATEMENTS * 1e6:.2f}",
                ),
                (
                    "inside a block (label comment + counting)",
                    _us(per["inside"], STATEMENTS),
                    f"{(per['inside'] - plain) / STATEMENTS * 1e6:.2f}",
                ),
            ],
            ("statement", "us/statement", "extra us"),
        )

        # 4. Label strategies.
        def app_name_block() -> None:
            for _ in range(PAIRS // 10):
                with conn.cursor() as cursor:
                    cursor.execute("SELECT set_config('application_name', %s, false)", ["b"])
                    cursor.execute("SELECT set_config('application_name', %s, false)", ["x"])

        label_costs = interleaved_medians(
            {"comment": run(lambda: quiet), "app_name": app_name_block}, repeat=15, warmup=2
        )
        truncation = _truncation(server.dsn())
        print_table(
            "labelling a block: cost and visibility",
            [
                (
                    "leading comment (chosen)",
                    "0",
                    f"{(label_costs['comment'] - bare) / PAIRS * 1e6:.2f} + per statement above",
                    truncation["leading"],
                ),
                (
                    "SET application_name + restore",
                    "2 per connection per block",
                    f"{label_costs['app_name'] / (PAIRS // 10) * 1e6:.2f}",
                    "yes (63 bytes max)",
                ),
                (
                    "trailing comment (sqlcommenter default)",
                    "0",
                    "as leading",
                    truncation["trailing"],
                ),
            ],
            ("strategy", "extra round trips", "us per block", "visible on a 16 kB INSERT"),
        )
        admin.close()
        connections.close_all()


def _truncation(dsn: str) -> dict[str, str]:
    """Is the label still in pg_stat_activity.query after a 16 kB statement?"""
    values = ",".join(f"({i}, 'row {i:06d}')" for i in range(700))
    statement = f"SELECT count(*) FROM (VALUES {values}) AS v(n, s)"  # noqa: S608 - constant
    comment = "/*dbconnmgr_monitor='bulk_operation'*/"
    out: dict[str, str] = {}
    with psycopg.connect(dsn, autocommit=True) as worker, psycopg.connect(dsn) as reader:
        size = reader.execute("SHOW track_activity_query_size").fetchone()
        for where, text in (
            ("leading", f"{comment} {statement}"),
            ("trailing", f"{statement} {comment}"),
        ):
            worker.execute(text.encode())
            row = reader.execute(
                "SELECT length(query), position('dbconnmgr_monitor' in query) > 0 "
                "FROM pg_stat_activity WHERE pid = %s",
                (worker.info.backend_pid,),
            ).fetchone()
            reader.rollback()
            assert row is not None
            kept, found = row
            out[where] = (
                f"{'yes' if found else 'NO'} ({len(text)} chars sent, {kept} kept, "
                f"track_activity_query_size={size[0] if size else '?'})"
            )
    return out
