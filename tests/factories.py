"""factory-boy factories: the app's model, and the pure core's inputs (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from factory.base import Factory
from factory.declarations import LazyAttribute, LazyFunction, Sequence, SubFactory, Trait
from factory.django import DjangoModelFactory

from dbconnmgr.core.snapshot import Connection, ServerLimits, Snapshot
from dbconnmgr.core.termination import Actor, Candidate, Selection
from dbconnmgr.models import ConnectionSample


class ConnectionSampleFactory(DjangoModelFactory[ConnectionSample]):
    """A recorded sample; pass ``taken_at`` and ``total_connections`` to plant a history.

    ``ConnectionSampleFactory.create(taken_at=..., total_connections=...)``.
    """

    class Meta:
        model = ConnectionSample

    taken_at = LazyFunction(timezone.now)
    alias = "default"
    vendor = "postgresql"
    total_connections = 10
    active_connections = LazyAttribute(lambda s: s.total_connections // 4)
    idle_in_transaction_connections = 0
    waiting_connections = 0
    max_connections = 100
    usable_connections = 97
    utilization_percent = LazyAttribute(
        lambda s: round(s.total_connections * 100.0 / s.usable_connections, 1)
    )
    by_state = LazyAttribute(
        lambda s: {
            "active": s.active_connections,
            "idle": s.total_connections - s.active_connections,
        }
    )
    by_application = LazyAttribute(lambda s: {"web": s.total_connections})


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC time on day ``day`` of November 2026 (the tests' planted history)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


class ConnectionFactory(Factory[Connection]):
    """A client backend as a snapshot holds it: an idle, visible session by default.

    ``ConnectionFactory.build(state="active", application_name="web")``.
    """

    class Meta:
        model = Connection

    pid = Sequence(lambda n: 1000 + n)
    database = "app"
    user = "app"
    application_name = "web"
    client = "10.0.0.1"
    state = "idle"
    wait_event_type = None
    wait_event = None
    blocking_pids = ()
    query = "SELECT 1"
    visible = True
    is_superuser = False
    backend_seconds = 60.0
    transaction_seconds = None
    query_seconds = 1.0
    state_seconds = 1.0


class ServerLimitsFactory(Factory[ServerLimits]):
    """A PostgreSQL 15 with 20 slots, 3 reserved: 17 usable."""

    class Meta:
        model = ServerLimits

    version = "15.8"
    version_num = 150008
    max_connections = 20
    superuser_reserved_connections = 3
    reserved_connections = 0
    current_user = "app"
    current_database = "app"


READER_PID = 1


class SnapshotFactory(Factory[Snapshot]):
    """A snapshot read by pid :data:`READER_PID`, whose own (active) connection is added
    to ``connections`` as the server would show it.

    ``SnapshotFactory.build(connections=ConnectionFactory.build_batch(3))``.
    """

    class Meta:
        model = Snapshot

    alias = "default"
    vendor = "postgresql"
    taken_at = LazyFunction(lambda: dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC))
    limits = SubFactory(ServerLimitsFactory)
    own_pid = READER_PID
    visibility = "full"
    connections: Any = ()

    @classmethod
    def _create(cls, model_class: type[Snapshot], *args: Any, **kwargs: Any) -> Snapshot:
        reader = ConnectionFactory.build(
            pid=kwargs["own_pid"], state="active", application_name="dbconnmgr",
            query_seconds=0.0, transaction_seconds=0.0,
        )  # fmt: skip
        kwargs["connections"] = (reader, *kwargs["connections"])
        return model_class(*args, **kwargs)

    _build = _create


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
