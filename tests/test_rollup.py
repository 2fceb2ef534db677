"""The hourly rollup: peak, the heatmap and the hourly series read from it give the answers
the raw samples give (p95 by nearest rank included), through the ORM on the real server."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from dbconnmgr import history
from dbconnmgr.core.charts import HeatCell
from dbconnmgr.core.samples import PeakReport, histogram_percentile, hourly_peaks
from dbconnmgr.models import ConnectionHour, ConnectionSample, RollupCoverage

START = dt.datetime(2026, 10, 20, 0, 0, tzinfo=dt.UTC)
#: The end of the planted history: an odd minute, so that windows cut hours in two.
NOW = dt.datetime(2026, 11, 2, 17, 37, 12, tzinfo=dt.UTC)


def _plant(seed: int = 23, alias: str = "default") -> None:
    """About 13 days of samples at irregular times: quiet nights, busy afternoons, ties,
    gaps of hours without samples, several samples in the same second."""
    rng = random.Random(seed)
    rows = []
    when = START
    while when < NOW:
        if rng.random() < 0.01:  # a gap: the monitor was stopped
            when += dt.timedelta(hours=rng.randint(1, 5))
            continue
        busy = 12 <= when.hour <= 16
        total = rng.randint(40, 120) if busy else rng.randint(0, 30)
        rows.append(
            ConnectionSample(
                taken_at=when, alias=alias, vendor="postgresql", total_connections=total,
                active_connections=total // 3, idle_in_transaction_connections=0,
                waiting_connections=0, max_connections=200, usable_connections=197,
                utilization_percent=round(total * 100 / 197, 1), by_state={},
                by_application={},
            )
        )  # fmt: skip
        when += dt.timedelta(seconds=rng.choice((0, 30, 60, 97, 300, 900)))
    ConnectionSample.objects.bulk_create(rows, batch_size=2000)


def _raw_rows(alias: str, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[Any, int]]:
    return iter(
        ConnectionSample.objects.filter(alias=alias, taken_at__gte=start, taken_at__lte=end)
        .order_by()
        .values_list("taken_at", "total_connections")
    )


def _raw_peak(days: int, alias: str = "default") -> PeakReport:
    return hourly_peaks(
        _raw_rows(alias, NOW - dt.timedelta(days=days), NOW), timezone.get_current_timezone()
    )


def _raw_heatmap(days: int) -> dict[tuple[int, int], HeatCell]:
    tz = timezone.get_current_timezone()
    cells: dict[tuple[int, int], Counter[int]] = {}
    for taken_at, total in _raw_rows("default", NOW - dt.timedelta(days=days), NOW):
        local = taken_at.astimezone(tz)
        cells.setdefault((local.isoweekday(), local.hour), Counter())[total] += 1
    return {
        key: HeatCell(max(c), histogram_percentile(c, 0.95), sum(c.values()))
        for key, c in cells.items()
    }


def _assert_same(report: PeakReport, raw: PeakReport) -> None:
    assert report.samples == raw.samples > 0
    assert report == raw  # every hour's samples, max, average and p95; the peak


@pytest.mark.django_db
@pytest.mark.parametrize("days", [1, 2, 7, 13, 30])
def test_peak_from_the_rollup_equals_peak_from_the_samples(days: int) -> None:
    _plant()
    written = history.rebuild_rollup(now=NOW)
    assert written["default"] > 200  # whole hours were rolled up
    assert history.coverage("default") == (START, NOW.replace(minute=0, second=0))

    _assert_same(history.peak_hours("default", days, now=NOW), _raw_peak(days))


@pytest.mark.django_db
def test_p95_by_nearest_rank_matches_on_every_hour() -> None:
    _plant(seed=7)
    history.rebuild_rollup(now=NOW)
    report = history.peak_hours("default", 13, now=NOW)
    tz = timezone.get_current_timezone()
    by_hour: dict[int, list[int]] = {}
    for taken_at, total in _raw_rows("default", NOW - dt.timedelta(days=13), NOW):
        by_hour.setdefault(taken_at.astimezone(tz).hour, []).append(total)
    for stats in report.hours:
        values = sorted(by_hour[stats.hour])
        rank = -(-95 * len(values) // 100)  # ceil(0.95 n), in integers
        assert stats.p95 == values[rank - 1]
        assert stats.max == values[-1]
        assert stats.samples == len(values)


@pytest.mark.django_db
def test_heatmap_and_hourly_series_from_the_rollup_equal_the_samples() -> None:
    _plant()
    history.rebuild_rollup(now=NOW)

    assert history.hourly_heatmap("default", days=13, now=NOW).cells == _raw_heatmap(13)

    series = history.utilization_series("default", seconds=5 * 86400, bucket_seconds=3600, now=NOW)
    start = NOW - dt.timedelta(days=5)
    raw: dict[dt.datetime, list[tuple[int, float]]] = {}
    for sample in ConnectionSample.objects.filter(taken_at__gte=start, taken_at__lte=NOW):
        hour = sample.taken_at.replace(minute=0, second=0, microsecond=0)
        raw.setdefault(hour, []).append((sample.total_connections, sample.utilization_percent))
    assert [p.start for p in series.points] == sorted(raw)
    for point in series.points:
        values = raw[point.start]
        assert point.samples == len(values)
        assert point.max_connections == max(v[0] for v in values)
        assert point.max_utilization_percent == max(v[1] for v in values)
        average = sum(v[1] for v in values) / len(values)
        assert point.avg_utilization_percent == pytest.approx(average)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_the_answers_hold_in_other_time_zones(zone: str) -> None:
    # Paris and New York change their offset on 2026-10-25 and 2026-11-01 (inside the
    # window); Kolkata is 5:30 from UTC, so UTC hours are not its hours.
    _plant()
    history.rebuild_rollup(now=NOW)
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        _assert_same(history.peak_hours("default", 13, now=NOW), _raw_peak(13))
        assert history.hourly_heatmap("default", days=13, now=NOW).cells == _raw_heatmap(13)


@pytest.mark.django_db
def test_hours_not_rolled_up_yet_are_read_from_the_samples() -> None:
    _plant()
    # One incremental roll-up: the first day only (CATCH_UP_HOURS from the oldest sample).
    assert history.roll_up_finished_hours("default", now=NOW) > 0
    start, end = history.coverage("default") or (None, None)
    assert (start, end) == (START, START + dt.timedelta(hours=history.CATCH_UP_HOURS))
    _assert_same(history.peak_hours("default", 13, now=NOW), _raw_peak(13))

    while history.roll_up_finished_hours("default", now=NOW):  # catch up, a day per call
        pass
    assert history.coverage("default") == (START, NOW.replace(minute=0, second=0))
    assert history.roll_up_finished_hours("default", now=NOW) == 0  # nothing left to do
    _assert_same(history.peak_hours("default", 13, now=NOW), _raw_peak(13))


@pytest.mark.django_db
def test_the_current_hour_and_new_samples_after_the_rollup_count() -> None:
    _plant()
    history.rebuild_rollup(now=NOW)
    # A new peak in the current hour, after the rollup was written.
    ConnectionSample.objects.create(
        taken_at=NOW - dt.timedelta(seconds=5), alias="default", vendor="postgresql",
        total_connections=500, active_connections=1, idle_in_transaction_connections=0,
        waiting_connections=0, max_connections=600, usable_connections=597,
        utilization_percent=83.8,
    )  # fmt: skip
    report = history.peak_hours("default", 1, now=NOW)
    assert report.peak_connections == 500
    _assert_same(report, _raw_peak(1))


@pytest.mark.django_db
def test_pruning_drops_rolled_up_hours_with_their_samples(settings: Any) -> None:
    _plant()
    history.rebuild_rollup(now=NOW)
    settings.DBCONNMGR = {"RETENTION_DAYS": 6.3}  # the cutoff falls inside an hour
    cutoff = NOW - dt.timedelta(days=6.3)
    assert history.prune_samples(now=NOW) > 0

    assert not ConnectionSample.objects.filter(taken_at__lt=cutoff).exists()
    boundary = cutoff.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    assert not ConnectionHour.objects.filter(hour__lt=boundary).exists()
    assert history.coverage("default") == (boundary, NOW.replace(minute=0, second=0))
    _assert_same(history.peak_hours("default", 13, now=NOW), _raw_peak(13))


@pytest.mark.django_db
def test_aliases_are_rolled_up_apart() -> None:
    _plant(seed=1, alias="default")
    _plant(seed=2, alias="replica")
    written = history.rebuild_rollup(now=NOW)
    assert set(written) == {"default", "replica"}
    assert RollupCoverage.objects.count() == 2
    for alias in ("default", "replica"):
        _assert_same(history.peak_hours(alias, 13, now=NOW), _raw_peak(13, alias))
    assert history.peak_hours("default", 13, now=NOW) != history.peak_hours("replica", 13, now=NOW)


@pytest.mark.django_db
def test_a_window_reads_hours_not_samples(django_assert_max_num_queries: Any) -> None:
    _plant()
    history.rebuild_rollup(now=NOW)
    # coverage, the partial first and last hours, and four over the rollup (sums per hour
    # of day, extent, peak, histograms): seven statements whatever the number of samples
    with django_assert_max_num_queries(7):
        history.peak_hours("default", 13, now=NOW)


@pytest.mark.django_db
def test_recording_rolls_up_the_finished_hours() -> None:
    # Three hours recorded earlier today, then `monitor --record` takes a sample now.
    import io

    from django.core.management import call_command

    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for hours_ago, totals in ((3, [5, 9, 7]), (2, [40, 44]), (1, [12])):
        for minute, total in enumerate(totals):
            ConnectionSample.objects.create(
                taken_at=hour - dt.timedelta(hours=hours_ago, minutes=-minute), alias="default",
                vendor="postgresql", total_connections=total, active_connections=0,
                idle_in_transaction_connections=0, waiting_connections=0, max_connections=100,
                usable_connections=97, utilization_percent=round(total * 100 / 97, 1),
            )  # fmt: skip

    call_command("db_connections", "--action=monitor", "--record", stdout=io.StringIO())

    rolled = {h.hour: h.max_total_connections for h in ConnectionHour.objects.all()}
    assert rolled == {hour - dt.timedelta(hours=n): top for n, top in ((3, 9), (2, 44), (1, 12))}
    assert history.coverage("default") == (hour - dt.timedelta(hours=3), hour)
    # the sample just recorded is in the current hour: read from the samples
    report = history.peak_hours("default", 1, now=timezone.now())
    assert report.samples == ConnectionSample.objects.count() == 7
    assert report.peak_connections == 44


@pytest.mark.django_db
def test_the_rollup_action_rebuilds_a_missing_rollup() -> None:
    import io
    import json

    from django.core.management import call_command

    _plant()
    out = io.StringIO()
    call_command("db_connections", "--action=rollup", "--format=json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["alias"] == "default"
    assert doc["hours"] == ConnectionHour.objects.filter(alias="default").count() > 200
    assert dt.datetime.fromisoformat(doc["start"]) == START
    assert history.coverage("default") is not None
    _assert_same(history.peak_hours("default", 13, now=NOW), _raw_peak(13))

    out = io.StringIO()
    call_command("db_connections", "--action=rollup", "--database=replica", stdout=out)
    assert "nothing to roll up" in out.getvalue()
