"""Peak hours from a server's retained history: pure sweeps, no SQL, no I/O.

Some engines keep days of their own history (Amazon Redshift: sessions in
SYS_SESSION_HISTORY, WLM queue occupancy in STL_WLM_QUERY), so the busiest hours can be
found without recorded samples. A sweep over start and end times: at every instant, the
sessions open (or the query slots held) are the starts so far minus the ends so far; the
highest level reached within each clock hour is that hour's peak.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from dbconnmgr.core.samples import PeakReport

__all__ = ["QueueApex", "RetainedPeaks", "hour_floor", "hourly_levels", "queue_apex"]

HOUR = timedelta(hours=1)


def hour_floor(moment: datetime) -> datetime:
    """The start of ``moment``'s clock hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def hourly_levels(
    intervals: Iterable[tuple[datetime, datetime, int]],
    since: datetime,
    until: datetime,
) -> list[tuple[datetime, int]]:
    """For every clock hour from ``since``'s to ``until``'s, the highest sum of the weights
    of the intervals open at one instant within it.

    Args:
        intervals: ``(start, end, weight)``: a session (weight 1) or a query holding
            ``weight`` slots, from ``start`` until just before ``end``. Intervals are
            clipped to ``[since, until]``; an empty or inverted one counts nothing.
        since, until: the window (naive UTC, as Redshift's timestamps).

    Returns:
        ``(hour start, peak)`` for every hour of the window, zeros included, in order.
    """
    events: list[tuple[datetime, int]] = []
    for start, end, weight in intervals:
        start, end = max(start, since), min(end, until)
        if end <= start or weight <= 0:
            continue
        events.append((start, weight))
        events.append((end, -weight))
    # At one instant ends come first: a session that ends as another starts never overlaps it.
    events.sort(key=lambda event: (event[0], event[1]))
    hours: list[tuple[datetime, int]] = []
    bucket = hour_floor(since)
    last = hour_floor(until)
    level = 0
    peak = 0
    position = 0
    while bucket <= last:
        following = bucket + HOUR
        while position < len(events) and events[position][0] <= bucket:
            level += events[position][1]
            position += 1
        peak = level  # whatever is open as the hour begins
        while position < len(events) and events[position][0] < following:
            level += events[position][1]
            peak = max(peak, level)
            position += 1
        hours.append((bucket, peak))
        bucket = following
    return hours


@dataclass(frozen=True, slots=True)
class QueueApex:
    """The WLM apex of one queue in one clock hour (as wlm_apex_hourly reports it).

    Attributes:
        service_class: the queue's service class id.
        hour: the hour's start (naive UTC).
        max_slots: the most query slots its queries held at one instant in that hour.
        slots: the queue's configured slots (``num_query_tasks``; -1 automatic WLM;
            None when the queue is no longer configured).
    """

    service_class: int
    hour: datetime
    max_slots: int
    slots: int | None


def queue_apex(
    rows: Iterable[tuple[int, datetime, datetime, int]],
    slots: dict[int, int],
    since: datetime,
    until: datetime,
) -> list[QueueApex]:
    """Per queue and clock hour, the most slots held at once: ``wlm_apex_hourly.sql``'s
    figure, computed by a sweep instead of a one-second series.

    Args:
        rows: ``(service_class, service_class_start_time, service_class_end_time,
            slot_count)`` of STL_WLM_QUERY.
        slots: each queue's configured slots (STV_WLM_SERVICE_CLASS_CONFIG).
        since, until: the window.

    Returns:
        One entry per queue and hour with slots held (hours at zero are left out, as the
        script leaves them out), ordered by queue then hour.
    """
    per_queue: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for service_class, start, end, slot_count in rows:
        per_queue[service_class].append((start, end, slot_count))
    result = []
    for service_class in sorted(per_queue):
        for hour, peak in hourly_levels(per_queue[service_class], since, until):
            if peak:
                result.append(QueueApex(service_class, hour, peak, slots.get(service_class)))
    return result


class RetainedPeaks(NamedTuple):
    """Peaks from the server's own history (a backend's ``retained_peaks()``).

    Attributes:
        sessions: per hour of the day, the most sessions open at once, over the days kept
            (``samples`` of each hour: the days it was seen).
        wlm_apex: per queue and clock hour, the most query slots held at once (None when
            the reader may not read the queues).
        since, until: the window the history covered (aware, UTC).
        visibility: ``restricted`` when the reader saw only its own sessions.
    """

    sessions: PeakReport
    wlm_apex: list[QueueApex] | None
    since: datetime
    until: datetime
    visibility: str
