"""Health evaluation: a snapshot plus thresholds in, findings with severities out.

Pure functions, no I/O: the same :class:`Report` feeds ``--action=health``,
:func:`dbconnmgr.check_connection_health`, the HTTP endpoint and the alerts.

Severities carry the Nagios plugin exit codes (0 ok, 1 warning, 2 critical, 3 unknown).
The worst finding decides a report's status, ranked ``ok < warning < unknown < critical``
(compare with :attr:`Severity.rank`, not with ``<`` on the values): *unknown* means "we
could not see everything", which is worse than a known warning, while a critical finding
measured on what we *could* see (the total count of connections is exact even when their
states are hidden) must not be masked by it.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from dbconnmgr.core.snapshot import (
    REFUSED_COUNTER,
    Connection,
    Snapshot,
)
from dbconnmgr.core.wlm import WLM_THRESHOLD_DEFAULTS, wlm_findings
from dbconnmgr.exceptions import ServerUnavailable

#: The default of every threshold (``DBCONNMGR["THRESHOLDS"]`` overlays it). Utilization
#: is a percentage of the *usable* slots; None turns a threshold off.
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "UTILIZATION_WARNING": 70,
    "UTILIZATION_CRITICAL": 85,
    # The same, as absolute counts of connections in use...
    "CONNECTIONS_WARNING": None,
    "CONNECTIONS_CRITICAL": None,
    # ...and as usable slots remaining (warning when <= N free).
    "FREE_SLOTS_WARNING": None,
    "FREE_SLOTS_CRITICAL": None,
    # Percentage of the connections that are plain idle, judged only from
    # IDLE_RATIO_MIN_CONNECTIONS connections up (a dev server's 2 idle sessions are fine).
    "IDLE_RATIO_WARNING": 50,
    "IDLE_RATIO_CRITICAL": None,
    "IDLE_RATIO_MIN_CONNECTIONS": 10,
    # Seconds.
    "IDLE_IN_TRANSACTION_WARNING": 60,
    "IDLE_IN_TRANSACTION_CRITICAL": 300,
    "TRANSACTION_AGE_WARNING": 600,
    "TRANSACTION_AGE_CRITICAL": 3600,
    "QUERY_AGE_WARNING": 120,
    "QUERY_AGE_CRITICAL": 600,
    "LOCK_WAIT_WARNING": 10,
    "LOCK_WAIT_CRITICAL": 60,
    # application_name patterns (fnmatch) exempt from the three age checks above.
    "EXEMPT_APPLICATIONS": ["pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup"],
    # PgBouncer (DBCONNMGR["PGBOUNCER"]): clients waiting for a server connection, every
    # pool together; seconds the oldest has waited; a pool's active servers as a % of its
    # pool_size.
    "PGBOUNCER_WAITING_WARNING": 1,
    "PGBOUNCER_WAITING_CRITICAL": None,
    "PGBOUNCER_MAXWAIT_WARNING": 1,
    "PGBOUNCER_MAXWAIT_CRITICAL": 5,
    "PGBOUNCER_SATURATION_WARNING": 80,
    "PGBOUNCER_SATURATION_CRITICAL": 100,
    # Query queues (Redshift's WLM, dbconnmgr.core.wlm): queries waiting for a slot; seconds
    # a queue has been at its slot count.
    **WLM_THRESHOLD_DEFAULTS,
}


__all__ = [
    "THRESHOLD_KINDS",
    "Finding",
    "Report",
    "Severity",
    "evaluate",
    "evaluate_unavailable",
    "resolve_thresholds",
    "threshold_errors",
]


class Severity(IntEnum):
    """How bad a finding is. The value is the Nagios plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        """``ok``, ``warning``, ``critical`` or ``unknown``."""
        return self.name.lower()

    @property
    def rank(self) -> int:
        """Order of badness: ok 0, warning 1, unknown 2, critical 3."""
        return _RANK[self]

    @classmethod
    def worst(cls, severities: Iterable[Severity]) -> Severity:
        """The worst of ``severities`` by :attr:`rank` (OK when empty)."""
        return max(severities, key=lambda s: s.rank, default=cls.OK)

    @classmethod
    def from_label(cls, label: str) -> Severity:
        """``"warning"`` -> ``Severity.WARNING``.

        Raises:
            ValueError: not one of the four labels.
        """
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {label!r} (expected ok, warning, critical or unknown)"
            ) from None


_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.UNKNOWN: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class Finding:
    """The result of one check.

    Attributes:
        code: stable identifier of the check (``utilization``, ``idle_in_transaction``...).
        severity: how bad it is.
        message: one line for a person.
        data: the numbers behind it (JSON-serialisable; never query text or client
            addresses).
        subject: what the check is about when one code covers several things (the database
            of ``database_utilization``, the role of ``role_utilization``); empty otherwise.
    """

    code: str
    severity: Severity
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    subject: str = ""

    @property
    def key(self) -> str:
        """Identity for alert cooldowns: ``code`` or ``code:subject``."""
        return f"{self.code}:{self.subject}" if self.subject else self.code

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "code": self.code,
            "subject": self.subject,
            "severity": self.severity.label,
            "message": self.message,
            "data": self.data,
        }


@dataclass(frozen=True)
class Report:
    """Every finding for one database alias at one moment.

    Attributes:
        alias: the Django database alias.
        status: the worst finding's severity (ranked by :attr:`Severity.rank`).
        findings: every check that ran, ``ok`` ones included, worst first.
        snapshot: what was evaluated; None when the server could not be read.
        pooler: what PgBouncer's console said in front of the alias
            (:class:`dbconnmgr.core.pooler.PoolerSnapshot`), why it could not be read
            (:class:`~dbconnmgr.core.pooler.PoolerUnavailable`), or None when no PgBouncer is
            configured.
    """

    alias: str
    status: Severity
    findings: tuple[Finding, ...]
    snapshot: Snapshot | None
    pooler: Any = None

    @property
    def problems(self) -> tuple[Finding, ...]:
        """Findings that are not ok."""
        return tuple(f for f in self.findings if f.severity is not Severity.OK)

    @property
    def evaluated_codes(self) -> frozenset[str]:
        """Codes of the checks this report speaks for.

        A report with a snapshot vouches for every check (the server was reachable, so the
        ``server_*`` problems are over); one without vouches only for ``server_*``: the
        other checks were not run, so their last result stands.
        """
        pooler = frozenset(f.code for f in self.findings if f.code.startswith("pgbouncer_"))
        if self.snapshot is None:
            return _UNAVAILABLE_CODES | pooler
        return _SNAPSHOT_CODES | _UNAVAILABLE_CODES | pooler

    def summary(self) -> str:
        """One line: the status and the worst problem (or that all is well)."""
        problems = self.problems
        if not problems:
            return f"{self.status.label.upper()}: {self.alias}: every check passed"
        counts = ", ".join(
            f"{n} {sev.label}"
            for sev in (Severity.CRITICAL, Severity.UNKNOWN, Severity.WARNING)
            if (n := sum(1 for f in problems if f.severity is sev))
        )
        return f"{self.status.label.upper()}: {self.alias}: {counts} - {problems[0].message}"


# -- thresholds -------------------------------------------------------------------------------
#: What each THRESHOLDS key holds: ``percent`` (0-100), ``count`` (whole number >= 0),
#: ``seconds`` (>= 0) or ``names`` (a list of application-name patterns).
THRESHOLD_KINDS: dict[str, str] = {
    "UTILIZATION_WARNING": "percent",
    "UTILIZATION_CRITICAL": "percent",
    "CONNECTIONS_WARNING": "count",
    "CONNECTIONS_CRITICAL": "count",
    "FREE_SLOTS_WARNING": "count",
    "FREE_SLOTS_CRITICAL": "count",
    "IDLE_RATIO_WARNING": "percent",
    "IDLE_RATIO_CRITICAL": "percent",
    "IDLE_RATIO_MIN_CONNECTIONS": "count",
    "IDLE_IN_TRANSACTION_WARNING": "seconds",
    "IDLE_IN_TRANSACTION_CRITICAL": "seconds",
    "TRANSACTION_AGE_WARNING": "seconds",
    "TRANSACTION_AGE_CRITICAL": "seconds",
    "QUERY_AGE_WARNING": "seconds",
    "QUERY_AGE_CRITICAL": "seconds",
    "LOCK_WAIT_WARNING": "seconds",
    "LOCK_WAIT_CRITICAL": "seconds",
    "EXEMPT_APPLICATIONS": "names",
    "PGBOUNCER_WAITING_WARNING": "count",
    "PGBOUNCER_WAITING_CRITICAL": "count",
    "PGBOUNCER_MAXWAIT_WARNING": "seconds",
    "PGBOUNCER_MAXWAIT_CRITICAL": "seconds",
    "PGBOUNCER_SATURATION_WARNING": "percent",
    "PGBOUNCER_SATURATION_CRITICAL": "percent",
    "WLM_QUEUED_WARNING": "count",
    "WLM_QUEUED_CRITICAL": "count",
    "WLM_SATURATED_WARNING": "seconds",
    "WLM_SATURATED_CRITICAL": "seconds",
}

# (warning key, critical key, True when a higher value is worse)
_PAIRS: tuple[tuple[str, str, bool], ...] = (
    ("UTILIZATION_WARNING", "UTILIZATION_CRITICAL", True),
    ("CONNECTIONS_WARNING", "CONNECTIONS_CRITICAL", True),
    ("FREE_SLOTS_WARNING", "FREE_SLOTS_CRITICAL", False),
    ("IDLE_RATIO_WARNING", "IDLE_RATIO_CRITICAL", True),
    ("IDLE_IN_TRANSACTION_WARNING", "IDLE_IN_TRANSACTION_CRITICAL", True),
    ("TRANSACTION_AGE_WARNING", "TRANSACTION_AGE_CRITICAL", True),
    ("QUERY_AGE_WARNING", "QUERY_AGE_CRITICAL", True),
    ("LOCK_WAIT_WARNING", "LOCK_WAIT_CRITICAL", True),
    ("PGBOUNCER_WAITING_WARNING", "PGBOUNCER_WAITING_CRITICAL", True),
    ("PGBOUNCER_MAXWAIT_WARNING", "PGBOUNCER_MAXWAIT_CRITICAL", True),
    ("PGBOUNCER_SATURATION_WARNING", "PGBOUNCER_SATURATION_CRITICAL", True),
    ("WLM_QUEUED_WARNING", "WLM_QUEUED_CRITICAL", True),
    ("WLM_SATURATED_WARNING", "WLM_SATURATED_CRITICAL", True),
)


def threshold_errors(thresholds: Mapping[str, Any]) -> list[str]:
    """Every problem with a THRESHOLDS mapping, one sentence each (empty when valid).

    Unknown keys are not reported here (the system check does, with a hint).
    """
    errors: list[str] = []
    for key, kind in THRESHOLD_KINDS.items():
        if key not in thresholds or thresholds[key] is None:
            continue
        value = thresholds[key]
        if kind == "names":
            if isinstance(value, str) or not isinstance(value, Sequence):
                errors.append(f"{key} must be a list of application names, got {value!r}")
            elif not all(isinstance(v, str) for v in value):
                errors.append(f"{key} must contain only strings, got {value!r}")
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            errors.append(f"{key} must be a number or None, got {value!r}")
        elif kind == "percent" and not 0 < value <= 100:
            errors.append(f"{key} is a percentage: between 0 (excluded) and 100, got {value}")
        elif kind == "count" and (value < 0 or value != int(value)):
            errors.append(f"{key} must be a whole number >= 0, got {value}")
        elif kind == "seconds" and value < 0:
            errors.append(f"{key} is in seconds and must be >= 0, got {value}")
    if errors:
        return errors
    for warning_key, critical_key, higher_is_worse in _PAIRS:
        warning, critical = thresholds.get(warning_key), thresholds.get(critical_key)
        if warning is None or critical is None:
            continue
        if higher_is_worse and warning >= critical:
            errors.append(f"{warning_key} ({warning}) must be below {critical_key} ({critical})")
        if not higher_is_worse and warning <= critical:
            errors.append(
                f"{warning_key} ({warning}) must be above {critical_key} ({critical}): "
                "fewer free slots is worse"
            )
    return errors


def resolve_thresholds(thresholds: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete thresholds: the defaults overlaid with ``thresholds``.

    None means the defaults alone: the caller reads the project's settings
    (``dbconnmgr.app_settings.thresholds()``) and hands them in; the core never does.

    Raises:
        ValueError: a value is invalid (the system checks report the same at startup).
    """
    merged = dict(DEFAULT_THRESHOLDS)
    merged.update(thresholds or {})
    unknown = sorted(set(merged) - set(DEFAULT_THRESHOLDS) - set(THRESHOLD_KINDS))
    errors = [f"unknown key {key!r}" for key in unknown] + threshold_errors(merged)
    if errors:
        raise ValueError("invalid DBCONNMGR THRESHOLDS: " + "; ".join(errors))
    return merged


# -- evaluation -------------------------------------------------------------------------------
_SNAPSHOT_CODES = frozenset(
    {
        "utilization",
        "database_utilization",
        "role_utilization",
        "idle_ratio",
        "idle_in_transaction",
        "long_transaction",
        "long_query",
        "lock_waits",
        "visibility",
        "refused_connections",
        "wlm_queued",
        "wlm_saturated",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {"server_full", "server_unreachable", "authentication_failed", "server_error"}
)
#: Sessions listed per finding in ``data["sessions"]``.
SESSIONS_LISTED = 10


def evaluate(
    snapshot: Snapshot,
    thresholds: Mapping[str, Any] | None = None,
    refused_connections: int | None = None,
    refused_full: int | None = None,
) -> Report:
    """Evaluate every check on ``snapshot``.

    Args:
        snapshot: what :func:`dbconnmgr.take_snapshot` returned.
        thresholds: THRESHOLDS keys overriding :data:`DEFAULT_THRESHOLDS` (None: the
            defaults). The core never reads settings: pass
            ``dbconnmgr.app_settings.thresholds()`` for the project's.
        refused_connections: connection attempts the server refused since the previous
            sample (:attr:`Sample.refused_connections`), on engines that count them; None
            when there is no previous sample.
        refused_full: of those, the ones refused because the server was full, where the
            engine counts them apart (:attr:`Sample.refused_full`).

    Raises:
        ValueError: invalid thresholds.
    """
    t = resolve_thresholds(thresholds)
    findings = [
        _utilization(snapshot, t),
        *_limit_utilization(snapshot, t),
        _idle_ratio(snapshot, t),
        _idle_in_transaction(snapshot, t),
        _long_transaction(snapshot, t),
        _long_query(snapshot, t),
        _lock_waits(snapshot, t),
        _visibility(snapshot),
    ]
    if REFUSED_COUNTER in snapshot.extras:
        findings.append(_refused(snapshot, refused_connections, refused_full))
    wlm = snapshot.extras.get("wlm")
    if isinstance(wlm, Mapping):  # query queues, where the engine has them (Redshift)
        findings += [
            Finding(code, _SEVERITY_OF_LEVEL[level], message, data)
            for code, level, message, data in wlm_findings(wlm, t)
        ]
    return _report(snapshot.alias, findings, snapshot)


_SEVERITY_OF_LEVEL = {0: Severity.OK, 1: Severity.WARNING, 2: Severity.CRITICAL}


def evaluate_unavailable(exc: ServerUnavailable) -> Report:
    """A report for a server that could not be read.

    ``full`` and ``reserved`` (no slot left), ``unreachable`` and ``timeout`` are critical:
    the application cannot get a connection either. ``auth`` and ``other`` are unknown: the
    check's own credentials or setup failed, which says nothing about the server's slots.
    """
    data = {"kind": exc.kind, "detail": exc.detail}
    if exc.kind in ("full", "reserved"):
        finding = Finding("server_full", Severity.CRITICAL, str(exc), data)
    elif exc.kind in ("unreachable", "timeout"):
        finding = Finding("server_unreachable", Severity.CRITICAL, str(exc), data)
    elif exc.kind == "auth":
        finding = Finding("authentication_failed", Severity.UNKNOWN, str(exc), data)
    elif exc.kind == "setup":
        finding = Finding("configuration_error", Severity.UNKNOWN, str(exc), data)
    else:
        finding = Finding("server_error", Severity.UNKNOWN, str(exc), data)
    return _report(exc.alias, [finding], None)


def _report(alias: str, findings: list[Finding], snapshot: Snapshot | None) -> Report:
    ordered = sorted(findings, key=lambda f: -f.severity.rank)  # stable: check order kept
    return Report(
        alias=alias,
        status=Severity.worst(f.severity for f in findings),
        findings=tuple(ordered),
        snapshot=snapshot,
    )


def _level(value: float, warning: float | None, critical: float | None) -> Severity:
    """Severity of ``value`` when a higher value is worse (None thresholds are off)."""
    if critical is not None and value >= critical:
        return Severity.CRITICAL
    if warning is not None and value >= warning:
        return Severity.WARNING
    return Severity.OK


def _level_low(value: float, warning: float | None, critical: float | None) -> Severity:
    """Severity of ``value`` when a lower value is worse."""
    if critical is not None and value <= critical:
        return Severity.CRITICAL
    if warning is not None and value <= warning:
        return Severity.WARNING
    return Severity.OK


def _fmt(number: float) -> str:
    return f"{number:g}"


def _utilization(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
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
    warn_pct, crit_pct = t["UTILIZATION_WARNING"], t["UTILIZATION_CRITICAL"]
    rules = [
        (
            "percent",
            _level(percent, warn_pct, crit_pct),
            _limits_text("at", warn_pct, crit_pct, "%"),
            warn_pct,
            crit_pct,
        ),
        (
            "count",
            _level(snapshot.total_connections, t["CONNECTIONS_WARNING"], t["CONNECTIONS_CRITICAL"]),
            _limits_text("at", t["CONNECTIONS_WARNING"], t["CONNECTIONS_CRITICAL"], " connections"),
            t["CONNECTIONS_WARNING"],
            t["CONNECTIONS_CRITICAL"],
        ),
        (
            "free",
            _level_low(free, t["FREE_SLOTS_WARNING"], t["FREE_SLOTS_CRITICAL"]),
            _limits_text("at", t["FREE_SLOTS_WARNING"], t["FREE_SLOTS_CRITICAL"], " free"),
            t["FREE_SLOTS_WARNING"],
            t["FREE_SLOTS_CRITICAL"],
        ),
    ]
    configured = [r for r in rules if r[3] is not None or r[4] is not None] or rules[:1]
    severity = Severity.worst(r[1] for r in configured)
    # Name every rule that reached the worst severity (all of them when ok).
    triggered = [r for r in configured if r[1] is severity]
    rule, _, _, warning, critical = triggered[0]
    limits_text = "; ".join(r[2] for r in triggered if r[2])
    message = f"{used}; {limits_text}" if limits_text else used
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


def _limits_text(word: str, warning: Any, critical: Any, unit: str) -> str:
    parts = []
    if warning is not None:
        parts.append(f"warning {word} {_fmt(warning)}{unit}")
    if critical is not None:
        parts.append(f"critical {word} {_fmt(critical)}{unit}")
    return ", ".join(parts)


def _limit_utilization(snapshot: Snapshot, t: Mapping[str, Any]) -> list[Finding]:
    """CONNECTION LIMIT of databases and roles, against the percentage thresholds.

    PostgreSQL does not apply these limits to superusers but counts their sessions, so the
    count is every client backend of the database (or role).
    """
    findings: list[Finding] = []
    warn, crit = t["UTILIZATION_WARNING"], t["UTILIZATION_CRITICAL"]
    scopes: tuple[tuple[str, dict[str, int], Callable[[Connection], str | None]], ...] = (
        ("database", snapshot.limits.database_limits, _database_of),
        ("role", snapshot.limits.role_limits, _user_of),
    )
    for scope, caps, key in scopes:
        for name, cap in sorted(caps.items()):
            used = sum(1 for c in snapshot.others() if key(c) == name)
            if cap <= 0 or used == 0:
                continue
            percent = round(used * 100.0 / cap, 1)
            severity = _level(percent, warn, crit)
            findings.append(
                Finding(
                    f"{scope}_utilization",
                    severity,
                    f"{scope} {name}: {used} of its {cap} connections in use ({percent}%); "
                    + _limits_text("at", warn, crit, "%"),
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


def _idle_ratio(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
    others = snapshot.others()
    idle = sum(1 for c in others if c.state == "idle")
    total = len(others)
    minimum = t["IDLE_RATIO_MIN_CONNECTIONS"] or 0
    percent = round(idle * 100.0 / total, 1) if total else 0.0
    warn, crit = t["IDLE_RATIO_WARNING"], t["IDLE_RATIO_CRITICAL"]
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
    severity = _level(percent, warn, crit)
    return Finding(
        "idle_ratio",
        severity,
        f"{idle} of {total} connections idle ({percent}%); "
        + _limits_text("above", warn, crit, "%"),
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
    code: str,
    what: str,
    snapshot: Snapshot,
    t: Mapping[str, Any],
    prefix: str,
    candidates: Iterable[Connection],
    age_of: Any,
    ok_text: str,
) -> Finding:
    warn, crit = t[f"{prefix}_WARNING"], t[f"{prefix}_CRITICAL"]
    exempt = t["EXEMPT_APPLICATIONS"] or ()
    aged = sorted(
        (
            (age, conn)
            for conn in candidates
            if (age := age_of(conn)) is not None and not _exempt(conn, exempt)
        ),
        key=lambda item: -item[0],
    )
    longest = aged[0][0] if aged else 0.0
    severity = _level(longest, warn, crit) if aged else Severity.OK
    threshold = crit if severity is Severity.CRITICAL else warn
    over = [(a, c) for a, c in aged if threshold is not None and a >= threshold]
    limits = _limits_text("after", warn, crit, "s")
    if severity is Severity.OK:
        message = f"{ok_text}; {limits}" if limits else f"{ok_text} (thresholds off)"
    else:
        top = over[0][1]
        message = (
            f"{len(over)} {what} longer than {_fmt(threshold)}s, the longest "
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


def _idle_in_transaction(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
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


def _long_transaction(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
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


def _long_query(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
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


def _lock_waits(snapshot: Snapshot, t: Mapping[str, Any]) -> Finding:
    warn, crit = t["LOCK_WAIT_WARNING"], t["LOCK_WAIT_CRITICAL"]
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
    severity = _level(longest, warn, crit) if waiting else Severity.OK
    limits = _limits_text("after", warn, crit, "s")
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
    hidden = (
        f"the state of {snapshot.hidden_connections} session(s) of other roles"
        if snapshot.hidden_connections
        # an engine that lists only the reader's own sessions (Redshift) cannot count the others
        else "other roles' sessions at all (not even how many there are)"
    )
    return Finding(
        "visibility",
        Severity.UNKNOWN,
        f"restricted visibility: role {snapshot.limits.current_user} cannot see {hidden}, "
        f"so idle, idle-in-transaction and lock figures may be incomplete; grant it {grant}",
        data,
    )
