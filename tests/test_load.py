"""Database load by dimension: a sample's active sessions split by wait class, application and
code label, against what pg_stat_activity shows for a held mix of real sessions; recorded,
charted, judged against DATABASE_CPUS, exported to /metrics; hostile names stay text."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client import registry as prometheus_registry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from dbconnmgr.core.charts import LoadPoint, LoadSeries, load_chart_svg
from dbconnmgr.core.load import LoadSplit, top_with_other
from dbconnmgr.core.thresholds import resolve_thresholds
from dbconnmgr.history import load_series
from dbconnmgr.metrics import LoadGauges
from dbconnmgr.models import ConnectionSample
from dbconnmgr.monitor_loop import Monitor, Recorder, sample_report
from dbconnmgr.payloads import sample_payload
from tests.conftest import Sessions

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = "</title><script>alert(1)</script>\"'&amp; */ x"


@contextlib.contextmanager
def lock_waiters(dsn: str, count: int, application_name: str) -> Iterator[list[int]]:
    """``count`` sessions waiting for a table lock another session holds, for the block."""
    holder = psycopg.connect(dsn, application_name="lock-holder")
    holder.execute("CREATE TABLE IF NOT EXISTS load_probe (id int)")
    holder.commit()
    holder.execute("LOCK TABLE load_probe IN ACCESS EXCLUSIVE MODE")  # idle in transaction
    waiters = [
        psycopg.connect(dsn, application_name=application_name, autocommit=True)
        for _ in range(count)
    ]

    def wait(conn: psycopg.Connection) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT count(*) FROM load_probe")

    threads = [threading.Thread(target=wait, args=(c,), daemon=True) for c in waiters]
    for t in threads:
        t.start()
    pids = [c.info.backend_pid for c in waiters]
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as admin:
        while True:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
                " AND wait_event_type = 'Lock'",
                (pids,),
            ).fetchone()
            n = row[0] if row else 0
            if n == count:
                break
            assert time.monotonic() < deadline, "the waiters never waited"
            time.sleep(0.02)
    try:
        yield pids
    finally:
        holder.rollback()  # the waiters get the lock and finish
        for t in threads:
            t.join(timeout=10)
        for c in [*waiters, holder]:
            c.close()


def activity_now(dsn: str, exclude: int) -> tuple[Counter[str], Counter[str]]:
    """What pg_stat_activity shows of the active client sessions now: per wait class
    (``CPU`` for none) and per application, leaving out ``exclude`` and the reader."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT coalesce(wait_event_type, 'CPU'), application_name FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND state = 'active'"
            " AND pid <> %s AND pid <> pg_backend_pid()",
            (exclude,),
        ).fetchall()
    return Counter(r[0] for r in rows), Counter(r[1] or "(none)" for r in rows)


def test_the_split_of_a_sample_is_what_pg_stat_activity_shows(
    health_alias: str, held: Sessions
) -> None:
    dsn = held.dsn
    held.open_many(2, "idler")  # idle: no load
    held.open("sleeper", "active")  # pg_sleep: active, waiting on Timeout
    held.open("sleeper", "active")
    with lock_waiters(dsn, 3, "waiter"):
        monitor = Monitor(health_alias, 1.0)
        try:
            sample = monitor.sample()
            assert sample.snapshot is not None
            classes, applications = activity_now(dsn, exclude=sample.snapshot.own_pid)
        finally:
            monitor.close()
    load = sample.load
    assert load is not None
    # what the server showed at that moment, and what the mix is made of
    assert load.by_wait_class == dict(classes) == {"Lock": 3, "Timeout": 2}
    assert load.by_application == dict(applications) == {"waiter": 3, "sleeper": 2}
    assert load.by_code == {"unknown": 5}  # no statement carried a code label
    assert load.active_sessions == sample.active_connections == 5
    assert sample.aas == 5 and sample.aas_by_wait_class == {"Lock": 3.0, "Timeout": 2.0}
    document = sample_payload(sample)
    assert document["load"] == {
        "wait_class": {"Lock": 3, "Timeout": 2},
        "application": {"waiter": 3, "sleeper": 2},
        "code": {"unknown": 5},
    }

    # recorded as it was, and charted from the record
    Recorder(5.0)(sample)
    stored = ConnectionSample.objects.get(alias=health_alias)
    assert stored.load == document["load"]
    series = load_series(health_alias, seconds=600, bucket_seconds=60, now=sample.taken_at)
    assert [p.parts for p in series.points] == [{"Lock": 3.0, "Timeout": 2.0}]
    assert series.names == ("Lock", "Timeout")
    by_app = load_series(
        health_alias, dimension="application", seconds=600, bucket_seconds=60,
        now=sample.taken_at,
    )  # fmt: skip
    assert by_app.points[0].parts == {"waiter": 3.0, "sleeper": 2.0}

    # DATABASE_CPUS: AAS 5 above 4 CPUs is a warning naming the split; off when unset
    report = sample_report(sample, resolve_thresholds({"DATABASE_CPUS": 4}))
    assert report is not None
    (finding,) = [f for f in report.findings if f.code == "database_load"]
    assert finding.severity.label == "warning"
    assert "5 average active sessions over the last 60 s (Lock 3, Timeout 2)" in finding.message
    assert "above the 4 CPUs" in finding.message
    calm = sample_report(sample, resolve_thresholds({"DATABASE_CPUS": 8}))
    assert calm is not None
    assert [f.severity.label for f in calm.findings if f.code == "database_load"] == ["ok"]
    unset = sample_report(sample, resolve_thresholds({}))
    assert unset is not None
    assert not [f for f in unset.findings if f.code == "database_load"]


def test_recorded_samples_chart_the_load_with_connections_and_refusals(
    health_alias: str, held: Sessions
) -> None:
    held.open("sleeper", "active")
    monitor = Monitor(health_alias, 1.0)
    try:
        first = monitor.sample()
    finally:
        monitor.close()
    # the buckets are calendar minutes: start a few seconds into one, so that the three
    # samples never straddle a minute's end
    base = first.taken_at.replace(second=5, microsecond=0)
    # three samples in one minute: the bucket's AAS is their mean, its parts likewise
    for i, (cpu, lock, refused) in enumerate(((1, 0, None), (2, 3, 4), (3, 0, 2))):
        split = LoadSplit(cpu + lock, {"CPU": cpu, "Lock": lock} if lock else {"CPU": cpu},
                          {"web": cpu + lock}, {"unknown": cpu + lock})  # fmt: skip
        Recorder(5.0)(
            dataclasses.replace(
                first,
                taken_at=base + timedelta(seconds=i),
                load=split,
                refused_connections=refused,
            )
        )
    for stored in ConnectionSample.objects.filter(alias=health_alias):
        assert stored.load is not None
        stored.active_connections = sum(stored.load["wait_class"].values())
        stored.save()
    series = load_series(
        health_alias, seconds=600, bucket_seconds=60, now=base + timedelta(seconds=10)
    )
    (point,) = series.points
    assert point.samples == 3 and point.aas == pytest.approx(3.0)
    assert point.parts == {"CPU": pytest.approx(2.0), "Lock": pytest.approx(1.0)}
    assert point.refused_connections == 6
    svg = load_chart_svg(series)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    (bucket,) = [g for g in root.iter(f"{ns}g") if g.get("class") == "bucket"]
    assert bucket.get("data-aas") == "3.00" and bucket.get("data-refused") == "6"
    assert [r.get("data-name") for r in bucket.iter(f"{ns}rect")] == ["CPU", "Lock"]
    bars = [r for r in root.iter(f"{ns}rect") if r.get("class") == "refused"]
    assert [r.get("data-refused") for r in bars] == ["6"]


def test_hostile_application_names_stay_text_in_the_chart_and_the_metrics(
    health_alias: str, held: Sessions
) -> None:
    held.open(HOSTILE, "active")
    held.open(HOSTILE, "active")
    monitor = Monitor(health_alias, 1.0)
    try:
        sample = monitor.sample()
    finally:
        monitor.close()
    assert sample.load is not None and sample.load.by_application == {HOSTILE: 2}
    Recorder(5.0)(sample)
    series = load_series(
        health_alias, dimension="application", seconds=600, bucket_seconds=60,
        now=sample.taken_at + timedelta(seconds=1),
    )  # fmt: skip
    assert series.names == (HOSTILE,)
    root = ET.fromstring(load_chart_svg(series))  # well-formed: nothing broke out
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    texts = [e.text for e in root.iter() if e.tag.endswith("title")]
    assert any(t and t == HOSTILE for t in texts)  # shown as the very text it is
    names = {e.get("data-name") for e in root.iter() if e.get("data-name")}
    assert names == {HOSTILE}

    registry = CollectorRegistry()
    gauges = LoadGauges()
    gauges.add(health_alias, sample.load)
    newline_code = LoadSplit(1, {"CPU": 1}, {"a": 1}, {'shop.views\n"x"\\ */': 1})
    gauges.add("other-alias", newline_code)

    class Collector(prometheus_registry.Collector):
        def collect(self) -> Iterator[Metric]:
            return iter(gauges.families())

    registry.register(Collector())
    text = generate_latest(registry).decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    app = ("dbconnmgr_active_sessions_by_application",
           (("alias", health_alias), ("application_name", HOSTILE)))  # fmt: skip
    code = ("dbconnmgr_active_sessions_by_code",
            (("alias", "other-alias"), ("code", 'shop.views\n"x"\\ */')))  # fmt: skip
    assert found[app] == 2 and found[code] == 1
    assert found[("dbconnmgr_active_sessions_by_wait_class",
                  (("alias", health_alias), ("wait_class", "Timeout")))] == 2  # fmt: skip
    assert found[("dbconnmgr_active_sessions_by_wait_class",
                  (("alias", health_alias), ("wait_class", "IO")))] == 0  # fmt: skip


def test_a_code_label_with_newlines_and_markup_stays_text_in_the_chart() -> None:
    name = "shop.views.export\n</svg><b onload=x>*/"
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    series = LoadSeries(
        start=now - timedelta(hours=1), end=now, bucket_seconds=60, dimension="code",
        names=(name, "other"),
        points=(LoadPoint(now - timedelta(minutes=5), 3, 2.0, {name: 1.5, "other": 0.5}, 9, None),),
    )  # fmt: skip
    root = ET.fromstring(load_chart_svg(series))
    assert not [e for e in root.iter() if e.tag.endswith("}b")]
    # text and attributes only: a title keeps the newline, an attribute reads it as a space
    assert name in [e.text for e in root.iter() if e.tag.endswith("title")]
    assert name.replace("\n", " ") in [e.get("data-name") for e in root.iter()]


def test_only_the_largest_names_are_kept_the_rest_is_other() -> None:
    counts = {f"app{i:02d}": 20 - i for i in range(15)} | {"other": 3}
    kept = top_with_other(counts, 10)
    assert list(kept) == [f"app{i:02d}" for i in range(10)] + ["other"]
    assert kept["other"] == sum(counts.values()) - sum(20 - i for i in range(10))
    assert sum(kept.values()) == sum(counts.values())


def test_peak_shows_the_recorded_load_in_json_and_in_the_table(
    health_alias: str, held: Sessions
) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    held.open("sleeper", "active")
    with lock_waiters(held.dsn, 2, "waiter"):
        monitor = Monitor(health_alias, 1.0)
        recorder = Recorder(5.0)
        try:
            for _ in range(2):
                recorder(monitor.sample())
        finally:
            monitor.close()
    out = StringIO()
    call_command(
        "db_connections", "--action=peak", f"--database={health_alias}", "--days=1",
        "--format=json", stdout=out,
    )  # fmt: skip
    load = json.loads(out.getvalue())["load"]
    assert load["bucket_seconds"] == 3600 and load["cpus"] is None
    (point,) = load["points"]
    assert point["samples"] == 2 and point["aas"] == 3
    assert point["wait_class"] == {"Lock": 2, "Timeout": 1}
    assert point["application"] == {"waiter": 2, "sleeper": 1}
    assert point["code"] == {"unknown": 3}
    table = StringIO()
    call_command(
        "db_connections", "--action=peak", f"--database={health_alias}", "--days=1",
        stdout=table,
    )  # fmt: skip
    text = table.getvalue()
    assert "Database load per hour" in text
    assert "waiter 2.0, sleeper 1.0" in text
