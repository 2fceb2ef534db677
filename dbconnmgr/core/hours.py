"""Recorded samples summarised per clock hour, and the reports built from those summaries.

An :class:`HourRow` holds everything the history reports need from the samples of one
alias in one hour, exactly: how many there were, the first and last, the highest total and
when it was first seen, the sums behind the averages and the histogram of totals behind
every percentile. Reports built from hour rows (:func:`peak_report`,
:func:`heatmap_cells`, :func:`hourly_points`), or from figures a database summed over many
hour rows (:class:`PeakBuilder`, :class:`HeatmapBuilder`), therefore equal the same
reports built from the samples themselves, at a cost that follows the hours of the window,
not its samples.

An :class:`HourLoad` does the same for the database load split of the samples (active
sessions summed per wait class, application and code label): :func:`hour_loads` sums them
from samples, :func:`hourly_load_series` draws the hourly or daily load charts from those
sums, the same charts as from the samples themselves.

Where the hour rows come from is the caller's business: the rollup that ``--action=monitor
--record`` maintains, samples aggregated by the database for hours not rolled up yet, or
another engine's retained history. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from dbconnmgr.core.charts import HeatCell, LoadSeries, LoadSeriesBuilder, SeriesPoint
from dbconnmgr.core.load import LOAD_DIMENSIONS, OTHER, ordered_classes
from dbconnmgr.core.samples import HourStats, PeakReport, histogram_percentile

__all__ = [
    "HOUR",
    "HeatmapBuilder",
    "HourLoad",
    "HourRow",
    "PeakBuilder",
    "aligned_hours",
    "grouped_hour_loads",
    "heatmap_cells",
    "hour_loads",
    "hour_rows",
    "hour_start",
    "hourly_load_series",
    "hourly_points",
    "merge_histogram",
    "peak_report",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HourRow:
    """The samples of one alias in one clock hour.

    Attributes:
        start: the hour's start (timezone-aware).
        samples: how many samples the hour holds (>= 1).
        first_at: the oldest sample's time.
        last_at: the newest sample's time.
        max_total: the highest ``total_connections``.
        max_at: the time of the first sample that saw ``max_total``.
        total_sum: the sum of ``total_connections`` (for the average).
        max_utilization: the highest ``utilization_percent``.
        utilization_sum: the sum of ``utilization_percent`` (for the average).
        histogram: ``{total_connections: samples}`` (for percentiles).
    """

    start: datetime
    samples: int
    first_at: datetime
    last_at: datetime
    max_total: int
    max_at: datetime
    total_sum: int
    max_utilization: float
    utilization_sum: float
    histogram: Mapping[int, int] = field(default_factory=dict)


def hour_rows(
    groups: Iterable[tuple[datetime, int, int, datetime, datetime, float, float]],
) -> list[HourRow]:
    """Hour rows from samples grouped by (hour, total) as a database returns them.

    Args:
        groups: ``(hour start, total_connections, samples, first taken_at, last taken_at,
            sum of utilization_percent, max of utilization_percent)`` per hour and total,
            in any order.
    """
    hours: dict[datetime, list[tuple[int, int, datetime, datetime, float, float]]] = {}
    for start, total, count, first, last, util_sum, util_max in groups:
        hours.setdefault(start, []).append(
            (int(total), int(count), first, last, float(util_sum), float(util_max))
        )
    rows = []
    for start, parts in sorted(hours.items()):
        top = max(parts, key=lambda p: p[0])
        rows.append(
            HourRow(
                start=start,
                samples=sum(p[1] for p in parts),
                first_at=min(p[2] for p in parts),
                last_at=max(p[3] for p in parts),
                max_total=top[0],
                max_at=top[2],
                total_sum=sum(p[0] * p[1] for p in parts),
                max_utilization=max(p[5] for p in parts),
                utilization_sum=sum(p[4] for p in parts),
                histogram={p[0]: p[1] for p in parts},
            )
        )
    return rows


def aligned_hours(tz: tzinfo, start: datetime, end: datetime) -> bool:
    """True when the UTC hours from ``start`` to ``end`` are whole hours in ``tz`` too: its
    UTC offset is a whole number of hours all along (not so in India, Nepal,
    Newfoundland...), so hour rows of UTC hours are hours of ``tz``.

    The offset is looked at once a day and at both ends: every zone keeps an offset for
    months at a time.
    """
    when = start
    while True:
        offset = when.astimezone(tz).utcoffset()
        if offset is not None and offset.total_seconds() % 3600:
            return False
        if when >= end:
            return True
        when = min(end, when + DAY)


def merge_histogram(into: dict[Any, int], histogram: Mapping[Any, int]) -> None:
    """Add the counts of ``histogram`` to ``into`` (``{value: how many}`` both)."""
    get = into.get
    for value, count in histogram.items():
        into[value] = get(value, 0) + count


class PeakBuilder:
    """Builds a :class:`~dbconnmgr.core.samples.PeakReport` from pieces of a history.

    Each piece is either an :class:`HourRow` (:meth:`add_row`) or figures a database
    computed over many hour rows at once (:meth:`add_hour_of_day`, :meth:`add_histogram`,
    :meth:`add_extent`, :meth:`add_peak`), so the report of a year costs what its hours
    cost and the memory kept is the 24 hours of the day, whatever the pieces.

    Args:
        tz: the time zone whose hours and days are reported; the hours of the rows must be
            whole hours in it (:func:`aligned_hours`).
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._samples: dict[int, int] = {}
        self._sums: dict[int, int] = {}
        self._histograms: dict[int, dict[int, int]] = {}
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._peak: tuple[int, datetime] | None = None

    def add_hour_of_day(self, hour: int, samples: int, total_sum: int) -> None:
        """Samples and the sum of their totals seen at ``hour`` (0-23) of the day."""
        self._samples[hour] = self._samples.get(hour, 0) + samples
        self._sums[hour] = self._sums.get(hour, 0) + total_sum

    def add_histogram(self, hour: int, histogram: Mapping[int, int]) -> None:
        """``{total: samples}`` seen at ``hour`` of the day."""
        merge_histogram(self._histograms.setdefault(hour, {}), histogram)

    def add_extent(self, first: datetime | None, last: datetime | None) -> None:
        """The oldest and the newest sample of a piece."""
        if first is not None and (self._first is None or first < self._first):
            self._first = first
        if last is not None and (self._last is None or last > self._last):
            self._last = last

    def add_peak(self, total: int, at: datetime) -> None:
        """The highest total of a piece and when it was first seen (ties: the earliest)."""
        if self._peak is None or (total, self._peak[1]) > (self._peak[0], at):
            self._peak = (total, at)

    def add_row(self, row: HourRow) -> None:
        """Every figure of one hour row."""
        hour = _local(row.start, self.tz).hour
        self.add_hour_of_day(hour, row.samples, row.total_sum)
        self.add_histogram(hour, row.histogram)
        self.add_extent(row.first_at, row.last_at)
        self.add_peak(row.max_total, row.max_at)

    def report(self) -> PeakReport:
        """The report of every piece added."""
        hours = []
        for hour, counts in sorted(self._histograms.items()):
            samples = self._samples[hour]
            hours.append(
                HourStats(
                    hour=hour,
                    samples=samples,
                    max=max(counts),
                    average=round(self._sums[hour] / samples, 1),
                    p95=histogram_percentile(counts, 0.95),
                )
            )
        peak_at = None if self._peak is None else _local(self._peak[1], self.tz)
        return PeakReport(
            samples=sum(self._samples.values()),
            first=None if self._first is None else _local(self._first, self.tz),
            last=None if self._last is None else _local(self._last, self.tz),
            hours=tuple(hours),
            peak_hour=max(hours, key=lambda h: (h.p95, h.max, h.average), default=None),
            peak_day=peak_at.date() if peak_at else None,
            peak_day_hour=peak_at.hour if peak_at else None,
            peak_connections=None if self._peak is None else self._peak[0],
            peak_at=peak_at,
        )


def peak_report(rows: Iterable[HourRow], tz: tzinfo) -> PeakReport:
    """:func:`~dbconnmgr.core.samples.hourly_peaks` of the samples behind ``rows``.

    Args:
        rows: hour rows whose hours are whole hours in ``tz`` (:func:`aligned_hours`), in
            any order; read once.
        tz: the time zone whose hours and days are reported.
    """
    builder = PeakBuilder(tz)
    for row in rows:
        builder.add_row(row)
    return builder.report()


class HeatmapBuilder:
    """Builds the heatmap's cells (ISO day of week, hour) from histograms of totals."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], dict[int, int]] = {}

    def add_histogram(self, day: int, hour: int, histogram: Mapping[int, int]) -> None:
        """``{total: samples}`` seen on ISO day ``day`` (1-7) at ``hour`` (0-23)."""
        merge_histogram(self._cells.setdefault((day, hour), {}), histogram)

    def cells(self) -> dict[tuple[int, int], HeatCell]:
        """Per cell: the maximum and the 95th percentile (nearest rank) of the totals, and
        the samples."""
        return {
            key: HeatCell(
                max_connections=max(counts),
                p95_connections=histogram_percentile(counts, 0.95),
                samples=sum(counts.values()),
            )
            for key, counts in self._cells.items()
            if counts
        }


def heatmap_cells(rows: Iterable[HourRow], tz: tzinfo) -> dict[tuple[int, int], HeatCell]:
    """Per (ISO day of week, hour) in ``tz``: the maximum and the 95th percentile (nearest
    rank) of the totals, and the samples, as the heatmap shows them."""
    builder = HeatmapBuilder()
    for row in rows:
        local = _local(row.start, tz)
        builder.add_histogram(local.isoweekday(), local.hour, row.histogram)
    return builder.cells()


def hourly_points(rows: Iterable[HourRow], tz: tzinfo) -> tuple[SeriesPoint, ...]:
    """One point per hour (oldest first): the highest and the average utilization, the
    highest total and the samples; ``start`` is the hour's start in ``tz``."""
    return tuple(
        SeriesPoint(
            start=_local(row.start, tz),
            max_utilization_percent=row.max_utilization,
            avg_utilization_percent=row.utilization_sum / row.samples,
            max_connections=row.max_total,
            samples=row.samples,
        )
        for row in sorted(rows, key=lambda r: r.start)
    )


def _local(when: datetime, tz: tzinfo) -> datetime:
    return when.astimezone(tz)


# -- the load split per hour ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HourLoad:
    """The database load of the samples of one alias in one hour, summed exactly.

    Attributes:
        start: the hour's start (timezone-aware).
        samples: how many samples the hour holds (those recorded without a split too).
        active_sum: the sum of their ``active_connections`` (the hour's AAS is this divided
            by ``samples``).
        max_total: the highest ``total_connections``.
        refused: ``refused_connections`` summed; None when no sample counted them.
        parts: ``{dimension: {name: active sessions summed over the samples}}`` for the
            dimensions of :data:`~dbconnmgr.core.load.LOAD_DIMENSIONS`; every name a sample
            carried is kept (``other`` included), so any ranking of a longer period is exact.
    """

    start: datetime
    samples: int
    active_sum: int
    max_total: int
    refused: int | None
    parts: Mapping[str, Mapping[str, int]]

    def sums(self) -> dict[str, Any]:
        """The sums as the rollup stores them (``ConnectionHour.load``): ``{"active": n,
        "refused": n or null, "wait_class": {...}, "application": {...}, "code": {...}}``."""
        return {
            "active": self.active_sum,
            "refused": self.refused,
            **{d: dict(self.parts.get(d, {})) for d in LOAD_DIMENSIONS},
        }

    @classmethod
    def from_sums(
        cls, start: datetime, samples: int, max_total: int, sums: Mapping[str, Any]
    ) -> HourLoad:
        """The hour :meth:`sums` wrote, with the figures the rollup keeps in columns."""
        refused = sums.get("refused")
        return cls(
            start=start,
            samples=int(samples),
            active_sum=int(sums.get("active") or 0),
            max_total=int(max_total),
            refused=None if refused is None else int(refused),
            parts={
                d: {str(n): int(c) for n, c in (sums.get(d) or {}).items()} for d in LOAD_DIMENSIONS
            },
        )


def hour_start(when: datetime, tz: tzinfo) -> datetime:
    """The start of ``when``'s hour in ``tz``, as a UTC time (so that the two hours of a
    clock change that read alike on the wall stay apart)."""
    local = when.astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def hour_loads(
    samples: Iterable[tuple[datetime, int, int, int | None, Mapping[str, Any] | None]],
    tz: tzinfo = UTC,
) -> list[HourLoad]:
    """The load of ``samples`` summed per hour of ``tz``, oldest hour first.

    Args:
        samples: ``(taken_at, active_connections, total_connections, refused_connections,
            load)`` per sample, in any order; ``load`` is the split as the sample recorded
            it (:meth:`~dbconnmgr.core.load.LoadSplit.as_dict`), None without one.
        tz: whose hours; the default, UTC, gives the rollup's hours.
    """
    hours: dict[datetime, list[Any]] = {}
    for taken_at, active, total, refused, load in samples:
        start = hour_start(taken_at, tz)
        acc = hours.get(start)
        if acc is None:  # samples, active, max total, refused, parts
            acc = hours[start] = [0, 0, 0, None, {d: {} for d in LOAD_DIMENSIONS}]
        acc[0] += 1
        acc[1] += int(active)
        acc[2] = max(acc[2], int(total))
        if refused is not None:
            acc[3] = (acc[3] or 0) + int(refused)
        if load:
            for dimension, into in acc[4].items():
                part = load.get(dimension)
                if part:
                    merge_histogram(into, part)
    return [
        HourLoad(
            start=start, samples=n, active_sum=active, max_total=top, refused=refused, parts=parts
        )
        for start, (n, active, top, refused, parts) in sorted(hours.items())
    ]


def grouped_hour_loads(
    groups: Iterable[tuple[datetime, int, int, int, int | None]],
    splits: Iterable[tuple[datetime, Mapping[str, Any] | None]],
) -> list[HourLoad]:
    """Hour loads (UTC hours) from figures a database grouped per UTC hour and the splits
    of the same samples, summed here: what :func:`hour_loads` gives, without sending every
    sample's figures when only some carry a split.

    Args:
        groups: ``(hour start, samples, sum of active_connections, highest
            total_connections, sum of refused_connections or None)`` per hour.
        splits: ``(taken_at, split)`` of the samples recorded with a split, any order.
    """
    parts: dict[datetime, dict[str, dict[str, int]]] = {}
    for taken_at, load in splits:
        if not load:
            continue
        start = hour_start(taken_at, UTC)
        into = parts.get(start)
        if into is None:
            into = parts[start] = {d: {} for d in LOAD_DIMENSIONS}
        for dimension, acc in into.items():
            part = load.get(dimension)
            if part:
                merge_histogram(acc, part)
    loads = []
    for start, samples, active, top, refused in groups:
        hour = start.astimezone(UTC)
        loads.append(
            HourLoad(start=hour, samples=int(samples), active_sum=int(active or 0),
                     max_total=int(top), refused=None if refused is None else int(refused),
                     parts=parts.get(hour, {d: {} for d in LOAD_DIMENSIONS}))
        )  # fmt: skip
    return sorted(loads, key=lambda load: load.start)


def _ranked(totals: Mapping[str, int], dimension: str, top: int) -> list[str]:
    named = {n: c for n, c in totals.items() if n != OTHER and c}
    if dimension == "wait_class":  # every class with sessions, in display order
        return list(ordered_classes(named))
    return [n for n, _ in sorted(named.items(), key=lambda item: (-item[1], item[0]))[:top]]


def hourly_load_series(
    hours: Iterable[HourLoad],
    dimensions: Iterable[str],
    *,
    tz: tzinfo,
    bucket_seconds: int,
    start: datetime,
    end: datetime,
    top: int,
    cpus: float | None = None,
) -> dict[str, LoadSeries]:
    """The load charts of ``hours`` per hour or per day of ``tz``, one per dimension.

    Each bucket's AAS is its summed active sessions over its samples, each part likewise;
    the parts charted are every wait class with sessions in the period (display order) and
    the ``top`` largest applications or code labels of the period (ties by name), the rest
    of the AAS as ``other`` (sessions beyond the top ones, and samples recorded without a
    split). The same charts as from the samples behind ``hours``.

    Args:
        hours: hour loads whose hours are whole hours in ``tz`` (:func:`aligned_hours`, or
            summed per hour of ``tz``), in any order; read once.
        dimensions: dimensions of :data:`~dbconnmgr.core.load.LOAD_DIMENSIONS`.
        tz: the time zone whose hours and days are the buckets.
        bucket_seconds: 3600 (hours) or 86400 (days).
        start: the period's start (kept on the series).
        end: the period's end.
        top: applications or code labels charted by name.
        cpus: ``DATABASE_CPUS``, drawn as a line (None: unset).

    Raises:
        ValueError: a bucket other than an hour or a day.
    """
    if bucket_seconds not in (3600, 86400):
        raise ValueError(f"bucket_seconds must be 3600 or 86400, got {bucket_seconds}")
    dims = tuple(dimensions)
    buckets: dict[datetime, list[Any]] = {}
    totals: dict[str, dict[str, int]] = {d: {} for d in dims}
    for hour in hours:
        # keyed by instant: the two hours of a clock change that read alike (1 a.m. twice)
        # are equal local datetimes to Python, but two buckets
        if bucket_seconds == 3600:
            key = hour.start.astimezone(UTC)
        else:  # the day's midnight in tz, as the database truncates to the day
            midnight = datetime.combine(_local(hour.start, tz).date(), time(), tzinfo=tz)
            key = midnight.astimezone(UTC)
        acc = buckets.get(key)
        if acc is None:  # samples, active, max total, refused, parts
            acc = buckets[key] = [0, 0, 0, None, {d: {} for d in dims}]
        acc[0] += hour.samples
        acc[1] += hour.active_sum
        acc[2] = max(acc[2], hour.max_total)
        if hour.refused is not None:
            acc[3] = (acc[3] or 0) + hour.refused
        for d in dims:
            part = hour.parts.get(d)
            if part:
                merge_histogram(acc[4][d], part)
                merge_histogram(totals[d], part)
    names = {d: _ranked(totals[d], d, top) for d in dims}
    builder = LoadSeriesBuilder(names)
    for key, (n, active, top_total, refused, bucket_parts) in sorted(buckets.items()):
        builder.add(_local(key, tz), n, active / n, bucket_parts, top_total, refused)
    return builder.series(start, end, bucket_seconds, cpus)
