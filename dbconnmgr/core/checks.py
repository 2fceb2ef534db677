"""The health checks, each declared once in :data:`CHECKS`.

A :class:`Check` names its finding code, what it judges (a server snapshot, a server that
could not be read, PgBouncer's console, a console that could not be read), the function
that judges it, the THRESHOLDS keys it reads and the engine capability it needs. Which
codes a report speaks for (:attr:`dbconnmgr.core.health.Report.evaluated_codes`, what lets
an alert resolve) is derived from here. Pure: no I/O, no Django.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from dbconnmgr.core.findings import Finding, FindingCode, Severity
from dbconnmgr.core.pooler import (
    PoolerSnapshot,
    PoolerUnavailable,
    maxwait_finding,
    pooler_unavailable_finding,
    saturation_findings,
    server_connections_finding,
    waiting_finding,
)
from dbconnmgr.core.server_checks import (
    SESSIONS_LISTED,
    idle_in_transaction_finding,
    idle_ratio_finding,
    limit_utilization_findings,
    lock_waits_finding,
    long_query_finding,
    long_transaction_finding,
    refused_finding,
    session_brief,
    utilization_finding,
    visibility_finding,
)
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.core.thresholds import Thresholds
from dbconnmgr.exceptions import ProblemKind, ServerUnavailable

__all__ = [
    "CHECKS",
    "FAILURE_CODES",
    "FINDING_CODES",
    "POOLER_CODES",
    "POOLER_FAILURE_CODES",
    "SESSIONS_LISTED",
    "SNAPSHOT_CODES",
    "Check",
    "Inputs",
    "Judges",
    "run_checks",
    "session_brief",
]

#: What a check judges: ``snapshot`` (the server was read), ``failure`` (it could not be:
#: :class:`~dbconnmgr.exceptions.ServerUnavailable`), ``pooler`` (PgBouncer's console was
#: read), ``pooler_failure`` (it could not be).
Judges = Literal["snapshot", "failure", "pooler", "pooler_failure"]


@dataclass(frozen=True)
class Inputs:
    """Everything a check may judge, for one alias at one moment.

    Attributes:
        thresholds: complete thresholds.
        snapshot: the server's snapshot; None when it could not be read.
        problem: why the server could not be read; None when it was.
        refused_connections: attempts the server refused since the previous sample (engines
            that count them; None without a previous sample).
        refused_full: of those, the ones refused because the server was full.
        pooler: PgBouncer's console, why it could not be read, or None without PgBouncer.
    """

    thresholds: Thresholds
    snapshot: Snapshot | None = None
    problem: ServerUnavailable | None = None
    refused_connections: int | None = None
    refused_full: int | None = None
    pooler: PoolerSnapshot | PoolerUnavailable | None = None


@dataclass(frozen=True)
class Check:
    """One health check.

    Attributes:
        code: the code of its findings.
        judges: what it judges (:data:`Judges`).
        run: the findings it makes of the inputs (several when the code has subjects; none
            when it does not apply).
        thresholds: the THRESHOLDS keys it reads.
        capability: the :class:`~dbconnmgr.core.capabilities.Capabilities` attribute an
            engine must declare for the check to say anything (None: every engine).
    """

    code: FindingCode
    judges: Judges
    run: Callable[[Inputs], list[Finding]]
    thresholds: tuple[str, ...] = ()
    capability: str | None = None

    @property
    def needs_snapshot(self) -> bool:
        """True when the check judges something that was read (server or console)."""
        return self.judges in ("snapshot", "pooler")


# -- the declaration --------------------------------------------------------------------------
def _on_snapshot(
    check: Callable[[Snapshot, Thresholds], Finding | list[Finding]],
) -> Callable[[Inputs], list[Finding]]:
    def run(inputs: Inputs) -> list[Finding]:
        if inputs.snapshot is None:
            return []
        found = check(inputs.snapshot, inputs.thresholds)
        return found if isinstance(found, list) else [found]

    return run


def _refused_check(inputs: Inputs) -> list[Finding]:
    snapshot = inputs.snapshot
    if snapshot is None or snapshot.counters.refused not in snapshot.extras:
        return []  # the engine counts no refused connections
    return [refused_finding(snapshot, inputs.refused_connections, inputs.refused_full)]


def _visibility_check(inputs: Inputs) -> list[Finding]:
    return [] if inputs.snapshot is None else [visibility_finding(inputs.snapshot)]


#: The kinds of :class:`~dbconnmgr.exceptions.ServerUnavailable` each failure check
#: reports, and its severity; ``server_error`` (no kinds) takes every kind no other one names.
_FAILURE_KINDS: dict[FindingCode, tuple[tuple[ProblemKind, ...], Severity]] = {
    # the application cannot get a connection either
    "server_full": (("full", "reserved"), Severity.CRITICAL),
    "server_unreachable": (("unreachable", "timeout"), Severity.CRITICAL),
    # the check's own credentials or setup failed: that says nothing about the slots
    "authentication_failed": (("auth",), Severity.UNKNOWN),
    "configuration_error": (("setup",), Severity.UNKNOWN),
    "server_error": ((), Severity.UNKNOWN),
}
_NAMED_KINDS = frozenset(kind for kinds, _ in _FAILURE_KINDS.values() for kind in kinds)


def _failure(code: FindingCode) -> Callable[[Inputs], list[Finding]]:
    kinds, severity = _FAILURE_KINDS[code]

    def run(inputs: Inputs) -> list[Finding]:
        exc = inputs.problem
        if exc is None:
            return []
        matches = exc.kind in kinds if kinds else exc.kind not in _NAMED_KINDS
        if not matches:
            return []
        return [Finding(code, severity, str(exc), {"kind": exc.kind, "detail": exc.detail})]

    return run


def _pooler_read(inputs: Inputs) -> PoolerSnapshot | None:
    return inputs.pooler if isinstance(inputs.pooler, PoolerSnapshot) else None


def _pgbouncer_waiting(inputs: Inputs) -> list[Finding]:
    pooler = _pooler_read(inputs)
    return [] if pooler is None else [waiting_finding(pooler, inputs.thresholds)]


def _pgbouncer_maxwait(inputs: Inputs) -> list[Finding]:
    pooler = _pooler_read(inputs)
    return [] if pooler is None else [maxwait_finding(pooler, inputs.thresholds)]


def _pgbouncer_saturation(inputs: Inputs) -> list[Finding]:
    pooler = _pooler_read(inputs)
    return [] if pooler is None else saturation_findings(pooler, inputs.thresholds)


def _pgbouncer_server_connections(inputs: Inputs) -> list[Finding]:
    pooler = _pooler_read(inputs)
    if pooler is None:
        return []
    usable = inputs.snapshot.limits.usable_connections if inputs.snapshot else None
    return [server_connections_finding(pooler, usable)]


def _pgbouncer_unavailable(inputs: Inputs) -> list[Finding]:
    if isinstance(inputs.pooler, PoolerUnavailable):
        return [pooler_unavailable_finding(inputs.pooler)]
    return []


def _pairs(*prefixes: str) -> tuple[str, ...]:
    return tuple(f"{p}_{level}" for p in prefixes for level in ("WARNING", "CRITICAL"))


_AGE_KEYS = ("EXEMPT_APPLICATIONS",)

#: Every check, in the order its findings are listed at equal severity.
CHECKS: tuple[Check, ...] = (
    Check(
        "utilization",
        "snapshot",
        _on_snapshot(utilization_finding),
        _pairs("UTILIZATION", "CONNECTIONS", "FREE_SLOTS"),
    ),
    Check(
        "database_utilization",
        "snapshot",
        _on_snapshot(lambda s, t: limit_utilization_findings(s, t, "database")),
        _pairs("UTILIZATION"),
    ),
    Check(
        "role_utilization",
        "snapshot",
        _on_snapshot(lambda s, t: limit_utilization_findings(s, t, "role")),
        _pairs("UTILIZATION"),
    ),
    Check(
        "idle_ratio",
        "snapshot",
        _on_snapshot(idle_ratio_finding),
        (*_pairs("IDLE_RATIO"), "IDLE_RATIO_MIN_CONNECTIONS"),
    ),
    Check(
        "idle_in_transaction",
        "snapshot",
        _on_snapshot(idle_in_transaction_finding),
        (*_pairs("IDLE_IN_TRANSACTION"), *_AGE_KEYS),
    ),
    Check(
        "long_transaction",
        "snapshot",
        _on_snapshot(long_transaction_finding),
        (*_pairs("TRANSACTION_AGE"), *_AGE_KEYS),
    ),
    Check(
        "long_query",
        "snapshot",
        _on_snapshot(long_query_finding),
        (*_pairs("QUERY_AGE"), *_AGE_KEYS),
    ),
    Check("lock_waits", "snapshot", _on_snapshot(lock_waits_finding), _pairs("LOCK_WAIT")),
    Check("visibility", "snapshot", _visibility_check),
    Check(
        "refused_connections",
        "snapshot",
        _refused_check,
        capability="counts_refused_connections",
    ),
    Check("server_full", "failure", _failure("server_full")),
    Check("server_unreachable", "failure", _failure("server_unreachable")),
    Check("authentication_failed", "failure", _failure("authentication_failed")),
    Check("configuration_error", "failure", _failure("configuration_error")),
    Check("server_error", "failure", _failure("server_error")),
    Check("pgbouncer_waiting", "pooler", _pgbouncer_waiting, _pairs("PGBOUNCER_WAITING")),
    Check("pgbouncer_maxwait", "pooler", _pgbouncer_maxwait, _pairs("PGBOUNCER_MAXWAIT")),
    Check(
        "pgbouncer_saturation",
        "pooler",
        _pgbouncer_saturation,
        _pairs("PGBOUNCER_SATURATION"),
    ),
    Check("pgbouncer_server_connections", "pooler", _pgbouncer_server_connections),
    Check("pgbouncer_unavailable", "pooler_failure", _pgbouncer_unavailable),
)


def _codes(*judges: Judges) -> frozenset[FindingCode]:
    return frozenset(c.code for c in CHECKS if c.judges in judges)


#: Codes of the checks judging a server snapshot.
SNAPSHOT_CODES = _codes("snapshot")
#: Codes of the checks judging a server that could not be read.
FAILURE_CODES = _codes("failure")
#: Codes of the checks judging PgBouncer's console.
POOLER_CODES = _codes("pooler")
#: Codes of the checks judging a PgBouncer console that could not be read.
POOLER_FAILURE_CODES = _codes("pooler_failure")
#: Every finding code (:data:`~dbconnmgr.core.findings.FindingCode`), in declaration order.
FINDING_CODES: tuple[FindingCode, ...] = get_args(FindingCode)


def run_checks(inputs: Inputs, judges: Iterable[Judges]) -> list[Finding]:
    """The findings of every declared check judging one of ``judges``, in declared order."""
    wanted = set(judges)
    return [finding for check in CHECKS if check.judges in wanted for finding in check.run(inputs)]
