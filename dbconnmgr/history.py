"""Recorded samples: store them, roll them up per hour, prune them, read the history. ORM
only.

Samples go through :class:`dbconnmgr.models.ConnectionSample`, so they are written where the
project's database routers send the ``dbconnmgr`` app (``default`` without a router).

Every history read (peak, the heatmap, the hourly series, the hourly and daily load
charts) costs what the window's hours cost, not its samples: whole hours come from the hourly rollup
(:class:`~dbconnmgr.models.ConnectionHour`, one row per alias and hour, which
``--action=monitor --record`` writes as each hour finishes: :func:`roll_up_finished_hours`),
and only the hours it does not hold (the two partial hours at the window's edges, the
current hour, hours not rolled up yet) are aggregated from the samples by the database.
Both give :class:`~dbconnmgr.core.hours.HourRow` objects, from which the reports are built
exactly as from the samples themselves (:mod:`dbconnmgr.core.hours`); the load split
likewise gives :class:`~dbconnmgr.core.hours.HourLoad` objects (:func:`history_loads`).
Hours rolled up before the rollup carried the split are read from their samples until
:func:`fill_hour_loads` fills them in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from dbconnmgr.app_settings import get_setting
from dbconnmgr.core.charts import Heatmap, LoadSeries, LoadSeriesBuilder, Series, SeriesPoint
from dbconnmgr.core.figures import RECORDED_KEYS
from dbconnmgr.core.hours import (
    HOUR,
    HeatmapBuilder,
    HourLoad,
    HourRow,
    PeakBuilder,
    aligned_hours,
    grouped_hour_loads,
    hour_loads,
    hour_rows,
    hourly_load_series,
    hourly_points,
    merge_histogram,
)
from dbconnmgr.core.samples import PeakReport, Sample

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from dbconnmgr.models import ConnectionHour, ConnectionSample


logger = logging.getLogger("dbconnmgr")

#: Rollup rows fetched per round trip.
_CHUNK = 2000
#: The most hours of samples one incremental roll-up summarises (a monitor that records
#: into a long history recorded before the rollup existed catches up a day per sample).
CATCH_UP_HOURS = 24
#: Hours a rebuild summarises per statement (bounds the grouped rows held at once).
REBUILD_HOURS = 31 * 24
#: Aliases whose rollup this process found with every hour's load split summed: the
#: monitor stops looking for hours rolled up before the rollup carried the split.
_LOADS_FILLED: set[str] = set()
#: ``ConnectionHour.load`` of an hour whose split could not be summed (samples gone).
_UNKNOWN_LOAD: dict[str, Any] = {"active": None}


def record_sample(sample: Sample) -> ConnectionSample | None:
    """Store a reachable sample; unreachable samples are not stored (returns None).

    Then keeps the hourly rollup up to date: when the sample is the first of a new hour,
    the finished hours are summarised (:func:`roll_up_finished_hours`; one short statement
    per sample otherwise), and hours rolled up before the rollup carried the load split
    are filled in a day per sample (:func:`fill_hour_loads`; once per process and alias
    when there are none). A roll-up that fails is logged on the ``dbconnmgr`` logger and
    tried again with the next sample; the sample is stored all the same.

    Raises:
        django.db.DatabaseError: the database that stores samples could not be written
            (tables missing: run ``manage.py migrate``).
    """
    from django.db import DatabaseError, router, transaction

    from dbconnmgr.models import ConnectionHour

    stored = _store(sample)
    if stored is None:
        return None
    try:
        with transaction.atomic(using=router.db_for_write(ConnectionHour) or "default"):
            roll_up_finished_hours(sample.alias, now=sample.taken_at)
            if sample.alias not in _LOADS_FILLED and not fill_hour_loads(sample.alias):
                _LOADS_FILLED.add(sample.alias)
    except DatabaseError as exc:
        text = str(exc).strip()
        logger.warning(
            "could not roll up the recorded samples of %r (will retry): %s",
            sample.alias,
            text.splitlines()[0] if text else type(exc).__name__,
        )
    return stored


def _store(sample: Sample) -> ConnectionSample | None:
    from dbconnmgr.models import ConnectionSample

    snapshot = sample.snapshot
    if snapshot is None:
        return None
    by_state = sample.by_state or {}
    return ConnectionSample.objects.create(
        taken_at=sample.taken_at,
        alias=sample.alias,
        vendor=snapshot.vendor,
        **sample.figures.pick(RECORDED_KEYS),
        by_state={state: n for state, n in by_state.items() if n},
        by_application=sample.by_application or {},
        load=None if sample.load is None else sample.load.as_dict(),
        refused_connections=sample.refused_connections,
    )


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    """The time before which samples are pruned (None: ``RETENTION_DAYS`` keeps all)."""
    days = get_setting("RETENTION_DAYS")
    if days is None:
        return None
    return (now or timezone.now()) - timedelta(days=float(days))


def prune_samples(now: datetime | None = None) -> int:
    """Delete samples older than ``DBCONNMGR["RETENTION_DAYS"]``; return how many.

    The rollup's hours that began before the cutoff go with them (an hour cut in two is
    then read from its remaining samples), so the rollup never answers for a sample that
    is gone. ``RETENTION_DAYS = None`` keeps every sample (nothing is deleted).
    """
    from dbconnmgr.models import ConnectionHour, ConnectionSample, RollupCoverage

    cutoff = retention_cutoff(now)
    if cutoff is None:
        return 0
    deleted, _ = ConnectionSample.objects.filter(taken_at__lt=cutoff).delete()
    boundary = _ceil_hour(cutoff)
    ConnectionHour.objects.filter(hour__lt=boundary).delete()
    RollupCoverage.objects.filter(start__lt=boundary).update(start=boundary)
    RollupCoverage.objects.filter(end__lt=boundary).update(end=boundary)
    return deleted


# -- the hourly rollup -------------------------------------------------------------------------
def _floor_hour(when: datetime) -> datetime:
    """The start of ``when``'s hour in UTC."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(when: datetime) -> datetime:
    start = _floor_hour(when)
    return start if start == when else start + HOUR


def _sample_hours(
    using: str, since: datetime, until: datetime, *, include_end: bool = False, tz: tzinfo = UTC
) -> list[HourRow]:
    """Hour rows of the samples of ``using`` from ``since`` to ``until`` (excluded unless
    ``include_end``), grouped by the database per hour of ``tz`` and total."""
    from django.db.models import Count, Max, Min, Sum
    from django.db.models.functions import TruncHour

    from dbconnmgr.models import ConnectionSample

    if since > until or (since == until and not include_end):
        return []
    rows = ConnectionSample.objects.filter(alias=using, taken_at__gte=since)
    rows = rows.filter(taken_at__lte=until) if include_end else rows.filter(taken_at__lt=until)
    groups = (
        rows.order_by()
        .annotate(hour=TruncHour("taken_at", tzinfo=tz))
        .values_list("hour", "total_connections")
        .annotate(
            samples=Count("*"),  # COUNT(*): the planner then hashes the groups
            first=Min("taken_at"),
            last=Max("taken_at"),
            utilization_sum=Sum("utilization_percent"),
            utilization_max=Max("utilization_percent"),
        )
    )
    return hour_rows(groups)


def _rolled_hours(using: str, since: datetime, until: datetime) -> Iterator[HourRow]:
    """The rollup's rows of ``using`` for the hours from ``since`` to ``until`` (excluded)."""
    from dbconnmgr.models import ConnectionHour

    fields = ("hour", "samples", "first_at", "last_at", "max_total_connections", "max_at",
              "total_connections_sum", "max_utilization_percent", "utilization_percent_sum",
              "histogram")  # fmt: skip
    rows = (
        ConnectionHour.objects.filter(alias=using, hour__gte=since, hour__lt=until)
        .order_by()
        .values_list(*fields)
        .iterator(chunk_size=_CHUNK)
    )
    for hour, samples, first, last, top, top_at, total, util_max, util_sum, counts in rows:
        yield HourRow(
            start=hour,
            samples=samples,
            first_at=first,
            last_at=last,
            max_total=top,
            max_at=top_at,
            total_sum=total,
            max_utilization=util_max,
            utilization_sum=util_sum,
            histogram={int(value): int(n) for value, n in counts.items()},
        )


def _sample_loads(
    using: str, since: datetime, until: datetime, *, include_end: bool = False, tz: tzinfo = UTC
) -> list[HourLoad]:
    """The load split of the samples of ``using`` from ``since`` to ``until`` (excluded
    unless ``include_end``) summed per hour of ``tz``.

    The splits are summed here, not by the database: every name any sample carried is
    kept (no SQL grouping by JSON key is portable); they come as text decoded a chunk at a
    time in one ``json.loads``. Per UTC hour the counts and sums are grouped by the
    database and only the samples with a split are sent; per hour of another zone
    (:func:`_ranges`: one not a whole number of hours from UTC) every sample is, so that a
    clock change's repeated hour stays two hours. Costs what the samples cost: used for
    the hours the rollup does not hold (the window's edges, the current hour) and when
    rolling an hour up.
    """
    from django.db.models import Count, Max, Sum, TextField
    from django.db.models.functions import Cast, TruncHour

    from dbconnmgr.models import ConnectionSample

    if since > until or (since == until and not include_end):
        return []
    rows = ConnectionSample.objects.filter(alias=using, taken_at__gte=since)
    rows = rows.filter(taken_at__lte=until) if include_end else rows.filter(taken_at__lt=until)
    rows = rows.order_by()
    if tz is UTC:
        groups = (
            rows.annotate(hour=TruncHour("taken_at", tzinfo=UTC))
            .values("hour")
            .annotate(
                n=Count("*"),
                active=Sum("active_connections"),
                top=Max("total_connections"),
                refused=Sum("refused_connections"),
            )
            .values_list("hour", "n", "active", "top", "refused")
        )
        splits = (
            rows.filter(load__isnull=False)
            .annotate(load_text=Cast("load", TextField()))
            .values_list("taken_at", "load_text")
            .iterator(chunk_size=_CHUNK)
        )
        return grouped_hour_loads(groups, _with_json(splits))
    fetched = (
        rows.annotate(load_text=Cast("load", TextField()))
        .values_list(
            "taken_at",
            "active_connections",
            "total_connections",
            "refused_connections",
            "load_text",
        )
        .iterator(chunk_size=_CHUNK)
    )
    return hour_loads(_with_json(fetched), tz)


def _with_json(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """``rows`` whose last item, a JSON object's text or None, is decoded: a chunk of rows
    per ``json.loads`` call (one decoder call per row costs more than a year's read)."""
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield from _decoded_json(chunk)
            chunk = []
    yield from _decoded_json(chunk)


def _decoded_json(chunk: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    if not chunk:
        return
    texts = ",".join("null" if row[-1] is None else row[-1] for row in chunk)
    for row, value in zip(chunk, json.loads(f"[{texts}]"), strict=True):
        # a JSON null stored in the field (not SQL NULL) decodes to None as well
        yield (*row[:-1], value if isinstance(value, dict) else None)


def _rolled_loads(
    using: str, low: datetime, high: datetime
) -> tuple[list[HourLoad], list[datetime]]:
    """The rollup's hour loads of ``using`` from ``low`` to ``high`` (excluded), and the
    hours among them rolled up before the rollup carried the split (to read elsewhere)."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from dbconnmgr.models import ConnectionHour

    rows = (
        ConnectionHour.objects.filter(alias=using, hour__gte=low, hour__lt=high)
        .order_by()
        .annotate(load_text=Cast("load", TextField()))
        .values_list("hour", "samples", "max_total_connections", "load_text")
        .iterator(chunk_size=_CHUNK)
    )
    loads, missing = [], []
    for hour, samples, top, sums in _with_json(rows):
        if sums is None or sums.get("active") is None:  # not summed yet, or unknown
            missing.append(hour)
        else:
            loads.append(HourLoad.from_sums(hour, samples, top, sums))
    return loads, missing


def history_loads(
    using: str, start: datetime, end: datetime, tz: tzinfo | None = None
) -> list[HourLoad]:
    """The load split of every sample of ``using`` taken from ``start`` to ``end``
    (included), summed per hour: the rollup's sums for the whole hours it holds, the
    samples summed for the rest (the window's edges, hours not rolled up yet, hours rolled
    up before the rollup carried the split). Whole hours of ``tz`` (default: the current
    time zone), in any order."""
    tz = tz or timezone.get_current_timezone()
    edges, rolled, group_tz = _ranges(using, start, end, tz)
    loads = [
        load
        for since, until, include_end in edges
        for load in _sample_loads(using, since, until, include_end=include_end, tz=group_tz)
    ]
    if rolled is not None:
        from_rollup, missing = _rolled_loads(using, *rolled)
        loads.extend(from_rollup)
        if missing:  # one read over their span, the hours the rollup answered dropped
            wanted = set(missing)
            span = _sample_loads(using, min(missing), max(missing) + HOUR)
            loads.extend(load for load in span if load.start in wanted)
    return loads


def fill_hour_loads(using: str, hours: int = CATCH_UP_HOURS) -> int:
    """Sum the load split into the rollup's hours of ``using`` that were rolled up before
    it carried the split: those of the ``hours`` hours from the oldest such hour. Returns
    how many hours were filled (0: none is left)."""
    from dbconnmgr.models import ConnectionHour

    missing = ConnectionHour.objects.filter(alias=using, load__isnull=True)
    oldest = missing.order_by("hour").values_list("hour", flat=True).first()
    if oldest is None:
        return 0
    until = oldest + hours * HOUR
    loads = {load.start: load for load in _sample_loads(using, oldest, until)}
    rows = list(missing.filter(hour__lt=until))
    for row in rows:
        load = loads.get(row.hour)
        # An hour whose samples are gone (deleted by hand) has no split to sum: marked
        # unknown, never zero, so that reads look for samples (and find none to chart).
        row.load = _UNKNOWN_LOAD if load is None else load.sums()
    ConnectionHour.objects.bulk_update(rows, ["load"], batch_size=500)
    return len(rows)


def coverage(using: str) -> tuple[datetime, datetime] | None:
    """The hours ``[start, end)`` of ``using`` the rollup holds completely (None: none)."""
    from dbconnmgr.models import RollupCoverage

    found = RollupCoverage.objects.filter(alias=using).values_list("start", "end").first()
    return None if found is None else (found[0], found[1])


def _parts(
    using: str, start: datetime, end: datetime, tz: tzinfo
) -> tuple[list[HourRow], tuple[datetime, datetime] | None]:
    """The samples of ``using`` from ``start`` to ``end`` (included) in two parts: hour rows
    grouped from the samples (the hours the rollup does not hold) and the range of whole
    hours ``[low, high)`` to read from the rollup (None: nothing from it).

    When ``tz`` is not a whole number of hours away from UTC somewhere in the window, UTC
    hours are not its hours: the whole window is then grouped from the samples per hour of
    ``tz`` (exact, at the samples' cost).
    """
    edges, rolled, group_tz = _ranges(using, start, end, tz)
    raw = [
        row
        for since, until, include_end in edges
        for row in _sample_hours(using, since, until, include_end=include_end, tz=group_tz)
    ]
    return raw, rolled


def _ranges(
    using: str, start: datetime, end: datetime, tz: tzinfo
) -> tuple[list[tuple[datetime, datetime, bool]], tuple[datetime, datetime] | None, tzinfo]:
    """How :func:`_parts` reads the window: the ranges ``(since, until, until included)``
    to group from the samples, the whole hours ``[low, high)`` to read from the rollup
    (None: nothing from it), and the time zone whose hours the samples are grouped by."""
    if not aligned_hours(tz, start, end):
        return [(start, end, True)], None, tz
    covered = coverage(using)
    low, high = _ceil_hour(start), _floor_hour(end)
    if covered is not None:
        low, high = max(low, covered[0]), min(high, covered[1])
    if covered is None or low >= high:
        return [(start, end, True)], None, UTC
    return [(start, low, False), (high, end, True)], (low, high), UTC


def history_hours(
    using: str, start: datetime, end: datetime, tz: tzinfo | None = None
) -> Iterator[HourRow]:
    """Hour rows of every sample of ``using`` taken from ``start`` to ``end`` (included),
    oldest first: the rollup's rows where it holds the hours, the samples grouped by the
    database elsewhere (see :func:`_parts` for time zones that are not whole hours away
    from UTC)."""
    raw, rolled = _parts(using, start, end, tz or timezone.get_current_timezone())
    if rolled is None:
        yield from raw
        return
    yield from (row for row in raw if row.start < rolled[0])
    yield from _rolled_hours(using, *rolled)
    yield from (row for row in raw if row.start >= rolled[1])


def _rolled(using: str, rolled: tuple[datetime, datetime]) -> QuerySet[ConnectionHour]:
    from dbconnmgr.models import ConnectionHour

    low, high = rolled
    return ConnectionHour.objects.filter(alias=using, hour__gte=low, hour__lt=high).order_by()


def _with_histograms(
    hours: QuerySet[ConnectionHour], **keys: Any
) -> Iterator[tuple[tuple[Any, ...], dict[str, int]]]:
    """``(key values, histogram)`` of every hour row in ``hours``, the keys annotated as
    ``keys``. The histograms come as text and are decoded a chunk at a time in one
    ``json.loads`` (one decoder call per row cost more than the rest of a year's read)."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    names = list(keys)
    rows = (
        hours.annotate(**keys, histogram_text=Cast("histogram", TextField()))
        .values_list(*names, "histogram_text")
        .iterator(chunk_size=_CHUNK)
    )
    for *key, histogram in _with_json(rows):
        yield tuple(key), histogram or {}


def _add_rolled_peak(
    builder: PeakBuilder, using: str, rolled: tuple[datetime, datetime], tz: tzinfo
) -> None:
    """Feed ``builder`` the rollup's hours ``rolled``: sums, extent and peak summed by the
    database, histograms merged here (no timestamp decoded per hour)."""
    from django.db.models import Max, Min, Sum
    from django.db.models.functions import ExtractHour

    hours = _rolled(using, rolled)
    by_hour = (
        hours.annotate(of_day=ExtractHour("hour", tzinfo=tz))
        .values("of_day")
        .annotate(n=Sum("samples"), total=Sum("total_connections_sum"))
        .values_list("of_day", "n", "total")
    )
    for hour, samples, total in by_hour:
        builder.add_hour_of_day(int(hour), int(samples), int(total))
    extent = hours.aggregate(first=Min("first_at"), last=Max("last_at"))
    builder.add_extent(extent["first"], extent["last"])
    top = (
        hours.order_by("-max_total_connections", "max_at")
        .values_list("max_total_connections", "max_at")
        .first()
    )
    if top is not None:
        builder.add_peak(*top)
    merged: dict[int, dict[str, int]] = {}
    for (hour,), histogram in _with_histograms(hours, of_day=ExtractHour("hour", tzinfo=tz)):
        merge_histogram(merged.setdefault(hour, {}), histogram)
    for hour, counts in merged.items():
        builder.add_histogram(int(hour), {int(value): n for value, n in counts.items()})


def roll_up(using: str, since: datetime, until: datetime) -> int:
    """Summarise the samples of ``using`` in the whole hours from ``since`` to ``until``
    (excluded, both rounded down to the hour) into the rollup, replacing what it held for
    those hours, and extend the rollup's coverage when the hours touch it. Returns how many
    hour rows were written.
    """
    from django.db import router, transaction

    from dbconnmgr.models import ConnectionHour, RollupCoverage

    since, until = _floor_hour(since), _floor_hour(until)
    if since >= until:
        return 0
    rows = _sample_hours(using, since, until)
    loads = {load.start: load.sums() for load in _sample_loads(using, since, until)}
    database = router.db_for_write(ConnectionHour) or "default"
    with transaction.atomic(using=database):
        ConnectionHour.objects.filter(alias=using, hour__gte=since, hour__lt=until).delete()
        ConnectionHour.objects.bulk_create(
            [
                ConnectionHour(
                    alias=using,
                    hour=row.start,
                    samples=row.samples,
                    first_at=row.first_at,
                    last_at=row.last_at,
                    max_total_connections=row.max_total,
                    max_at=row.max_at,
                    total_connections_sum=row.total_sum,
                    max_utilization_percent=row.max_utilization,
                    utilization_percent_sum=row.utilization_sum,
                    histogram={str(value): n for value, n in row.histogram.items()},
                    # None only for a sample recorded between the two reads: such an hour is
                    # read from its samples (and filled in by fill_hour_loads)
                    load=loads.get(row.start),
                )
                for row in rows
            ],
            batch_size=500,
        )
        held = RollupCoverage.objects.select_for_update().filter(alias=using).first()
        if held is None:
            RollupCoverage.objects.create(alias=using, start=since, end=until)
        elif since <= held.end and until >= held.start:  # touching: one range again
            held.start, held.end = min(held.start, since), max(held.end, until)
            held.save(update_fields=["start", "end"])
    return len(rows)


def roll_up_finished_hours(using: str, now: datetime | None = None) -> int:
    """Roll up the finished hours of ``using`` (before ``now``'s hour) the rollup does not
    hold yet: what ``--action=monitor --record`` calls as each hour ends.

    At most :data:`CATCH_UP_HOURS` hours of samples per call, from the oldest not rolled
    up (hours without samples are skipped over), so one call stays short even when a long
    history recorded before the rollup existed is still to be summarised. Returns how many
    hour rows were written.
    """
    from dbconnmgr.models import ConnectionSample, RollupCoverage

    current = _floor_hour(now or timezone.now())
    covered = coverage(using)
    pending = ConnectionSample.objects.filter(alias=using, taken_at__lt=current)
    if covered is not None:
        if covered[1] >= current:
            return 0
        pending = pending.filter(taken_at__gte=covered[1])
    oldest = pending.order_by("taken_at").values_list("taken_at", flat=True).first()
    if oldest is None:  # nothing to summarise: the hours up to now hold no sample
        if covered is not None:
            RollupCoverage.objects.filter(alias=using).update(end=current)
        return 0
    since = _floor_hour(oldest) if covered is None else covered[1]
    until = min(current, _floor_hour(oldest) + CATCH_UP_HOURS * HOUR)
    if covered is None and since >= until:  # every sample is of the current hour
        RollupCoverage.objects.create(alias=using, start=current, end=current)
        return 0
    return roll_up(using, since, until)


def rebuild_rollup(using: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Rebuild the rollup from the samples: of ``using``, or of every alias recorded.

    Each alias's rows and coverage are dropped, then every finished hour is summarised
    again, a month per statement. Returns the hour rows written per alias.
    """
    from dbconnmgr.models import ConnectionHour, ConnectionSample, RollupCoverage

    current = _floor_hour(now or timezone.now())
    if using is None:
        aliases = list(
            ConnectionSample.objects.order_by().values_list("alias", flat=True).distinct()
        )
    else:
        aliases = [using]
    written: dict[str, int] = {}
    for alias in aliases:
        ConnectionHour.objects.filter(alias=alias).delete()
        RollupCoverage.objects.filter(alias=alias).delete()
        oldest = (
            ConnectionSample.objects.filter(alias=alias)
            .order_by("taken_at")
            .values_list("taken_at", flat=True)
            .first()
        )
        written[alias] = 0
        since = current if oldest is None else _floor_hour(oldest)
        if since >= current:
            continue
        while since < current:
            until = min(current, since + REBUILD_HOURS * HOUR)
            written[alias] += roll_up(alias, since, until)
            since = until
    return written


def _window(days: int, now: datetime | None) -> tuple[datetime, datetime]:
    """The ``days`` days before ``now`` (default: now)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    end = now or timezone.now()
    return end - timedelta(days=days), end


def peak_hours(using: str = "default", days: int = 7, *, now: datetime | None = None) -> PeakReport:
    """The busiest hours of the day for alias ``using`` over the last ``days`` days.

    Reads the samples recorded for ``using`` (``--action=monitor --record``) through the
    hourly rollup (see the module's docstring): the same report as from every sample, at
    the cost of the window's hours. Hours and days are in the current Django time zone
    (``TIME_ZONE``).

    Args:
        using: the monitored alias whose samples are read.
        days: how many days back from ``now``.
        now: the end of the period (default: now).
    """
    start, end = _window(days, now)
    tz = timezone.get_current_timezone()
    raw, rolled = _parts(using, start, end, tz)
    builder = PeakBuilder(tz)
    for row in raw:
        builder.add_row(row)
    if rolled is not None:
        _add_rolled_peak(builder, using, rolled, tz)
    return builder.report()


# -- charts of the admin page: aggregated by the database, not in Python ---------------------
def utilization_series(
    using: str = "default",
    *,
    seconds: int = 86400,
    bucket_seconds: int = 900,
    now: datetime | None = None,
) -> Series:
    """Max and average utilization of ``using`` per time bucket over the last ``seconds``.

    Grouped in SQL: one row per bucket comes back, whatever the number of samples.
    ``bucket_seconds`` is 60 (minutes), 900 (quarter hours) or 3600 (hours); buckets are in
    the current Django time zone.
    """
    from django.db.models import Avg, Count, F, FloatField, IntegerField, Max, Value
    from django.db.models.functions import (
        Cast,
        ExtractMinute,
        Floor,
        TruncHour,
        TruncMinute,
    )

    from dbconnmgr.app_settings import thresholds
    from dbconnmgr.models import ConnectionSample

    if bucket_seconds not in (60, 900, 3600):
        raise ValueError(f"bucket_seconds must be 60, 900 or 3600, got {bucket_seconds}")
    end = now or timezone.now()
    start = end - timedelta(seconds=seconds)
    limits = thresholds()
    warning, critical = limits.get("UTILIZATION_WARNING"), limits.get("UTILIZATION_CRITICAL")
    if bucket_seconds == 3600:  # whole hours: from the rollup
        tz = timezone.get_current_timezone()
        return Series(
            start=start,
            end=end,
            bucket_seconds=bucket_seconds,
            points=hourly_points(history_hours(using, start, end, tz), tz),
            warning_percent=None if warning is None else float(warning),
            critical_percent=None if critical is None else float(critical),
        )
    rows = ConnectionSample.objects.filter(
        alias=using, taken_at__gte=start, taken_at__lte=end
    ).order_by()
    if bucket_seconds == 60:
        rows = rows.annotate(
            bucket=TruncMinute("taken_at"), quarter=Value(0, output_field=IntegerField())
        )
    else:
        rows = rows.annotate(
            bucket=TruncHour("taken_at"),
            quarter=Cast(Floor(ExtractMinute("taken_at") / 15.0), IntegerField()),
        )
    grouped = (
        rows.values("bucket", "quarter")
        .annotate(
            max_utilization=Max("utilization_percent"),
            avg_utilization=Avg(F("utilization_percent"), output_field=FloatField()),
            max_connections=Max("total_connections"),
            samples=Count("*"),
        )
        .order_by("bucket", "quarter")
    )
    points = tuple(
        SeriesPoint(
            start=row["bucket"] + timedelta(minutes=15 * row["quarter"]),
            max_utilization_percent=float(row["max_utilization"]),
            avg_utilization_percent=float(row["avg_utilization"]),
            max_connections=int(row["max_connections"]),
            samples=int(row["samples"]),
        )
        for row in grouped
    )
    return Series(
        start=start,
        end=end,
        bucket_seconds=bucket_seconds,
        points=points,
        warning_percent=None if warning is None else float(warning),
        critical_percent=None if critical is None else float(critical),
    )


def hourly_heatmap(
    using: str = "default", *, days: int = 30, now: datetime | None = None
) -> Heatmap:
    """Connections of ``using`` per (day of week, hour) over the last ``days`` days: the
    maximum and the 95th percentile of ``total_connections``, in the current time zone.

    Built from the histograms of the window's hours (the hourly rollup and, for the hours
    it does not hold, the samples grouped by the database): the maximum and the
    percentile (nearest rank, as ``--action=peak`` computes it) are those of every sample.
    Works on every database Django supports.
    """
    from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

    start, end = _window(days, now)
    tz = timezone.get_current_timezone()
    raw, rolled = _parts(using, start, end, tz)
    builder = HeatmapBuilder()
    for row in raw:
        local = row.start.astimezone(tz)
        builder.add_histogram(local.isoweekday(), local.hour, row.histogram)
    if rolled is not None:
        merged: dict[tuple[int, int], dict[str, int]] = {}
        cells = _with_histograms(
            _rolled(using, rolled),
            day=ExtractIsoWeekDay("hour", tzinfo=tz),
            of_day=ExtractHour("hour", tzinfo=tz),
        )
        for (day, hour), histogram in cells:
            merge_histogram(merged.setdefault((day, hour), {}), histogram)
        for (day, hour), counts in merged.items():
            builder.add_histogram(int(day), int(hour), {int(v): n for v, n in counts.items()})
    return Heatmap(days=days, cells=builder.cells())


# -- database load over time ---------------------------------------------------------------------
#: Parts of an application or code chart (the largest over the period; the rest: other).
LOAD_CHART_PARTS = 8
#: Samples read to rank the applications or code labels of a period (spread over it); their
#: figures are then summed over every sample by the database.
LOAD_RANK_SAMPLES = 2000


def _bucketed(rows: QuerySet[ConnectionSample], bucket_seconds: int) -> Any:
    """``rows`` annotated with ``bucket`` (minute or hour) and ``quarter`` (0-3 for 900 s)."""
    from django.db.models import IntegerField, Value
    from django.db.models.functions import (
        Cast,
        ExtractMinute,
        Floor,
        TruncDay,
        TruncHour,
        TruncMinute,
    )

    if bucket_seconds not in (60, 900, 3600, 86400):
        raise ValueError(f"bucket_seconds must be 60, 900, 3600 or 86400, got {bucket_seconds}")
    zero = Value(0, output_field=IntegerField())
    if bucket_seconds == 86400:
        return rows.annotate(bucket=TruncDay("taken_at"), quarter=zero)
    if bucket_seconds == 60:
        return rows.annotate(bucket=TruncMinute("taken_at"), quarter=zero)
    rows = rows.annotate(bucket=TruncHour("taken_at"))
    if bucket_seconds == 900:
        return rows.annotate(quarter=Cast(Floor(ExtractMinute("taken_at") / 15.0), IntegerField()))
    return rows.annotate(quarter=zero)


def _ranked_names(
    rows: QuerySet[ConnectionSample], dimensions: tuple[str, ...]
) -> dict[str, list[str]]:
    """The largest parts of each of ``dimensions`` in ``rows``, ranked on at most
    :data:`LOAD_RANK_SAMPLES` samples spread evenly over them (``other`` excluded; for
    ``wait_class``, every class seen, in display order).

    The spread is taken by primary key between the period's first and last sample (two
    index lookups, then one lookup per id), so ranking costs the same for a day or a month.
    """
    from collections import Counter

    from dbconnmgr.core.load import ordered_classes

    first = rows.order_by("taken_at").values_list("pk", flat=True).first()
    last = rows.order_by("-taken_at").values_list("pk", flat=True).first()
    totals: dict[str, Counter[str]] = {d: Counter() for d in dimensions}
    if first is None or last is None:
        return {d: [] for d in dimensions}
    low, high = min(first, last), max(first, last)
    step = max(1, (high - low) // LOAD_RANK_SAMPLES)
    picked = rows.filter(pk__in=range(low, high + 1, step)).exclude(load=None)
    for load in picked.values_list("load", flat=True):
        if isinstance(load, dict):
            for dimension in dimensions:
                part = load.get(dimension) or {}
                totals[dimension].update({str(k): int(v) for k, v in part.items()})
    result = {}
    for dimension, counts in totals.items():
        counts.pop("other", None)
        if dimension == "wait_class":  # every class seen, in display order
            result[dimension] = list(ordered_classes(counts))
        else:
            result[dimension] = [name for name, _ in counts.most_common(LOAD_CHART_PARTS)]
    return result


def load_series(
    using: str = "default",
    *,
    dimension: str = "wait_class",
    seconds: int = 86400,
    bucket_seconds: int = 900,
    now: datetime | None = None,
) -> LoadSeries:
    """Database load of ``using`` per time bucket over the last ``seconds``: the average
    active sessions (AAS) split by ``dimension`` (``wait_class``, ``application`` or
    ``code``), the highest total of connections and the connections refused, per bucket.

    Hourly and daily buckets (3600, 86400) are built from the split summed per hour
    (:func:`history_loads`: the hourly rollup's sums for its whole hours, the samples for
    the rest), so a week or a month costs what its hours cost; the parts charted are the
    largest of the period, ranked on those exact sums. Minute and quarter-hour buckets are
    aggregated by the database: one row per bucket comes back, each part summed from the
    samples' recorded split (JSON key lookups, which every database Django supports), the
    parts ranked on a spread of the period's samples. Either way the rest is ``other``,
    what the AAS leaves over the named parts. ``bucket_seconds``: 60, 900, 3600 or 86400,
    in the current Django time zone.
    :func:`load_charts` reads several dimensions in one pass.

    Raises:
        ValueError: unknown dimension or bucket.
    """
    return load_charts(
        using, (dimension,), seconds=seconds, bucket_seconds=bucket_seconds, now=now
    )[dimension]


def load_charts(
    using: str = "default",
    dimensions: tuple[str, ...] = ("wait_class", "application"),
    *,
    seconds: int = 86400,
    bucket_seconds: int = 900,
    now: datetime | None = None,
) -> dict[str, LoadSeries]:
    """:func:`load_series` of each of ``dimensions``, read in one pass over the samples.

    Raises:
        ValueError: unknown dimension or bucket.
    """
    from django.db.models import Avg, Count, FloatField, IntegerField, Max, Sum
    from django.db.models.fields.json import KeyTextTransform, KeyTransform
    from django.db.models.functions import Cast

    from dbconnmgr.app_settings import thresholds
    from dbconnmgr.core.load import LOAD_DIMENSIONS
    from dbconnmgr.models import ConnectionSample

    for dimension in dimensions:
        if dimension not in LOAD_DIMENSIONS:
            known = ", ".join(LOAD_DIMENSIONS)
            raise ValueError(f"dimension must be one of {known}, got {dimension!r}")
    end = now or timezone.now()
    start = end - timedelta(seconds=seconds)
    cpus = thresholds().get("DATABASE_CPUS")
    if bucket_seconds in (3600, 86400):  # whole hours: from the rollup
        tz = timezone.get_current_timezone()
        return hourly_load_series(
            history_loads(using, start, end, tz),
            dimensions,
            tz=tz,
            bucket_seconds=bucket_seconds,
            start=start,
            end=end,
            top=LOAD_CHART_PARTS,
            cpus=None if cpus is None else float(cpus),
        )
    rows = ConnectionSample.objects.filter(
        alias=using, taken_at__gte=start, taken_at__lte=end
    ).order_by()
    # Only the parts the period's spread of samples shows are summed (each sum is a JSON
    # lookup per sample): a wait class too rare to show in it is counted as ``other``.
    names = _ranked_names(rows, dimensions)
    sums = {
        f"part_{d}_{i}": Sum(Cast(KeyTextTransform(name, KeyTransform(d, "load")), IntegerField()))
        for d in dimensions
        for i, name in enumerate(names[d])
    }
    grouped = (
        _bucketed(rows, bucket_seconds)
        .values("bucket", "quarter")
        .annotate(
            samples=Count("*"),
            aas=Avg("active_connections", output_field=FloatField()),
            max_connections=Max("total_connections"),
            refused=Sum("refused_connections"),
            **sums,
        )
        .order_by("bucket", "quarter")
    )
    builder = LoadSeriesBuilder(names)
    for row in grouped:
        builder.add(
            row["bucket"] + timedelta(minutes=15 * row["quarter"]),
            int(row["samples"]),
            float(row["aas"] or 0.0),
            {d: {name: row[f"part_{d}_{i}"] for i, name in enumerate(names[d])} for d in names},
            int(row["max_connections"]),
            None if row["refused"] is None else int(row["refused"]),
        )
    return builder.series(start, end, bucket_seconds, None if cpus is None else float(cpus))
