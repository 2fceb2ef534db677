"""factory-boy factories for the app's models."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from factory.declarations import LazyAttribute, LazyFunction
from factory.django import DjangoModelFactory

from dbconnmgr.models import ConnectionSample


class ConnectionSampleFactory(DjangoModelFactory[ConnectionSample]):
    """A recorded sample; pass ``taken_at`` and ``total_connections`` to plant a history.

    ``ConnectionSampleFactory.create(taken_at=..., total_connections=...)``.
    """

    class Meta:
        model = ConnectionSample

    taken_at = LazyFunction(timezone.now)
    database_alias = "default"
    vendor = "postgresql"
    total_connections = 10
    active_sessions = LazyAttribute(lambda s: s.total_connections // 4)
    idle_in_transaction = 0
    waiting_connections = 0
    max_connections = 100
    usable_connections = 97
    usable_utilization_percent = LazyAttribute(
        lambda s: round(s.total_connections * 100.0 / s.usable_connections, 1)
    )
    by_state = LazyAttribute(
        lambda s: {"active": s.active_sessions, "idle": s.total_connections - s.active_sessions}
    )
    by_application = LazyAttribute(lambda s: {"web": s.total_connections})


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC time on day ``day`` of November 2026 (the tests' planted history)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)
