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
import os
import time
from collections.abc import Callable

import psycopg

from bench.common import bench_server, interleaved_medians, print_table, setup_django

PAIRS = 500  # enter/exit pairs per timed sample
SAMPLED_PAIRS = 50  # the same with server sampling (two round trips each)
STATEMENTS = 200  # statements per timed sample
TARGET_US = 20.0


def interleaved_cpu_medians(
    fns: dict[str, Callable[[], object]], repeat: int = 15, warmup: int = 2
) -> dict[str, float]:
    """``interleaved_medians`` in CPU seconds of this thread (``time.thread_time``)."""
    return interleaved_medians(fns, repeat, warmup, clock=time.thread_time)


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

        from dbconnmgr import connection_monitor, internals
        from dbconnmgr.block_monitor.tracking import _observe

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

        pair_fns = {
            "bare": run(contextlib.nullcontext),
            "off_nolog": run(lambda: quiet),
            "off_filtered": with_level(logging.WARNING, run(lambda: logged)),
            "off_logged": with_level(logging.INFO, run(lambda: logged)),
        }
        # Wall time suffers from the other jobs on a shared machine; the thread's CPU time
        # is what the monitor itself costs. Both are shown, the target is checked on CPU.
        medians = interleaved_medians(pair_fns, repeat=15, warmup=2)
        cpu = interleaved_cpu_medians(pair_fns, repeat=15, warmup=2)
        sampled = connection_monitor("bench", sample_server=True, log=False)
        sampled_fns = {
            "bare": run(contextlib.nullcontext, SAMPLED_PAIRS),
            "on": run(lambda: sampled, SAMPLED_PAIRS),
        }
        sampled_median = interleaved_medians(sampled_fns, repeat=15, warmup=2)
        sampled_cpu = interleaved_cpu_medians(sampled_fns, repeat=15, warmup=2)
        bare = medians["bare"]
        rows: list[tuple[str, ...]] = [
            ("bare `with nullcontext()`", _us(bare, PAIRS), _us(cpu["bare"], PAIRS), "-"),
        ]
        for key, name in (
            ("off_nolog", "monitor, sampling off, log=False"),
            ("off_filtered", "monitor, sampling off, INFO filtered out"),
            ("off_logged", "monitor, sampling off, INFO line to a handler"),
        ):
            extra = (cpu[key] - cpu["bare"]) / PAIRS * 1e6
            verdict = "ok" if extra <= TARGET_US else "OVER"
            rows.append(
                (name, _us(medians[key], PAIRS), _us(cpu[key], PAIRS), f"{extra:.2f} ({verdict})")
            )
        on_extra = (sampled_cpu["on"] - sampled_cpu["bare"]) / SAMPLED_PAIRS * 1e6
        rows.append(
            ("monitor, sampling on (2 round trips)", _us(sampled_median["on"], SAMPLED_PAIRS),
             _us(sampled_cpu["on"], SAMPLED_PAIRS), f"{on_extra:.2f} (+ server time)")
        )  # fmt: skip
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print_table(
            f"time per enter/exit pair, medians of samples of {PAIRS} pairs ({SAMPLED_PAIRS} with "
            f"sampling); target: extra CPU <= {TARGET_US:.0f} us with sampling off; "
            f"load average {load} on {os.cpu_count()} CPUs",
            rows,
            ("block", "wall us/pair", "CPU us/pair", "extra CPU us/pair"),
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
            internals.add_execute_wrapper(conn, _observe)
            return contextlib.nullcontext()

        stmt_fns = {
            "plain": statements(unhooked),
            "hooked_outside": statements(hooked),
            "inside": statements(lambda: quiet),
        }
        per = interleaved_medians(stmt_fns, repeat=15, warmup=2)
        per_cpu = interleaved_cpu_medians(stmt_fns, repeat=15, warmup=2)

        def stmt_row(name: str, key: str) -> tuple[str, ...]:
            extra = (per_cpu[key] - per_cpu["plain"]) / STATEMENTS * 1e6
            return (
                name,
                _us(per[key], STATEMENTS),
                _us(per_cpu[key], STATEMENTS),
                "-" if key == "plain" else f"{extra:.2f}",
            )

        print_table(
            f"one `SELECT 1` round trip, medians of samples of {STATEMENTS}",
            [
                stmt_row("connection never seen by a monitor", "plain"),
                stmt_row("hooked connection, outside any block", "hooked_outside"),
                stmt_row("inside a block (label comment + counting)", "inside"),
            ],
            ("statement", "wall us", "CPU us", "extra CPU us"),
        )

        # The wrapper alone, around a driver call that does nothing: no network noise.
        context = {"connection": conn, "cursor": None}

        def noop(sql: str, params: object, many: bool, ctx: object) -> None:
            return None

        def wrapper_calls() -> None:
            for _ in range(10_000):
                _observe(noop, "SELECT 1", None, False, context)

        def wrapper_inside() -> None:
            with quiet:
                wrapper_calls()

        alone = interleaved_cpu_medians(
            {"outside": wrapper_calls, "inside": wrapper_inside}, repeat=9, warmup=1
        )
        print_table(
            "the execute wrapper alone around a no-op driver call (CPU, 10000 calls)",
            [
                ("outside any block", _us(alone["outside"], 10_000)),
                ("inside a block: label + count + time", _us(alone["inside"], 10_000)),
            ],
            ("case", "CPU us/statement"),
        )

        # 4. Label strategies: the comment costs CPU per statement (above); application_name
        # costs a SET on every connection the block uses, and a SET back at exit.
        def app_name_blocks() -> None:
            for _ in range(SAMPLED_PAIRS):
                with conn.cursor() as cursor:
                    cursor.execute("SELECT set_config('application_name', %s, false)", ["b"])
                    cursor.execute("SELECT set_config('application_name', %s, false)", ["x"])

        app_name_wall = interleaved_medians({"app_name": app_name_blocks}, repeat=15, warmup=2)
        comment_cpu = (per_cpu["inside"] - per_cpu["plain"]) / STATEMENTS * 1e6
        truncation = _truncation(server.dsn())
        print_table(
            "labelling a block so that pg_stat_activity shows it: cost and visibility",
            [
                (
                    "leading comment (chosen)",
                    "0",
                    f"{comment_cpu:.2f} CPU per statement (with counting)",
                    truncation["leading"],
                ),
                (
                    "SET application_name + restore",
                    "2 per connection per block",
                    f"{_us(app_name_wall['app_name'], SAMPLED_PAIRS)} wall per connection",
                    "yes, while idle too (63 bytes max)",
                ),
                (
                    "trailing comment (sqlcommenter's place)",
                    "0",
                    "as leading",
                    truncation["trailing"],
                ),
            ],
            ("strategy", "extra round trips", "us", "label visible after a 14 kB statement"),
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
