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
from dbconnmgr.core.charts import HeatCell, LoadSeries
from dbconnmgr.core.load import LOAD_DIMENSIONS, WAIT_CLASSES, top_with_other
from dbconnmgr.core.samples import PeakReport, histogram_percentile, hourly_peaks
from dbconnmgr.history import LOAD_CHART_PARTS
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


# -- the load split in the rollup ----------------------------------------------------------------
#: More applications and code labels than a chart names (LOAD_CHART_PARTS), so that the top
#: ones and "other" are both drawn.
APPS = [f"app-{i:02d}" for i in range(13)]
CODES = ["unknown", *(f"shop.views.v{i}" for i in range(11))]
CLASSES = ["CPU", "Lock", "IO", "Client", "LWLock"]


def _split(rng: random.Random, active: int, names: list[str]) -> dict[str, int]:
    counts: Counter[str] = Counter(rng.choices(names, weights=range(len(names), 0, -1), k=active))
    return top_with_other(counts)


def _plant_load(seed: int = 20, alias: str = "default") -> int:
    """About 13 days of samples with a load split (some recorded before the split existed,
    some with refused connections); returns how many."""
    rng = random.Random(seed)
    rows = []
    when = START
    while when < NOW:
        if rng.random() < 0.01:
            when += dt.timedelta(hours=rng.randint(1, 5))
            continue
        active = rng.randint(0, 25) if 12 <= when.hour <= 16 else rng.randint(0, 4)
        load = None
        if rng.random() > 0.05:  # 5%: recorded before the split existed
            classes = Counter(rng.choices(CLASSES, weights=(6, 2, 3, 1, 1), k=active))
            load = {"wait_class": dict(classes), "application": _split(rng, active, APPS),
                    "code": _split(rng, active, CODES)}  # fmt: skip
        total = active + rng.randint(0, 40)
        rows.append(
            ConnectionSample(
                taken_at=when, alias=alias, vendor="postgresql", total_connections=total,
                active_connections=active, idle_in_transaction_connections=0,
                waiting_connections=0, max_connections=200, usable_connections=197,
                utilization_percent=round(total * 100 / 197, 1), by_state={},
                by_application={}, load=load,
                refused_connections=rng.choice((None, None, 0, 3)) if active > 20 else None,
            )
        )  # fmt: skip
        when += dt.timedelta(seconds=rng.choice((0, 30, 60, 97, 300, 900)))
    ConnectionSample.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _raw_load_charts(
    days: float, bucket: int, dimensions: tuple[str, ...] = LOAD_DIMENSIONS
) -> dict[str, list[tuple[Any, ...]]]:
    """The load charts computed here from every raw sample: per bucket (the sample's hour
    or day in the current time zone) the mean active sessions and the mean of each of the
    period's largest parts (every wait class; the 8 largest applications or code labels,
    ties by name), the rest as "other"."""
    tz = timezone.get_current_timezone()
    samples = list(
        ConnectionSample.objects.filter(
            alias="default", taken_at__gte=NOW - dt.timedelta(days=days), taken_at__lte=NOW
        ).values_list("taken_at", "active_connections", "total_connections",
                      "refused_connections", "load")
    )  # fmt: skip
    totals: dict[str, Counter[str]] = {d: Counter() for d in dimensions}
    buckets: dict[dt.datetime, list[Any]] = {}
    for taken_at, active, total, refused, load in samples:
        local = taken_at.astimezone(tz)
        if bucket == 3600:  # the local hour, as an instant (a clock change's two 1 a.m.)
            key = local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        else:
            key = dt.datetime.combine(local.date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)
        buckets.setdefault(key, []).append((active, total, refused, load or {}))
        for d in dimensions:
            totals[d].update((load or {}).get(d, {}))
    names = {}
    for d in dimensions:
        named = {n: c for n, c in totals[d].items() if n != "other" and c}
        if d == "wait_class":
            names[d] = [c for c in WAIT_CLASSES if c in named]
        else:
            names[d] = sorted(named, key=lambda n: (-named[n], n))[:LOAD_CHART_PARTS]
    charts: dict[str, list[tuple[Any, ...]]] = {d: [] for d in dimensions}
    for key in sorted(buckets):
        rows = buckets[key]
        n = len(rows)
        aas = sum(r[0] for r in rows) / n
        counted = [r[2] for r in rows if r[2] is not None]
        for d in dimensions:
            parts = {}
            for name in names[d]:
                summed = sum(r[3].get(d, {}).get(name, 0) for r in rows)
                if summed:
                    parts[name] = summed / n
            rest = round(aas - sum(parts.values()), 6)  # the chart rounds "other" so
            if rest > 0.005:
                parts["other"] = rest
            charts[d].append(
                (key, n, aas, parts, max(r[1] for r in rows), sum(counted) if counted else None)
            )
    return charts


def _assert_same_load(series: dict[str, LoadSeries], raw: dict[str, list[tuple[Any, ...]]]) -> None:
    for dimension, expected in raw.items():
        got = series[dimension]
        assert len(got.points) == len(expected) > 0
        for point, (start, n, aas, parts, top, refused) in zip(got.points, expected, strict=True):
            # as instants: Python never finds an ambiguous local time (the repeated 1 a.m.)
            # equal to a time of another zone
            assert point.start.astimezone(dt.UTC) == start
            assert (point.samples, point.max_connections) == (n, top)
            assert point.refused_connections == refused
            assert point.aas == pytest.approx(aas)
            assert point.parts == pytest.approx(parts)  # the same names, the same means
        order = [n for n in got.names if n != "other"]
        assert set(order) == {n for p in expected for n in p[3] if n != "other"}


def _week_charts(days: float = 7, bucket: int = 3600) -> dict[str, LoadSeries]:
    return history.load_charts(
        "default", LOAD_DIMENSIONS, seconds=int(days * 86400), bucket_seconds=bucket, now=NOW
    )


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(("days", "bucket"), [(7, 3600), (1.3, 3600), (13, 86400)])
def test_load_charts_from_the_rollup_equal_the_samples(zone: str, days: float, bucket: int) -> None:
    # Paris and New York change their offset inside the window (two 1 a.m. hours, a
    # 25-hour day); Kolkata is 5:30 from UTC, so its hours are grouped from the samples.
    _plant_load()
    history.rebuild_rollup(now=NOW)
    assert ConnectionHour.objects.filter(load=None).count() == 0
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        _assert_same_load(_week_charts(days, bucket), _raw_load_charts(days, bucket))


@pytest.mark.django_db
def test_the_load_chart_names_the_largest_parts_and_counts_the_rest_as_other() -> None:
    _plant_load()
    history.rebuild_rollup(now=NOW)
    charts = _week_charts()
    apps, codes, classes = charts["application"], charts["code"], charts["wait_class"]
    # 13 applications: 8 by name (the largest: test above), the rest as other
    assert len(apps.names) == 9 and apps.names[-1] == "other" and set(apps.names) < {*APPS, "other"}
    assert codes.names[0] == "unknown" and len(codes.names) == 9
    assert classes.names == ("CPU", "Lock", "LWLock", "IO", "Client", "other")  # display order
    busy = max(apps.points, key=lambda p: p.aas)
    assert busy.aas > 5 and busy.parts["other"] > 0
    assert sum(busy.parts.values()) == pytest.approx(busy.aas)
    # every bucket's split sums to its AAS, whichever the dimension
    for series in charts.values():
        for point in series.points:
            assert sum(point.parts.values()) == pytest.approx(point.aas, abs=0.006)


@pytest.mark.django_db
def test_a_small_hourly_load_chart_has_the_numbers_of_its_samples() -> None:
    base = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    plan = [  # minute, active, split by class, by application, refused
        (5, 3, {"CPU": 2, "Lock": 1}, {"web": 3}, None),
        (25, 5, {"CPU": 1, "Lock": 4}, {"web": 1, "celery": 4}, 2),
        (45, 1, {"IO": 1}, {"celery": 1}, None),
        (65, 4, None, None, 1),  # the next hour: recorded without a split
        (70, 2, {"CPU": 2}, {"web": 2}, None),
    ]
    for minute, active, classes, apps, refused in plan:
        load = None if classes is None else {"wait_class": classes, "application": apps,
                                              "code": {"unknown": active}}  # fmt: skip
        ConnectionSample.objects.create(
            taken_at=base + dt.timedelta(minutes=minute), alias="default", vendor="postgresql",
            total_connections=10 + active, active_connections=active,
            idle_in_transaction_connections=0, waiting_connections=0, max_connections=100,
            usable_connections=97, utilization_percent=10.0, load=load,
            refused_connections=refused,
        )  # fmt: skip
    now = base + dt.timedelta(hours=3)
    assert history.rebuild_rollup(now=now) == {"default": 2}
    assert ConnectionHour.objects.get(hour=base).load == {
        "active": 9, "refused": 2, "wait_class": {"CPU": 3, "Lock": 5, "IO": 1},
        "application": {"web": 4, "celery": 5}, "code": {"unknown": 9},
    }  # fmt: skip
    charts = history.load_charts("default", seconds=6 * 3600, bucket_seconds=3600, now=now)
    first, second = charts["wait_class"].points
    assert (first.start, first.samples, first.aas, first.max_connections) == (base, 3, 3.0, 15)
    assert first.parts == {"CPU": 1.0, "Lock": pytest.approx(5 / 3), "IO": pytest.approx(1 / 3)}
    assert first.refused_connections == 2
    # 6 sessions over 2 samples, 2 of them split: the other 4 are "other", not lost
    assert (second.samples, second.aas, second.parts) == (2, 3.0, {"CPU": 1.0, "other": 2.0})
    assert second.refused_connections == 1
    assert charts["application"].names == ("web", "celery", "other")  # 6 sessions, 5
    assert charts["application"].points[0].parts == {
        "web": pytest.approx(4 / 3),
        "celery": pytest.approx(5 / 3),
    }


@pytest.mark.django_db
def test_whole_hours_of_the_load_chart_are_read_from_the_rollup() -> None:
    _plant_load()
    history.rebuild_rollup(now=NOW)
    before = _week_charts()
    # The samples of whole hours inside the window are gone: the chart keeps them, so it
    # read them from the rollup (only the partial first and last hours are read from samples).
    inside = ConnectionSample.objects.filter(
        taken_at__gte=NOW - dt.timedelta(days=6), taken_at__lt=NOW - dt.timedelta(days=1)
    )
    assert inside.delete()[0] > 1000
    assert _week_charts() == before


@pytest.mark.django_db
def test_hours_rolled_up_before_the_split_are_read_from_the_samples_then_filled() -> None:
    _plant_load()
    history.rebuild_rollup(now=NOW)
    raw = _raw_load_charts(7, 3600)
    # Hours rolled up by a release without the split (migration 0006 leaves them null), and
    # one whose samples were deleted by hand.
    old = ConnectionHour.objects.filter(hour__lt=NOW - dt.timedelta(days=3))
    assert old.update(load=None) > 150
    _assert_same_load(_week_charts(), raw)  # never zero load for an hour that had load

    filled = history.fill_hour_loads("default")
    assert (
        filled
        == ConnectionHour.objects.exclude(load=None)
        .filter(hour__lt=START + dt.timedelta(hours=history.CATCH_UP_HOURS))
        .count()
        > 10
    )  # a day from the oldest hour
    while history.fill_hour_loads("default"):
        pass
    assert not ConnectionHour.objects.filter(load=None).exists()
    _assert_same_load(_week_charts(), raw)


@pytest.mark.django_db
def test_an_hour_whose_samples_are_gone_is_not_charted_as_zero_load() -> None:
    _plant_load()
    history.rebuild_rollup(now=NOW)
    hour = (NOW - dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    ConnectionHour.objects.filter(hour=hour).update(load=None)
    ConnectionSample.objects.filter(
        taken_at__gte=hour, taken_at__lt=hour + dt.timedelta(hours=1)
    ).delete()
    assert history.fill_hour_loads("default") == 1
    assert ConnectionHour.objects.get(hour=hour).load == {"active": None}  # unknown
    assert history.fill_hour_loads("default") == 0
    starts = {p.start for p in _week_charts()["wait_class"].points}
    assert hour not in starts and hour - dt.timedelta(hours=1) in starts


@pytest.mark.django_db
def test_load_charts_count_hours_not_rolled_up_yet() -> None:
    _plant_load()
    assert history.roll_up_finished_hours("default", now=NOW) > 0  # the first day only
    _assert_same_load(_week_charts(13, 86400), _raw_load_charts(13, 86400))
    _assert_same_load(_week_charts(), _raw_load_charts(7, 3600))  # none of it rolled up


@pytest.mark.django_db
def test_recording_fills_hours_rolled_up_before_the_split() -> None:
    import io

    from django.core.management import call_command

    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for hours_ago, active in ((3, 4), (2, 6)):
        ConnectionSample.objects.create(
            taken_at=hour - dt.timedelta(hours=hours_ago), alias="default", vendor="postgresql",
            total_connections=20, active_connections=active, idle_in_transaction_connections=0,
            waiting_connections=0, max_connections=100, usable_connections=97,
            utilization_percent=20.6, load={"wait_class": {"Lock": active}},
        )  # fmt: skip
    history.rebuild_rollup()
    ConnectionHour.objects.update(load=None)  # as a release without the split left them
    history._LOADS_FILLED.discard("default")  # a monitor process that just started

    call_command("db_connections", "--action=monitor", "--record", stdout=io.StringIO())

    filled: dict[dt.datetime, Any] = dict(ConnectionHour.objects.values_list("hour", "load"))
    assert {h: (load or {}).get("wait_class") for h, load in filled.items()} == {
        hour - dt.timedelta(hours=3): {"Lock": 4},
        hour - dt.timedelta(hours=2): {"Lock": 6},
    }
    assert history.fill_hour_loads("default") == 0  # nothing left to fill
