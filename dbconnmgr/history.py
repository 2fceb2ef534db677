"""Recorded samples: store them, prune them, find the peak hours. ORM only.

Samples go through :class:`dbconnmgr.models.ConnectionSample`, so they are written where the
project's database routers send the ``dbconnmgr`` app (``default`` without a router).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from dbconnmgr.app_settings import get_setting
from dbconnmgr.core.samples import PeakReport, Sample, hourly_peaks

if TYPE_CHECKING:
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
        total_connections=sample.total_connections or 0,
        active_connections=sample.active_connections or 0,
        idle_in_transaction_connections=by_state.get("idle in transaction", 0)
        + by_state.get("idle in transaction (aborted)", 0),
        waiting_connections=sample.waiting_connections or 0,
        max_connections=sample.max_connections or 0,
        usable_connections=sample.usable_connections or 0,
        utilization_percent=sample.utilization_percent or 0.0,
        by_state={state: n for state, n in by_state.items() if n},
        by_application=sample.by_application or {},
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


def peak_hours(using: str = "default", days: int = 7, *, now: datetime | None = None) -> PeakReport:
    """The busiest hours of the day for alias ``using`` over the last ``days`` days.

    Reads the samples recorded for ``using`` (``--action=monitor --record``); hours and
    days are in the current Django time zone (``TIME_ZONE``).

    Args:
        using: the monitored alias whose samples are read.
        days: how many days back from ``now``.
        now: the end of the period (default: now).
    """
    from dbconnmgr.models import ConnectionSample

    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    end = now or timezone.now()
    rows = (
        ConnectionSample.objects.filter(
            alias=using, taken_at__gte=end - timedelta(days=days), taken_at__lte=end
        )
        .order_by()
        .values_list("taken_at", "total_connections")
        .iterator(chunk_size=_CHUNK)
    )
    return hourly_peaks(rows, timezone.get_current_timezone())
