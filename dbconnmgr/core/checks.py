"""The health checks, each declared once in :data:`CHECKS`.

A :class:`Check` names its finding code, what it judges (a server snapshot, a server that
could not be read, PgBouncer's console, a console that could not be read), the function
that judges it, the THRESHOLDS keys it reads and the engine capability it needs. Which
codes a report speaks for (:attr:`dbconnmgr.core.health.Report.evaluated_codes`, what lets
an alert resolve) is derived from here. Pure: no I/O, no Django.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

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
from dbconnmgr.core.snapshot import REFUSED_COUNTER, Connection, Snapshot
from dbconnmgr.core.thresholds import (
    Thresholds,
    _fmt,
    level,
    level_low,
    limits_text,
)
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
    "session_brief",
]

#: What a check judges: ``snapshot`` (the server was read), ``failure`` (it could not be:
#: :class:`~dbconnmgr.exceptions.ServerUnavailable`), ``pooler`` (PgBouncer's console was
#: read), ``pooler_failure`` (it could not be).
Judges = Literal["snapshot", "failure", "pooler", "pooler_failure"]

#: Sessions listed per finding in ``data["sessions"]``.
SESSIONS_LISTED = 10


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


def _utilization(snapshot: Snapshot, t: Thresholds) -> Finding:
    limits = snapshot.limits
    binding = snapshot.binding_limit()
    total, usable = binding.connections, binding.limit
    free = binding.free
    percent = binding.percent
    slots = {
        "server": "usable slots",
        "database": f"the connection limit of database {snapshot.database}",
        "role": f"the connection limit of role {limits.current_user}",
    }[binding.scope]
    used = f"{total} of {usable} {slots} in use ({percent}%)"
    warn_pct, crit_pct = t.utilization_warning, t.utilization_critical
    rules = [
        (
            "percent",
            level(percent, warn_pct, crit_pct),
            limits_text("at", warn_pct, crit_pct, "%"),
            warn_pct,
            crit_pct,
        ),
        (
            "count",
            level(snapshot.total_connections, t.connections_warning, t.connections_critical),
            limits_text("at", t.connections_warning, t.connections_critical, " connections"),
            t.connections_warning,
            t.connections_critical,
        ),
        (
            "free",
            level_low(free, t.free_slots_warning, t.free_slots_critical),
            limits_text("at", t.free_slots_warning, t.free_slots_critical, " free"),
            t.free_slots_warning,
            t.free_slots_critical,
        ),
    ]
    configured = [r for r in rules if r[3] is not None or r[4] is not None] or rules[:1]
    severity = Severity.worst(r[1] for r in configured)
    # Name every rule that reached the worst severity (all of them when ok).
    triggered = [r for r in configured if r[1] is severity]
    rule, _, _, warning, critical = triggered[0]
    said = "; ".join(r[2] for r in triggered if r[2])
    message = f"{used}; {said}" if said else used
    if severity is not Severity.OK and any(r[0] == "free" for r in triggered):
        message = f"only {max(free, 0)} usable slot(s) left: {message}"
    return Finding(
        "utilization",
        severity,
        message,
        {
            "total_connections": snapshot.total_connections,
            "usable_connections": limits.usable_connections,
            "max_connections": limits.max_connections,
            "free_connections": free,
            "utilization_percent": percent,
            "limited_by": binding.scope,
            "rule": rule,
            "rules": [r[0] for r in triggered],
            "warning": warning,
            "critical": critical,
        },
    )


def _limit_utilization(snapshot: Snapshot, t: Thresholds, scope: str) -> list[Finding]:
    """CONNECTION LIMIT of databases (``scope="database"``) or roles (``"role"``), against
    the percentage thresholds.

    PostgreSQL does not apply these limits to superusers but counts their sessions, so the
    count is every client backend of the database (or role).
    """
    findings: list[Finding] = []
    warn, crit = t.utilization_warning, t.utilization_critical
    caps = snapshot.limits.database_limits if scope == "database" else snapshot.limits.role_limits
    key: Callable[[Connection], str | None] = _database_of if scope == "database" else _user_of
    code: FindingCode = "database_utilization" if scope == "database" else "role_utilization"
    for name, cap in sorted(caps.items()):
        used = sum(1 for c in snapshot.others() if key(c) == name)
        if cap <= 0 or used == 0:
            continue
        percent = round(used * 100.0 / cap, 1)
        severity = level(percent, warn, crit)
        findings.append(
            Finding(
                code,
                severity,
                f"{scope} {name}: {used} of its {cap} connections in use ({percent}%); "
                + limits_text("at", warn, crit, "%"),
                {
                    scope: name,
                    "connections": used,
                    "limit": cap,
                    "utilization_percent": percent,
                    "warning": warn,
                    "critical": crit,
                },
                subject=name,
            )
        )
    return findings


def _database_of(conn: Connection) -> str | None:
    return conn.database


def _user_of(conn: Connection) -> str | None:
    return conn.user


def _idle_ratio(snapshot: Snapshot, t: Thresholds) -> Finding:
    others = snapshot.others()
    idle = sum(1 for c in others if c.state == "idle")
    total = len(others)
    minimum = t.idle_ratio_min_connections or 0
    percent = round(idle * 100.0 / total, 1) if total else 0.0
    warn, crit = t.idle_ratio_warning, t.idle_ratio_critical
    data = {
        "idle_connections": idle,
        "connections": total,
        "idle_percent": percent,
        "min_connections": minimum,
        "warning": warn,
        "critical": crit,
    }
    if total < minimum:
        return Finding(
            "idle_ratio",
            Severity.OK,
            f"{idle} of {total} connections idle; not judged below {minimum} connections",
            data,
        )
    severity = level(percent, warn, crit)
    return Finding(
        "idle_ratio",
        severity,
        f"{idle} of {total} connections idle ({percent}%); "
        + limits_text("above", warn, crit, "%"),
        data,
    )


def _exempt(conn: Connection, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(conn.application_name, p) for p in patterns)


def session_brief(conn: Connection, seconds: float | None) -> dict[str, Any]:
    """A session as findings and JSON reports show it: never its query text or client address."""
    return {
        "pid": conn.pid,
        "user": conn.user,
        "application_name": conn.application_name,
        "database": conn.database,
        "state": conn.state,
        "seconds": None if seconds is None else round(seconds, 1),
    }


def _age_finding(
    code: FindingCode,
    what: str,
    snapshot: Snapshot,
    t: Thresholds,
    prefix: str,
    candidates: Iterable[Connection],
    age_of: Callable[[Connection], float | None],
    ok_text: str,
) -> Finding:
    warn, crit = t.pair(prefix)
    exempt = t.exempt_applications
    aged = sorted(
        (
            (age, conn)
            for conn in candidates
            if (age := age_of(conn)) is not None and not _exempt(conn, exempt)
        ),
        key=lambda item: -item[0],
    )
    longest = aged[0][0] if aged else 0.0
    severity = level(longest, warn, crit) if aged else Severity.OK
    threshold = crit if severity is Severity.CRITICAL else warn
    over = [(a, c) for a, c in aged if threshold is not None and a >= threshold]
    limits = limits_text("after", warn, crit, "s")
    if severity is Severity.OK:
        message = f"{ok_text}; {limits}" if limits else f"{ok_text} (thresholds off)"
    else:
        top = over[0][1]
        limit = longest if threshold is None else threshold  # not OK: a threshold was met
        message = (
            f"{len(over)} {what} longer than {_fmt(limit)}s, the longest "
            f"{longest:.0f}s (pid {top.pid}, {top.application_name or '(none)'}); {limits}"
        )
    return Finding(
        code,
        severity,
        message,
        {
            "count": len(over),
            "longest_seconds": round(longest, 1) if aged else None,
            "sessions": [session_brief(c, a) for a, c in over[:SESSIONS_LISTED]],
            "warning": warn,
            "critical": crit,
            "exempt_applications": list(exempt),
        },
    )


def _idle_in_transaction(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "idle_in_transaction",
        "session(s) idle in transaction",
        snapshot,
        t,
        "IDLE_IN_TRANSACTION",
        (c for c in snapshot.others() if c.is_idle_in_transaction),
        lambda c: c.state_seconds,
        "no session idle in transaction too long",
    )


def _long_transaction(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "long_transaction",
        "transaction(s) open",
        snapshot,
        t,
        "TRANSACTION_AGE",
        snapshot.others(),
        lambda c: c.transaction_seconds,
        "no transaction open too long",
    )


def _long_query(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "long_query",
        "query(ies) running",
        snapshot,
        t,
        "QUERY_AGE",
        (c for c in snapshot.others() if c.state == "active"),
        lambda c: c.query_seconds,
        "no query running too long",
    )


def _lock_waits(snapshot: Snapshot, t: Thresholds) -> Finding:
    warn, crit = t.lock_wait_warning, t.lock_wait_critical
    by_pid = {c.pid: c for c in snapshot.connections}
    waiting = sorted(
        (c for c in snapshot.others() if c.is_waiting_on_lock),
        key=lambda c: -(c.query_seconds or c.state_seconds or 0.0),
    )
    sessions = []
    blockers: dict[int, str] = {}
    longest = 0.0
    for conn in waiting:
        # A waiting backend is active: the time since its statement started bounds the wait.
        seconds = conn.query_seconds if conn.query_seconds is not None else conn.state_seconds
        longest = max(longest, seconds or 0.0)
        blocked_by = []
        for pid in conn.blocking_pids:
            blocker = by_pid.get(pid)
            app = blocker.application_name if blocker and blocker.visible else None
            blockers[pid] = "(unknown)" if app is None else (app or "(none)")
            blocked_by.append(
                {
                    "pid": pid,
                    "application_name": app,
                    "user": blocker.user if blocker else None,
                    "state": blocker.state if blocker else None,
                }
            )
        entry = session_brief(conn, seconds)
        entry["blocked_by"] = blocked_by
        sessions.append(entry)
    severity = level(longest, warn, crit) if waiting else Severity.OK
    limits = limits_text("after", warn, crit, "s")
    if not waiting:
        message = "no session waiting on a lock"
    else:
        who = ", ".join(f"pid {pid} ({app})" for pid, app in sorted(blockers.items()))
        message = (
            f"{len(waiting)} session(s) waiting on locks, the longest {longest:.0f}s"
            + (f", blocked by {who}" if who else "")
            + (f"; {limits}" if limits else "")
        )
    return Finding(
        "lock_waits",
        severity,
        message,
        {
            "count": len(waiting),
            "longest_seconds": round(longest, 1) if waiting else None,
            "blocking_pids": sorted(blockers),
            "sessions": sessions[:SESSIONS_LISTED],
            "warning": warn,
            "critical": crit,
        },
    )


def _refused(snapshot: Snapshot, since_last: int | None, full: int | None) -> Finding:
    """WARNING when the server refused connection attempts since the last sample (clients
    got errors although a snapshot may look fine now); CRITICAL when it says they were
    refused because it was full, or when it is full now."""
    total = int(snapshot.extras[REFUSED_COUNTER] or 0)
    data = {"refused_connections": since_last, "refused_full": full, "refused_since_start": total}
    if since_last is None:
        return Finding(
            "refused_connections",
            Severity.OK,
            f"{total} connection attempt(s) refused or aborted since the server started "
            "(no earlier sample to compare)",
            data,
        )
    if since_last > 0 or (full or 0) > 0:
        is_full = (full or 0) > 0 or snapshot.free_connections == 0
        return Finding(
            "refused_connections",
            Severity.CRITICAL if is_full else Severity.WARNING,
            f"{max(since_last, full or 0)} connection attempt(s) refused since the last sample "
            + (
                "while the server was full (max_connections)"
                if is_full
                else "(server full, bad credentials or handshake timeouts)"
            )
            + f"; {total} since it started",
            data,
        )
    return Finding(
        "refused_connections", Severity.OK, "no connection refused since the last sample", data
    )


def _visibility(snapshot: Snapshot) -> Finding:
    data = {
        "visibility": snapshot.visibility,
        "hidden_connections": snapshot.hidden_connections,
        "current_user": snapshot.limits.current_user,
    }
    if snapshot.visibility == "full":
        return Finding("visibility", Severity.OK, "every session is visible", data)
    grant = snapshot.visibility_grant or "the privilege to read every session"
    return Finding(
        "visibility",
        Severity.UNKNOWN,
        f"restricted visibility: role {snapshot.limits.current_user} cannot see the state of "
        f"{snapshot.hidden_connections} session(s) of other roles, so idle, idle-in-transaction "
        f"and lock figures may be incomplete; grant it {grant}",
        data,
    )


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
    if snapshot is None or REFUSED_COUNTER not in snapshot.extras:
        return []  # the engine counts no refused connections
    return [_refused(snapshot, inputs.refused_connections, inputs.refused_full)]


def _visibility_check(inputs: Inputs) -> list[Finding]:
    return [] if inputs.snapshot is None else [_visibility(inputs.snapshot)]


#: The kinds of :class:`~dbconnmgr.exceptions.ServerUnavailable` each failure check
#: reports; ``server_error`` takes every kind no other one names.
_FAILURE_KINDS: dict[FindingCode, tuple[tuple[ProblemKind, ...], Severity]] = {
    # the application cannot get a connection either
    "server_full": (("full", "reserved"), Severity.CRITICAL),
    "server_unreachable": (("unreachable", "timeout"), Severity.CRITICAL),
    # the check's own credentials or setup failed: that says nothing about the slots
    "authentication_failed": (("auth",), Severity.UNKNOWN),
    "configuration_error": (("setup",), Severity.UNKNOWN),
}
_NAMED_KINDS = frozenset(kind for kinds, _ in _FAILURE_KINDS.values() for kind in kinds)


def _failure(code: FindingCode) -> Callable[[Inputs], list[Finding]]:
    kinds, severity = _FAILURE_KINDS.get(code, ((), Severity.UNKNOWN))

    def run(inputs: Inputs) -> list[Finding]:
        exc = inputs.problem
        if exc is None:
            return []
        if exc.kind in kinds if kinds else exc.kind not in _NAMED_KINDS:
            return [Finding(code, severity, str(exc), {"kind": exc.kind, "detail": exc.detail})]
        return []

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
        _on_snapshot(_utilization),
        _pairs("UTILIZATION", "CONNECTIONS", "FREE_SLOTS"),
    ),
    Check(
        "database_utilization",
        "snapshot",
        _on_snapshot(lambda s, t: _limit_utilization(s, t, "database")),
        _pairs("UTILIZATION"),
    ),
    Check(
        "role_utilization",
        "snapshot",
        _on_snapshot(lambda s, t: _limit_utilization(s, t, "role")),
        _pairs("UTILIZATION"),
    ),
    Check(
        "idle_ratio",
        "snapshot",
        _on_snapshot(_idle_ratio),
        (*_pairs("IDLE_RATIO"), "IDLE_RATIO_MIN_CONNECTIONS"),
    ),
    Check(
        "idle_in_transaction",
        "snapshot",
        _on_snapshot(_idle_in_transaction),
        (*_pairs("IDLE_IN_TRANSACTION"), *_AGE_KEYS),
    ),
    Check(
        "long_transaction",
        "snapshot",
        _on_snapshot(_long_transaction),
        (*_pairs("TRANSACTION_AGE"), *_AGE_KEYS),
    ),
    Check(
        "long_query",
        "snapshot",
        _on_snapshot(_long_query),
        (*_pairs("QUERY_AGE"), *_AGE_KEYS),
    ),
    Check("lock_waits", "snapshot", _on_snapshot(_lock_waits), _pairs("LOCK_WAIT")),
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
