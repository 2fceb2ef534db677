"""Every JSON document dbconnmgr writes, declared once.

Each top-level document carries ``"schema": "dbconnmgr.<name>/<version>"``; docs/json.md
lists every key with its meaning and unit, and tests/test_documents.py fails when a declared
key is missing from that page or a document built by a real run carries an undeclared key.

Names follow one vocabulary: ``alias`` is the Django alias, ``database`` the server's
database name; counts end in ``_connections`` and never include the connection dbconnmgr
read with; ``utilization_percent`` is of the usable slots; ``taken_at`` is when the server
was read. Pure: typing only, no Django.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

#: The version of every top-level document, by document name: it changes when a key is
#: removed or changes meaning (budget/2: ``server.reserved_connections`` became
#: ``server.reserved_slots``, so that ``reserved_connections`` is always the setting).
SCHEMA_VERSIONS: dict[str, int] = {
    "status": 1,
    "health": 1,
    "monitor": 1,
    "peak": 1,
    "budget": 2,
    "termination": 1,
}
#: The ``schema`` value of every top-level document, by document name.
SCHEMAS: dict[str, str] = {
    name: f"dbconnmgr.{name}/{version}" for name, version in SCHEMA_VERSIONS.items()
}


class SessionDoc(TypedDict):
    """A session as reports show it: never its query text or client address."""

    pid: int
    user: str | None
    application_name: str
    database: str | None
    state: str
    seconds: float | None


class GroupDoc(TypedDict):
    """Connections sharing one value (an application, a user...)."""

    name: str
    connections: int
    by_state: dict[str, int]


class ServerDoc(TypedDict):
    """The server's limits as the reading role sees them."""

    version: str
    version_num: int
    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: int
    usable_connections: int
    database_limits: dict[str, int]
    role_limits: dict[str, int]
    current_user: str
    current_user_is_superuser: bool


class MySQLDoc(TypedDict):
    """Figures only MariaDB / MySQL report, under the ``mysql`` key (docs/mysql.md)."""

    max_connections_setting: int
    extra_max_connections: int
    max_user_connections: int
    wait_timeout: int
    threads_connected: int | None
    threads_running: int | None
    max_used_connections: int | None
    aborted_connects: int | None
    connection_errors_max_connections: int | None
    aborted_connects_since_last_sample: NotRequired[int | None]
    connection_errors_max_connections_since_last_sample: NotRequired[int | None]


class StatusDoc(TypedDict):
    """``--action=status --format=json``."""

    schema: str
    alias: str
    database: str
    vendor: str
    taken_at: str
    server: ServerDoc
    total_connections: int
    free_connections: int
    limited_by: Literal["server", "database", "role"]
    utilization_percent: float
    max_connections_utilization_percent: float
    by_state: dict[str, int]
    by_application: list[GroupDoc]
    by_user: list[GroupDoc]
    by_database: list[GroupDoc]
    by_client: list[GroupDoc]
    longest_idle_in_transaction_seconds: float | None
    longest_idle_in_transaction: SessionDoc | None
    oldest_transaction_seconds: float | None
    oldest_transaction: SessionDoc | None
    longest_query_seconds: float | None
    oldest_connection_seconds: float | None
    longest_query: SessionDoc | None
    waiting_connections: int
    visibility: Literal["full", "restricted"]
    hidden_connections: int
    own_pid: int
    pgbouncer: NotRequired[PgBouncerDoc]
    mysql: NotRequired[MySQLDoc]


class ServerInfoDoc(TypedDict):
    """``server_info`` of the health document; every figure None when unreachable."""

    reachable: bool
    version: str | None
    total_connections: int | None
    max_connections: int | None
    superuser_reserved_connections: int | None
    reserved_connections: int | None
    usable_connections: int | None
    free_connections: int | None
    limited_by: Literal["server", "database", "role"] | None
    utilization_percent: float | None
    max_connections_utilization_percent: float | None
    active_connections: int | None
    idle_connections: int | None
    idle_in_transaction_connections: int | None
    idle_in_transaction_aborted_connections: int | None
    waiting_connections: int | None
    hidden_connections: int | None
    visibility: Literal["full", "restricted"] | None
    longest_idle_in_transaction_seconds: float | None
    oldest_transaction_seconds: float | None
    longest_query_seconds: float | None


class FindingDoc(TypedDict):
    """One check's result."""

    code: str
    subject: str | None
    severity: Literal["ok", "warning", "critical", "unknown"]
    message: str
    data: dict[str, Any]


class PgBouncerPoolDoc(TypedDict):
    """One PgBouncer pool: a (database, user) pair."""

    database: str
    user: str
    pool_mode: str
    pool_size: int
    reserve_pool_size: int
    active_client_connections: int
    waiting_client_connections: int
    active_server_connections: int
    idle_server_connections: int
    used_server_connections: int
    server_connections: int
    max_server_connections: int
    saturation_percent: float
    maxwait_seconds: float


class PgBouncerDoc(TypedDict):
    """PgBouncer in front of the alias: its console's figures (null when not read)."""

    reachable: bool
    console: str
    error: str | None
    version: str | None
    taken_at: str | None
    pool_mode: str | None
    max_client_conn: int | None
    default_pool_size: int | None
    reserve_pool_size: int | None
    max_db_connections: int | None
    max_user_connections: int | None
    client_connections: int | None
    waiting_client_connections: int | None
    maxwait_seconds: float | None
    server_connections: int | None
    max_server_connections: int | None
    pools: list[PgBouncerPoolDoc]
    by_application: list[GroupDoc]


class HealthDoc(TypedDict):
    """``check_connection_health()``, ``--action=health --format=json``, the endpoint."""

    schema: str
    alias: str
    database: str | None
    vendor: str | None
    status: Literal["ok", "warning", "critical", "unknown"]
    status_code: int
    summary: str
    taken_at: str | None
    findings: list[FindingDoc]
    server_info: ServerInfoDoc
    postgresql_info: NotRequired[ServerInfoDoc]
    pgbouncer: NotRequired[PgBouncerDoc]
    mysql: NotRequired[MySQLDoc]


class ChangeDoc(TypedDict):
    """How the counts moved since the previous reachable sample."""

    total_connections: int
    by_state: dict[str, int]
    by_application: dict[str, int]


class MonitorDoc(TypedDict):
    """One JSON Lines record of ``--action=monitor --format=json``."""

    schema: str
    sequence: int
    alias: str
    database: str | None
    taken_at: str
    reachable: bool
    total_connections: int | None
    usable_connections: int | None
    max_connections: int | None
    free_connections: int | None
    utilization_percent: float | None
    max_connections_utilization_percent: float | None
    by_state: dict[str, int] | None
    by_application: dict[str, int] | None
    active_connections: int | None
    aas: float | None
    aas_window_seconds: float
    aas_samples: int
    waiting_connections: int | None
    longest_idle_in_transaction: SessionDoc | None
    refused_connections: int | None
    mysql: NotRequired[MySQLDoc]
    change: ChangeDoc | None
    error: str | None
    unreachable_since: str | None
    recovered_from: str | None


class HourDoc(TypedDict):
    """Total connections in one hour of the day, over every recorded day."""

    hour: int
    samples: int
    max: int
    average: float
    p95: int


class PeakDoc(TypedDict):
    """``--action=peak --format=json``."""

    schema: str
    alias: str
    days: int
    time_zone: str
    samples: int
    first: str | None
    last: str | None
    hours: list[HourDoc]
    peak_hour: int | None
    peak_day: str | None
    peak_day_hour: int | None
    peak_connections: int | None
    peak_at: str | None


class BudgetServerDoc(TypedDict):
    """The server's slots as the budget sees them."""

    version: str
    max_connections: int
    reserved_slots: int
    usable_connections: int


class BudgetServiceDoc(TypedDict):
    """One service's line of the budget."""

    name: str
    instances: int
    processes: int
    threads: int
    pool_max_size: int | None
    connections: int
    safe_pool_max_size: int


class BudgetDoc(TypedDict):
    """``--action=budget --format=json``."""

    schema: str
    alias: str
    database: str
    taken_at: str
    server: BudgetServerDoc
    usable_connections: int
    usable_source: str
    total_connections: int
    settings_pool_max_size: int | None
    services: list[BudgetServiceDoc]
    headroom: int
    safety: float
    capacity: int
    demand: int
    demand_with_headroom: int
    spare: int
    fits: bool
    safe_pool_max_size: int
    through_pgbouncer: list[str] | None


class ActorDoc(TypedDict):
    """Who ran a terminating action."""

    os_user: str
    db_role: str
    superuser: bool
    requested_by: str | None


class CriteriaDoc(TypedDict):
    """What a terminating action selects (None: any)."""

    states: list[str] | None
    older_than_seconds: float | None
    application_name: str | None
    user: str | None
    database: str | None
    current_database_only: bool
    current_user_only: bool
    include_superusers: bool
    signal: str
    pids: list[int] | None


class SelectedDoc(TypedDict):
    """One selected session and what happened to it."""

    pid: int
    user: str | None
    application_name: str
    database: str | None
    client: str | None
    state: str | None
    state_seconds: float | None
    superuser: bool
    outcome: str
    reason: str


class NotTerminatedDoc(TypedDict):
    """A selected session that was not terminated, and why."""

    pid: int
    outcome: str
    reason: str


class LocalCloseDoc(TypedDict):
    """What force-close closed in its own process first."""

    connection_closed: bool
    pool_closed: bool
    pool_current_size: int | None
    backend_pids: list[int]


class TerminationDoc(TypedDict):
    """``--action=close-idle`` and ``--action=force-close`` with ``--format=json``."""

    schema: str
    action: str
    alias: str
    database: str
    taken_at: str
    dry_run: bool
    executed: bool
    cancelled: bool
    performed_by: ActorDoc
    criteria: CriteriaDoc
    counts: dict[str, int]
    selected: list[SelectedDoc]
    terminated: list[int]
    queries_cancelled: list[int]
    not_terminated: list[NotTerminatedDoc]
    hidden_connections: int
    findings: list[str]
    local: LocalCloseDoc | None


#: Every top-level document by name (the ``<name>`` of its schema).
DOCUMENTS: dict[str, type] = {
    "status": StatusDoc,
    "health": HealthDoc,
    "monitor": MonitorDoc,
    "peak": PeakDoc,
    "budget": BudgetDoc,
    "termination": TerminationDoc,
}
