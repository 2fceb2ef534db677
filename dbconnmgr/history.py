"""Recorded samples: store them, prune them, find the peak hours. ORM only.

Samples go through :class:`dbconnmgr.models.ConnectionSample`, so they are written where the
project's database routers send the ``dbconnmgr`` app (``default`` without a router).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from dbconnmgr.app_settings import get_setting
from dbconnmgr.core.charts import HeatCell, Heatmap, LoadPoint, LoadSeries, Series, SeriesPoint
from dbconnmgr.core.figures import RECORDED_KEYS
from dbconnmgr.core.samples import PeakReport, Sample, histogram_percentile, hourly_peaks

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from dbconnmgr.models import ConnectionSample


#: Rows fetched per round trip when reading samples for the peak report.
_CHUNK = 5000


def record_sample(sample: Sample) -> ConnectionSample | None:
    """Store a reachable sample; unreachable samples are not stored (returns None).

    Raises:
        django.db.DatabaseError: the database that stores samples could not be written
            (tables missing: run ``manage.py migrate``).
    """
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

    ``RETENTION_DAYS = None`` keeps every sample (nothing is deleted).
    """
    from dbconnmgr.models import ConnectionSample

    cutoff = retention_cutoff(now)
    if cutoff is None:
        return 0
    deleted, _ = ConnectionSample.objects.filter(taken_at__lt=cutoff).delete()
    return deleted


def _last_days(using: str, days: int, now: datetime | None) -> QuerySet[ConnectionSample]:
    """The samples of ``using`` in the ``days`` days before ``now``, unordered."""
    from dbconnmgr.models import ConnectionSample

    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    end = now or timezone.now()
    return ConnectionSample.objects.filter(
        alias=using, taken_at__gte=end - timedelta(days=days), taken_at__lte=end
    ).order_by()


def peak_hours(using: str = "default", days: int = 7, *, now: datetime | None = None) -> PeakReport:
    """The busiest hours of the day for alias ``using`` over the last ``days`` days.

    Reads the samples recorded for ``using`` (``--action=monitor --record``); hours and
    days are in the current Django time zone (``TIME_ZONE``).

    Args:
        using: the monitored alias whose samples are read.
        days: how many days back from ``now``.
        now: the end of the period (default: now).
    """
    rows = (
        _last_days(using, days, now)
        .values_list("taken_at", "total_connections")
        .iterator(chunk_size=_CHUNK)
    )
    return hourly_peaks(rows, timezone.get_current_timezone())


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
    rows = ConnectionSample.objects.filter(
        alias=using, taken_at__gte=start, taken_at__lte=end
    ).order_by()
    if bucket_seconds == 60:
        rows = rows.annotate(
            bucket=TruncMinute("taken_at"), quarter=Value(0, output_field=IntegerField())
        )
    else:
        rows = rows.annotate(bucket=TruncHour("taken_at"))
        if bucket_seconds == 900:
            rows = rows.annotate(
                quarter=Cast(Floor(ExtractMinute("taken_at") / 15.0), IntegerField())
            )
        else:
            rows = rows.annotate(quarter=Value(0, output_field=IntegerField()))
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
    limits = thresholds()
    warning, critical = limits.get("UTILIZATION_WARNING"), limits.get("UTILIZATION_CRITICAL")
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

    The database groups the samples into a histogram (how many samples saw each connection
    count in each cell: a few thousand rows for any number of samples); the maximum and the
    percentile (nearest rank, as ``--action=peak`` computes it) are read from it here.
    Works on every database Django supports.
    """
    from django.db.models import Count
    from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

    histogram = (
        _last_days(using, days, now)
        .annotate(day=ExtractIsoWeekDay("taken_at"), hour=ExtractHour("taken_at"))
        .values_list("day", "hour", "total_connections")
        .annotate(samples=Count("*"))  # COUNT(*): the planner then hashes (3x faster)
    )
    cells: dict[tuple[int, int], dict[int, int]] = {}
    for day, hour, connections, samples in histogram:
        cells.setdefault((int(day), int(hour)), {})[int(connections)] = int(samples)
    return Heatmap(
        days=days,
        cells={
            key: HeatCell(
                max_connections=max(counts),
                p95_connections=histogram_percentile(counts, 0.95),
                samples=sum(counts.values()),
            )
            for key, counts in cells.items()
        },
    )


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

    Aggregated by the database: one row per bucket comes back, each part summed from the
    samples' recorded split (JSON key lookups, which every database Django supports). The
    applications and code labels charted are the largest of the period (ranked on a spread
    of its samples); the rest are ``other``, what the AAS leaves over the named parts.
    ``bucket_seconds``: 60, 900, 3600 or 86400, in the current Django time zone.
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
    points: dict[str, list[LoadPoint]] = {d: [] for d in dimensions}
    seen: dict[str, set[str]] = {d: set() for d in dimensions}
    for row in grouped:
        n = int(row["samples"])
        aas = float(row["aas"] or 0.0)
        begins = row["bucket"] + timedelta(minutes=15 * row["quarter"])
        refused = None if row["refused"] is None else int(row["refused"])
        for d in dimensions:
            parts = {}
            for i, name in enumerate(names[d]):
                total = row[f"part_{d}_{i}"]
                if total:
                    parts[name] = total / n
            rest = round(aas - sum(parts.values()), 6)
            if rest > 0.005:  # sessions of no named part (rounding noise aside)
                parts["other"] = rest
            seen[d].update(parts)
            points[d].append(
                LoadPoint(
                    start=begins,
                    samples=n,
                    aas=aas,
                    parts=parts,
                    max_connections=int(row["max_connections"]),
                    refused_connections=refused,
                )
            )
    cpus = thresholds().get("DATABASE_CPUS")
    return {
        d: LoadSeries(
            start=start,
            end=end,
            bucket_seconds=bucket_seconds,
            dimension=d,
            names=tuple(n for n in [*names[d], "other"] if n in seen[d]),
            points=tuple(points[d]),
            cpus=None if cpus is None else float(cpus),
        )
        for d in dimensions
    }
