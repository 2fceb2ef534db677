"""Attribution's cost, beside the unlabelled path measured in the same run.

Prints:
1. CPU per statement: the execute wrapper labelling a statement (inside a request's scope)
   vs the same call without the wrapper, on a driver stand-in (no I/O: only the labelling
   is measured), and the same on a real ``SELECT 1`` round trip. Target <= 2 us.
2. CPU per request: ``AttributionMiddleware`` around a trivial view, its ``process_view``
   included, vs the bare view. Target <= 10 us. With leak detection on, for perspective.
3. Status at 1,000 connections carrying 25 code labels: ``take_snapshot()`` +
   ``status_payload()`` with the by-code breakdown (labels read from every session's
   statement) vs the same without it (labels not read, no ``by_code``). Target <= 1.1x.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    bench_server,
    interleaved_medians,
    print_table,
    setup_django,
)

ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = 2000
ROUND_TRIPS = 200
REQUESTS = 2000
CONNECTIONS = 1000
CODES = 25


def _cpu(fns: dict[str, Callable[[], object]], repeat: int = 21) -> dict[str, float]:
    return interleaved_medians(fns, repeat, 3, clock=time.thread_time)


def _statements(url: str) -> list[tuple[str, ...]]:
    setup_django(url)
    from django.db import connection

    from dbconnmgr.attribution import attributed
    from dbconnmgr.block_monitor.tracking import _observe

    connection.ensure_connection()
    context: dict[str, Any] = {"connection": connection}

    def driver(sql: str, params: Any, many: bool, ctx: Any) -> str:
        return sql

    sql = "SELECT id, name FROM shop_product WHERE id = %s"

    def bare() -> None:
        for _ in range(STATEMENTS):
            driver(sql, (1,), False, context)

    def outside() -> None:  # the wrapper on the connection, no scope open
        for _ in range(STATEMENTS):
            _observe(driver, sql, (1,), False, context)

    def labelled() -> None:
        with attributed("view", "shop.views.export"):
            for _ in range(STATEMENTS):
                _observe(driver, sql, (1,), False, context)

    wrapped = _cpu({"bare": bare, "outside": outside, "labelled": labelled})

    def query_plain() -> None:
        with connection.cursor() as cursor:
            for _ in range(ROUND_TRIPS):
                cursor.execute("SELECT 1")

    def query_labelled() -> None:
        with attributed("view", "shop.views.export"), connection.cursor() as cursor:
            for _ in range(ROUND_TRIPS):
                cursor.execute("SELECT 1")

    from dbconnmgr.attribution import install

    install()  # the wrapper on every connection from here on
    real = _cpu({"plain": query_plain, "labelled": query_labelled})
    # query_plain runs through the wrapper too (installed, no scope): that is the
    # unlabelled path of a process with attribution on; the first table has the bare one.
    per = 1e6 / STATEMENTS
    per_rt = 1e6 / ROUND_TRIPS
    label_cost = (wrapped["labelled"] - wrapped["bare"]) * per
    return [
        ("driver stand-in, no wrapper (baseline)", f"{wrapped['bare'] * per:.3f}", "", ""),
        ("wrapper on, outside any scope", f"{wrapped['outside'] * per:.3f}",
         f"+{(wrapped['outside'] - wrapped['bare']) * per:.3f}", ""),
        ("wrapper on, labelled (a request's scope)", f"{wrapped['labelled'] * per:.3f}",
         f"+{label_cost:.3f}", "target <= 2 us"),
        ("SELECT 1 round trip, unlabelled", f"{real['plain'] * per_rt:.2f}", "", ""),
        ("SELECT 1 round trip, labelled", f"{real['labelled'] * per_rt:.2f}",
         f"+{(real['labelled'] - real['plain']) * per_rt:.2f}", "(client CPU, informative)"),
    ]  # fmt: skip


def _requests() -> list[tuple[str, ...]]:
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory

    from dbconnmgr.attribution import AttributionMiddleware

    request = RequestFactory().get("/shop/export/")

    def view(req: Any) -> HttpResponse:
        return HttpResponse()

    response = HttpResponse()

    def get_response(req: Any) -> HttpResponse:
        middleware.process_view(req, view, (), {})
        return response

    def plain_get_response(req: Any) -> HttpResponse:
        return response

    middleware = AttributionMiddleware(get_response)

    def bare() -> None:
        for _ in range(REQUESTS):
            plain_get_response(request)

    def labelled() -> None:
        for _ in range(REQUESTS):
            middleware(request)

    base = dict(settings.DBCONNMGR)
    settings.DBCONNMGR = {**base, "ATTRIBUTION": True}
    off = _cpu({"bare": bare, "labelled": labelled})
    settings.DBCONNMGR = {**base, "ATTRIBUTION": True, "LEAK_THRESHOLD": 30}
    leak = _cpu({"bare": bare, "labelled": labelled})
    settings.DBCONNMGR = base
    per = 1e6 / REQUESTS
    return [
        ("bare view call (baseline)", f"{off['bare'] * per:.2f}", "", ""),
        ("AttributionMiddleware + process_view", f"{off['labelled'] * per:.2f}",
         f"+{(off['labelled'] - off['bare']) * per:.2f}", "target <= 10 us"),
        ("the same, LEAK_THRESHOLD on (no statement)", f"{leak['labelled'] * per:.2f}",
         f"+{(leak['labelled'] - leak['bare']) * per:.2f}", "(informative)"),
    ]  # fmt: skip


_STATUS = """
import json, sys
from itertools import repeat
sys.path.insert(0, {root!r})
from bench.common import setup_django, interleaved_samples, median_ratio
setup_django({url!r})
from dbconnmgr import take_snapshot
from dbconnmgr.backends.postgresql import rows
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.payloads import status_payload

with_codes = rows.codes_of
by_code = Snapshot.by_code

def without():
    rows.codes_of = lambda queries: [None] * len(queries)
    Snapshot.by_code = lambda self, limit=None: []
    try:
        doc = status_payload(take_snapshot("default"), 10)
    finally:
        rows.codes_of, Snapshot.by_code = with_codes, by_code
    return doc

def with_():
    return status_payload(take_snapshot("default"), 10)

samples = interleaved_samples({{"without": without, "with": with_}}, repeat=61, warmup=3)
doc = with_()
print(json.dumps({{
    "ratio": median_ratio(samples, "with", "without"),
    "with": sorted(samples["with"])[30], "without": sorted(samples["without"])[30],
    "codes": len(doc["by_code"]), "top": doc["by_code"][0],
}}))
"""


def _status(url: str) -> list[tuple[str, ...]]:
    out = subprocess.run(
        [sys.executable, "-c", _STATUS.format(root=str(ROOT), url=url)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    found = json.loads(out)
    return [
        ("status without by-code (baseline)", f"{found['without'] * 1000:.2f}", "1.00x", ""),
        ("status with by-code", f"{found['with'] * 1000:.2f}", f"{found['ratio']:.3f}x",
         f"target <= 1.1x; {found['codes']} groups, top {found['top']['name']} "
         f"({found['top']['connections']})"),
    ]  # fmt: skip


def _labelled_connections(dsn: str, count: int) -> list[psycopg.Connection[Any]]:
    from dbconnmgr.core.attribution import code_comment

    conns = []
    for n in range(count):
        conn = psycopg.connect(dsn, autocommit=True, application_name="bench-web")
        conn.execute(code_comment(f"view:shop.views.page_{n % CODES}", None) + "SELECT 1")
        conns.append(conn)
    return conns


def main() -> None:
    """Start a server, measure the labelling, then status at 1,000 labelled sessions."""
    with bench_server(max_connections=CONNECTIONS + 100) as server:
        header = ("what", "CPU us", "delta us", "note")
        print_table("Per statement (CPU)", _statements(server.url), header)
        print_table("Per request (CPU)", _requests(), header)
        conns = _labelled_connections(server.dsn(), CONNECTIONS - 1)
        try:
            print_table(
                f"Status, {CONNECTIONS} client connections, {CODES} code labels",
                _status(server.url),
                ("what", "median ms", "ratio", "note"),
            )
        finally:
            for conn in conns:
                conn.close()


if __name__ == "__main__":
    main()
