"""factory-boy factories: the app's models, and the pure core's inputs (no database)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from factory.base import Factory
from factory.declarations import LazyAttribute, LazyFunction, Sequence, Trait
from factory.django import DjangoModelFactory

from dbconnmgr.core.termination import Actor, Candidate, Selection
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


# -- close-idle / force-close inputs (dbconnmgr.core.termination) -----------------------------
#: The server's clock at selection in the termination factories.
SELECTED_AT = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


class CandidateFactory(Factory[Candidate]):
    """A selected client backend: by default an ordinary role's session, idle for 400 s,
    that the actor may signal. ``CandidateFactory.build(superuser=True)`` is a superuser's
    session; ``can_signal=False`` one the actor's role may not signal."""

    class Meta:
        model = Candidate

    class Params:
        superuser = Trait(is_superuser=True, user="postgres")

    pid = Sequence(lambda n: 1000 + n)
    backend_start = SELECTED_AT - dt.timedelta(hours=1)
    user = "app"
    application_name = "web"
    database = "shop"
    client_addr = None
    state = "idle"
    state_seconds = 400.0
    is_superuser = False
    can_signal = True


class ActorFactory(Factory[Actor]):
    """Who acts: OS user ``alice`` as role ``ops``; ``superuser=True`` makes ``ops`` one."""

    class Meta:
        model = Actor

    class Params:
        superuser = Trait(is_superuser=True)

    os_user = "alice"
    db_role = "ops"
    is_superuser = False


class SelectionFactory(Factory[Selection]):
    """What the backend read: pass ``candidates=(...)`` (a tuple) and ``hidden=N``."""

    class Meta:
        model = Selection

    taken_at = SELECTED_AT
    own_pid = 1
    db_role = "ops"
    is_superuser = False
    database = "shop"
    candidates: tuple[Candidate, ...] = ()
    hidden = 0
