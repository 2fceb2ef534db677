"""`monitor --record`, retention pruning and `peak`, through the ORM on the real server."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone

from dbconnmgr import peak_hours, prune_samples
from dbconnmgr.core.samples import hourly_peaks, percentile
from dbconnmgr.models import ConnectionSample
from devtools.pgserver import PgServer
from tests.conftest import Sessions, manage
from tests.factories import ConnectionSampleFactory, at


def _monitor(*args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("db_connections", "--action=monitor", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_recorded_samples_round_trip_through_the_orm(sessions: Sessions) -> None:
    sessions.open_many(2, "t-rec", "idle")
    sessions.open("t-rec-txn", "idle in transaction")

    records = _monitor("--record", "--count=2", "--interval=0.05")

    stored = list(ConnectionSample.objects.order_by("taken_at"))
    assert len(stored) == 2
    for row, record in zip(stored, records, strict=True):
        assert row.taken_at == dt.datetime.fromisoformat(record["taken_at"])
        assert row.alias == "default"
        assert row.vendor == "postgresql"
        assert row.total_connections == record["total_connections"]
        assert row.active_connections == record["active_connections"]
        assert row.usable_connections == record["usable_connections"]
        assert row.max_connections == record["max_connections"]
        assert row.utilization_percent == record["utilization_percent"]
        assert row.by_state == {k: v for k, v in record["by_state"].items() if v}
        assert row.by_application == record["by_application"]
        assert row.by_application["t-rec"] == 2
        assert row.by_application["t-rec-txn"] == 1
        assert row.idle_in_transaction_connections >= 1
    assert ConnectionSample.objects.latest() == stored[-1]


@pytest.mark.django_db
def test_recording_prunes_samples_older_than_the_retention(settings: Any) -> None:
    settings.DBCONNMGR = {"RETENTION_DAYS": 30}
    now = timezone.now()
    old = ConnectionSampleFactory.create(taken_at=now - dt.timedelta(days=31))
    kept = ConnectionSampleFactory.create(taken_at=now - dt.timedelta(days=29))

    _monitor("--record")

    assert not ConnectionSample.objects.filter(pk=old.pk).exists()
    assert ConnectionSample.objects.filter(pk=kept.pk).exists()
    assert ConnectionSample.objects.count() == 2  # the kept one and the new sample


@pytest.mark.django_db
def test_retention_none_keeps_everything(settings: Any) -> None:
    ConnectionSampleFactory.create(taken_at=timezone.now() - dt.timedelta(days=3000))
    settings.DBCONNMGR = {"RETENTION_DAYS": None}
    assert prune_samples() == 0
    settings.DBCONNMGR = {"RETENTION_DAYS": 1}
    assert prune_samples() == 1
    assert ConnectionSample.objects.count() == 0


def _plant_history() -> None:
    """Three days, every hour, four samples an hour; 14:00 is the busy hour.

    Quiet hours carry totals 10, 11, 12, 13; 14:00 carries 80, 85, 90, 95 on days 1 and 2
    and 80, 85, 90, 120 on day 3 (the single peak: 2026-11-03 14:45).
    """
    for day in (1, 2, 3):
        for hour in range(24):
            totals = [10, 11, 12, 13]
            if hour == 14:
                totals = [80, 85, 90, 120 if day == 3 else 95]
            for quarter, total in enumerate(totals):
                ConnectionSampleFactory.create(taken_at=at(day, hour, 15 * quarter),
                                        total_connections=total)  # fmt: skip


@pytest.mark.django_db
def test_peak_finds_the_planted_peak_hour() -> None:
    _plant_history()
    ConnectionSampleFactory.create(taken_at=at(2, 14, 5), total_connections=999, alias="other")

    report = peak_hours("default", days=7, now=at(4, 0))

    assert report.samples == 3 * 24 * 4
    assert len(report.hours) == 24
    busy = report.hours[14]
    assert (busy.hour, busy.samples, busy.max) == (14, 12, 120)
    assert busy.average == round((80 + 85 + 90) * 3 / 12 + (95 * 2 + 120) / 12, 1)
    assert busy.p95 == 120  # nearest rank: the 12th of 12 sorted values
    quiet = report.hours[3]
    assert (quiet.max, quiet.average, quiet.p95) == (13, 11.5, 13)
    assert report.peak_hour == busy
    assert report.peak_day == dt.date(2026, 11, 3)
    assert report.peak_day_hour == 14
    assert report.peak_connections == 120
    assert report.peak_at == at(3, 14, 45)


@pytest.mark.django_db
def test_peak_reads_only_the_last_days() -> None:
    _plant_history()
    report = peak_hours("default", days=1, now=at(3, 14, 30))
    assert report.first == at(2, 14, 30)
    assert report.last == at(3, 14, 30)
    assert report.samples == 24 * 4 + 1  # both ends included
    assert report.peak_connections == 95  # day 3's 120 comes after `now`


@pytest.mark.django_db
def test_peak_command_json_and_table(settings: Any) -> None:
    _plant_history()
    # recent enough for the default 7 days: move the planted history to "now"
    shift = dt.timedelta(hours=(timezone.now() - at(4, 0)) // dt.timedelta(hours=1))
    for sample in ConnectionSample.objects.all():
        sample.taken_at += shift
        sample.save(update_fields=["taken_at"])
    settings.TIME_ZONE = "UTC"

    out = io.StringIO()
    call_command("db_connections", "--action=peak", "--format=json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["samples"] == 288
    assert payload["peak_connections"] == 120
    assert payload["days"] == 7
    expected_hour = (at(3, 14, 45) + shift).hour
    assert payload["peak_day_hour"] == expected_hour
    assert payload["peak_hour"] == (at(1, 14) + shift).hour
    assert len(payload["hours"]) == 24

    table = io.StringIO()
    call_command("db_connections", "--action=peak", stdout=table)
    text = table.getvalue()
    assert "Peak hour of day" in text and "p95" in text and "120" in text


@pytest.mark.django_db
@pytest.mark.parametrize("columns", ["80", "50"])
def test_peak_without_samples_says_how_to_record_some(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    out = io.StringIO()
    call_command("db_connections", "--action=peak", "--days=2", stdout=out)
    assert "No recorded samples" in out.getvalue()
    # the command on one line, never broken mid-command, whatever the width
    command = "manage.py db_connections --action=monitor --watch --record"
    assert command in [line.strip() for line in out.getvalue().splitlines()]


def test_percentile_and_hourly_peaks_are_pure() -> None:
    assert percentile([], 0.95) == 0
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([5], 0.95) == 5
    report = hourly_peaks([], dt.UTC)
    assert report.samples == 0 and report.peak_hour is None and report.peak_day is None
    # hours follow the time zone asked for
    paris = dt.timezone(dt.timedelta(hours=1))
    report = hourly_peaks([(at(1, 23, 30), 7)], paris)
    assert report.hours[0].hour == 0 and report.peak_day == dt.date(2026, 11, 2)


def test_hourly_peaks_ties_and_unordered_rows() -> None:
    # rows in any order: first/last and, on a tie, the earliest sample of the peak
    rows = [(at(2, 9), 50), (at(1, 9), 50), (at(3, 8), 12), (at(1, 7), 3)]
    report = hourly_peaks(rows, dt.UTC)
    assert (report.first, report.last) == (at(1, 7), at(3, 8))
    assert report.peak_at == at(1, 9) and report.peak_connections == 50
    assert (report.peak_day, report.peak_day_hour) == (dt.date(2026, 11, 1), 9)
    # the peak hour: highest p95, then highest max, then highest average
    # (the winner is the later hour each time: max() alone would keep the earlier one)
    same_p95 = [(at(1, 10), 10)] * 5 + [(at(1, 11), 10)] * 20 + [(at(2, 11), 30)]
    assert hourly_peaks(same_p95, dt.UTC).peak_hour.hour == 11  # type: ignore[union-attr]
    same_max = [(at(1, 12), 10), (at(2, 12), 4), (at(1, 13), 10), (at(2, 13), 10)]
    assert hourly_peaks(same_max, dt.UTC).peak_hour.hour == 13  # type: ignore[union-attr]


def test_bad_days_get_one_line() -> None:
    for value, fragment in (("0", ">= 1"), ("week", "whole number")):
        result = manage("db_connections", "--action=peak", f"--days={value}")
        assert result.returncode == 3
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "--days" in lines[0] and fragment in lines[0], result.stderr


@pytest.mark.django_db
def test_migrations_are_in_sync_with_the_models() -> None:
    call_command("makemigrations", "dbconnmgr", "--check", "--dry-run", stdout=io.StringIO())


def test_record_and_peak_end_to_end_on_a_fresh_server() -> None:
    """As a user would: --record before migrate fails with the fix; after it, peak reads."""
    server = PgServer(max_connections=20).start()
    try:
        url = server.url
        result = manage("db_connections", "--action=monitor", "--record", database_url=url)
        assert result.returncode == 3
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "manage.py migrate dbconnmgr" in lines[0], result.stderr

        result = manage("db_connections", "--action=peak", database_url=url)
        assert result.returncode == 3 and "migrate dbconnmgr" in result.stderr
        assert "Traceback" not in result.stderr

        assert manage("migrate", "dbconnmgr", "-v0", database_url=url).returncode == 0
        held = [psycopg.connect(server.dsn(), application_name="t-e2e") for _ in range(3)]
        try:
            result = manage("db_connections", "--action=monitor", "--record", "--count=3",
                            "--interval=0.1", database_url=url)  # fmt: skip
        finally:
            for conn in held:
                conn.close()
        assert result.returncode == 0, result.stderr
        result = manage("db_connections", "--action=peak", "--format=json", database_url=url)
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        assert payload["samples"] == 3
        # three held + the connection that records (the reading one is not counted)
        assert payload["peak_connections"] == 4
    finally:
        server.stop()


@pytest.mark.django_db
@pytest.mark.parametrize("days", [-1, 0, "30"])
def test_a_bad_retention_deletes_nothing(settings: Any, days: Any) -> None:
    # RETENTION_DAYS=-1 used to put the cutoff in the future: every sample was deleted.
    from dbconnmgr.exceptions import InvalidSetting

    ConnectionSampleFactory.create(taken_at=timezone.now())
    settings.DBCONNMGR = {"RETENTION_DAYS": days}
    with pytest.raises(InvalidSetting, match=r"DBCONNMGR\['RETENTION_DAYS'\]"):
        prune_samples()
    assert ConnectionSample.objects.count() == 1


@pytest.mark.django_db
def test_hourly_heatmap_groups_recorded_samples_by_local_day_and_hour() -> None:
    """Cells are (ISO day of week, hour) in the current time zone, folded from the hours
    the database grouped; max and p95 come from every sample of the cell."""
    from zoneinfo import ZoneInfo

    from dbconnmgr.core.charts import HeatCell
    from dbconnmgr.history import hourly_heatmap

    planted = [(at(16, 9, 5), 5), (at(16, 9, 30), 9), (at(16, 9, 55), 7), (at(17, 22, 59), 3)]
    for taken_at, connections in planted:  # 2026-11-16 is a Monday
        ConnectionSampleFactory.create(taken_at=taken_at, total_connections=connections)
    ConnectionSampleFactory.create(taken_at=at(16, 9, 10), total_connections=50, alias="other")
    with timezone.override(ZoneInfo("Europe/Paris")):  # UTC+1 in November
        heat = hourly_heatmap("default", days=30, now=at(20, 12, 0))
    assert set(heat.cells) == {(1, 10), (2, 23)}
    assert heat.cells[(1, 10)] == HeatCell(max_connections=9, p95_connections=9, samples=3)
    assert heat.cells[(2, 23)] == HeatCell(max_connections=3, p95_connections=3, samples=1)
