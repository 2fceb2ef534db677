"""factory-boy factories for the app's models."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from dbconnmgr.models import ConnectionSample


class ConnectionSampleFactory(factory.django.DjangoModelFactory):
    """A recorded sample; pass ``taken_at`` and ``total_connections`` to plant a history."""

    class Meta:
        model = ConnectionSample

    taken_at = factory.LazyFunction(timezone.now)
    database_alias = "default"
    vendor = "postgresql"
    total_connections = 10
    active_sessions = factory.LazyAttribute(lambda s: s.total_connections // 4)
    idle_in_transaction = 0
    waiting_connections = 0
    max_connections = 100
    usable_connections = 97
    usable_utilization_percent = factory.LazyAttribute(
        lambda s: round(s.total_connections * 100.0 / s.usable_connections, 1)
    )
    by_state = factory.LazyAttribute(
        lambda s: {"active": s.active_sessions, "idle": s.total_connections - s.active_sessions}
    )
    by_application = factory.LazyAttribute(lambda s: {"web": s.total_connections})


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC time on day ``day`` of November 2026 (the tests' planted history)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)
