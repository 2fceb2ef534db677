"""PostgreSQL's rows, by name: the columns of each statement of :mod:`.sql` and the common
model's values built from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from dbconnmgr.core.snapshot import Connection, ServerLimits
from dbconnmgr.core.termination import Candidate, Selection


class LimitsRow(NamedTuple):
    """The one row of ``LIMITS_SQL``; the four maps are JSON text (None: empty)."""

    taken_at: datetime
    own_pid: int
    version: str
    version_num: int
    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: int
    current_user: str
    is_superuser: bool
    current_database: str
    reader_sees_all: bool
    database_limits: str | None
    role_limits: str | None
    database_names: str | None
    role_names: str | None


def server_limits(row: LimitsRow) -> ServerLimits:
    """The limits as the reading role sees them."""
    return ServerLimits(
        version=row.version,
        version_num=row.version_num,
        max_connections=row.max_connections,
        superuser_reserved_connections=row.superuser_reserved_connections,
        reserved_connections=row.reserved_connections,
        database_limits=json.loads(row.database_limits) if row.database_limits else {},
        role_limits=json.loads(row.role_limits) if row.role_limits else {},
        current_user=row.current_user,
        is_superuser=row.is_superuser,
        current_database=row.current_database,
    )


class ActivityColumns(NamedTuple):
    """``ACTIVITY_SQL``'s rows as columns (one tuple per column, one item per session)."""

    pid: tuple[int, ...]
    datid: tuple[int, ...]
    usesysid: tuple[int, ...]
    application_name: tuple[str, ...]
    client: tuple[str, ...]
    state: tuple[str, ...]
    wait_event_type: tuple[str | None, ...]
    wait_event: tuple[str | None, ...]
    blocking_pids: tuple[Sequence[int], ...]
    query: tuple[str | None, ...]
    visible: tuple[bool, ...]
    backend_seconds: tuple[float | None, ...]
    transaction_seconds: tuple[float | None, ...]
    query_seconds: tuple[float | None, ...]
    state_seconds: tuple[float | None, ...]


def connections(
    rows: Sequence[Sequence[Any]], db_names_json: str | None, role_names_json: str | None
) -> tuple[Connection, ...]:
    """Build Connection tuples column-wise, so names are looked up by C-level map/zip."""
    if not rows:
        return ()
    databases = {int(oid): name for oid, name in json.loads(db_names_json or "{}").items()}
    roles = json.loads(role_names_json or "{}")
    users = {int(oid): name for oid, (name, _) in roles.items()}
    superusers = {int(oid) for oid, (_, is_super) in roles.items() if is_super}
    c = ActivityColumns._make(zip(*rows, strict=True))
    columns = zip(
        c.pid, map(databases.get, c.datid), map(users.get, c.usesysid), c.application_name,
        c.client, c.state, c.wait_event_type, c.wait_event, c.blocking_pids, c.query,
        c.visible, map(superusers.__contains__, c.usesysid),
        c.backend_seconds, c.transaction_seconds, c.query_seconds, c.state_seconds,
        strict=True,
    )  # fmt: skip
    return tuple(map(Connection._make, columns))


class SelectionRow(NamedTuple):
    """A row of ``SELECT_FOR_TERMINATION_SQL``: the reader's facts, then one candidate
    (all None when nothing matched: the LEFT JOIN still returns the reader's row)."""

    taken_at: datetime
    own_pid: int
    current_user: str
    is_superuser: bool
    current_database: str
    hidden: int
    pid: int | None
    backend_start: datetime
    user: str | None
    application_name: str | None
    database: str | None
    client_addr: str | None
    state: str
    state_seconds: float | None
    target_is_superuser: bool
    can_signal: bool
    state_change: datetime | None


def selection(rows: Sequence[Sequence[Any]]) -> Selection:
    """The :class:`Selection` of ``SELECT_FOR_TERMINATION_SQL``'s rows."""
    named = [SelectionRow._make(row) for row in rows]
    first = named[0]
    candidates = tuple(
        Candidate(
            pid=row.pid,
            backend_start=row.backend_start,
            user=row.user,
            application_name=row.application_name or "",
            database=row.database,
            client_addr=row.client_addr,
            state=row.state,
            state_seconds=row.state_seconds,
            is_superuser=row.target_is_superuser,
            can_signal=row.can_signal,
            state_change=row.state_change,
        )
        for row in named
        if row.pid is not None
    )
    return Selection(
        taken_at=first.taken_at,
        own_pid=first.own_pid,
        db_role=first.current_user,
        is_superuser=first.is_superuser,
        database=first.current_database,
        candidates=candidates,
        hidden=first.hidden,
    )
