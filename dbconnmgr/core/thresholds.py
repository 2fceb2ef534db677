"""Health thresholds as a typed object, and the comparisons every reader of them shares.

Users write ``DBCONNMGR["THRESHOLDS"]`` as a dict of upper-case keys; the core works on
:class:`Thresholds`, one attribute per key (the lower-case name), made from such a dict by
:func:`resolve_thresholds` (which validates it). "At or over the warning threshold" is
:func:`reaches` and :func:`level`, nowhere else. Pure: no I/O, no Django settings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dbconnmgr.core.findings import Severity

__all__ = [
    "DEFAULT_THRESHOLDS",
    "THRESHOLD_KINDS",
    "ThresholdKind",
    "Thresholds",
    "level",
    "level_low",
    "limits_text",
    "reaches",
    "resolve_thresholds",
    "threshold_errors",
    "utilization_level",
]

#: ``percent`` (0-100), ``count`` (whole number >= 0), ``seconds`` (>= 0) or ``names`` (a
#: list of application-name patterns).
ThresholdKind = Literal["percent", "count", "seconds", "names"]


def _key(kind: ThresholdKind, default: float | None, *, lower_is_worse: bool = False) -> Any:
    return field(default=default, metadata={"kind": kind, "lower_is_worse": lower_is_worse})


@dataclass(frozen=True)
class Thresholds:
    """Every THRESHOLDS key, with its default. None turns a threshold off.

    Attribute ``x`` is the setting's key ``X``. Utilization is a percentage of the
    *usable* slots.
    """

    utilization_warning: float | None = _key("percent", 70)
    utilization_critical: float | None = _key("percent", 85)
    # The same, as absolute counts of connections in use...
    connections_warning: float | None = _key("count", None)
    connections_critical: float | None = _key("count", None)
    # ...and as usable slots remaining (warning when <= N free).
    free_slots_warning: float | None = _key("count", None, lower_is_worse=True)
    free_slots_critical: float | None = _key("count", None, lower_is_worse=True)
    # Percentage of the connections that are plain idle, judged only from
    # IDLE_RATIO_MIN_CONNECTIONS connections up (a dev server's 2 idle sessions are fine).
    idle_ratio_warning: float | None = _key("percent", 50)
    idle_ratio_critical: float | None = _key("percent", None)
    idle_ratio_min_connections: float | None = _key("count", 10)
    # Seconds.
    idle_in_transaction_warning: float | None = _key("seconds", 60)
    idle_in_transaction_critical: float | None = _key("seconds", 300)
    transaction_age_warning: float | None = _key("seconds", 600)
    transaction_age_critical: float | None = _key("seconds", 3600)
    query_age_warning: float | None = _key("seconds", 120)
    query_age_critical: float | None = _key("seconds", 600)
    lock_wait_warning: float | None = _key("seconds", 10)
    lock_wait_critical: float | None = _key("seconds", 60)
    # application_name patterns (fnmatch) exempt from the three age checks above.
    exempt_applications: tuple[str, ...] = field(
        default=("pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup"),
        metadata={"kind": "names", "lower_is_worse": False},
    )
    # PgBouncer (DBCONNMGR["PGBOUNCER"]): clients waiting for a server connection, every
    # pool together; seconds the oldest has waited; a pool's active servers as a % of its
    # pool_size.
    pgbouncer_waiting_warning: float | None = _key("count", 1)
    pgbouncer_waiting_critical: float | None = _key("count", None)
    pgbouncer_maxwait_warning: float | None = _key("seconds", 1)
    pgbouncer_maxwait_critical: float | None = _key("seconds", 5)
    pgbouncer_saturation_warning: float | None = _key("percent", 80)
    pgbouncer_saturation_critical: float | None = _key("percent", 100)

    def pair(self, prefix: str) -> tuple[float | None, float | None]:
        """``(PREFIX_WARNING, PREFIX_CRITICAL)``: ``pair("QUERY_AGE")``.

        Raises:
            AttributeError: no such pair.
        """
        name = prefix.lower()
        warning: float | None = getattr(self, f"{name}_warning")
        critical: float | None = getattr(self, f"{name}_critical")
        return warning, critical

    def as_dict(self) -> dict[str, Any]:
        """The THRESHOLDS dict these stand for (upper-case keys; names as a list)."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            result[f.name.upper()] = list(value) if isinstance(value, tuple) else value
        return result


_FIELDS = {f.name.upper(): f for f in dataclasses.fields(Thresholds)}

#: The default of every threshold, as the THRESHOLDS dict (``DBCONNMGR["THRESHOLDS"]``
#: overlays it).
DEFAULT_THRESHOLDS: dict[str, Any] = Thresholds().as_dict()

#: What each THRESHOLDS key holds (see :data:`ThresholdKind`).
THRESHOLD_KINDS: dict[str, ThresholdKind] = {key: f.metadata["kind"] for key, f in _FIELDS.items()}

# (warning key, critical key, True when a higher value is worse)
_PAIRS: tuple[tuple[str, str, bool], ...] = tuple(
    (key, key.removesuffix("_WARNING") + "_CRITICAL", not f.metadata["lower_is_worse"])
    for key, f in _FIELDS.items()
    if key.endswith("_WARNING") and key.removesuffix("_WARNING") + "_CRITICAL" in _FIELDS
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


def resolve_thresholds(thresholds: Mapping[str, Any] | Thresholds | None = None) -> Thresholds:
    """Complete thresholds: the defaults overlaid with the THRESHOLDS keys of ``thresholds``.

    None means the defaults alone: the caller reads the project's settings
    (``dbconnmgr.app_settings.thresholds()``) and hands them in; the core never does. A
    :class:`Thresholds` is returned as it is.

    Raises:
        ValueError: a key is unknown or a value is invalid (the system checks report the
            same at startup).
    """
    if isinstance(thresholds, Thresholds):
        return thresholds
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(_FIELDS))
    errors = [f"unknown key {key!r}" for key in unknown]
    errors += threshold_errors({**DEFAULT_THRESHOLDS, **given})
    if errors:
        raise ValueError("invalid DBCONNMGR THRESHOLDS: " + "; ".join(errors))
    values: dict[str, Any] = {}
    for key, value in given.items():
        # A list of names becomes a tuple (the object is frozen); None there means none.
        values[key.lower()] = tuple(value or ()) if THRESHOLD_KINDS[key] == "names" else value
    return Thresholds(**values)


def reaches(value: float, threshold: float | None) -> bool:
    """True when ``value`` is at or over ``threshold`` (never for a threshold that is off)."""
    return threshold is not None and value >= threshold


def level(value: float, warning: float | None, critical: float | None) -> Severity:
    """Severity of ``value`` when a higher value is worse (None thresholds are off)."""
    if reaches(value, critical):
        return Severity.CRITICAL
    if reaches(value, warning):
        return Severity.WARNING
    return Severity.OK


def level_low(value: float, warning: float | None, critical: float | None) -> Severity:
    """Severity of ``value`` when a lower value is worse."""
    if critical is not None and value <= critical:
        return Severity.CRITICAL
    if warning is not None and value <= warning:
        return Severity.WARNING
    return Severity.OK


def utilization_level(percent: float, thresholds: Thresholds) -> Severity:
    """OK, WARNING or CRITICAL of a utilization percentage by ``UTILIZATION_*``."""
    return level(percent, thresholds.utilization_warning, thresholds.utilization_critical)


def _fmt(number: float) -> str:
    return f"{number:g}"


def limits_text(word: str, warning: float | None, critical: float | None, unit: str) -> str:
    """``warning at 70%, critical at 85%`` (the parts whose threshold is on)."""
    parts = []
    if warning is not None:
        parts.append(f"warning {word} {_fmt(warning)}{unit}")
    if critical is not None:
        parts.append(f"critical {word} {_fmt(critical)}{unit}")
    return ", ".join(parts)
