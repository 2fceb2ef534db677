"""The app's own settings: ``settings.DBCONNMGR``, read at call time with defaults.

Every key is documented in docs/configuration.md. Accessors read ``django.conf.settings``
each time so ``override_settings`` and per-process changes are honoured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from dbconnmgr.core.health import DEFAULT_THRESHOLDS

#: Defaults of every key of ``settings.DBCONNMGR``.
DEFAULTS: dict[str, Any] = {
    # Top-N rows in the status breakdowns.
    "STATUS_LIMIT": 10,
    # Seconds a plain idle session must be idle before close-idle terminates it.
    "IDLE_TIMEOUT": 300,
    # Health thresholds (docs/health.md): dbconnmgr.core.health.DEFAULT_THRESHOLDS.
    "THRESHOLDS": DEFAULT_THRESHOLDS,
    # connection_monitor: read the server's client connections before and after each
    # block (one short statement per PostgreSQL alias on each side) unless told otherwise.
    "MONITOR_SAMPLE_SERVER": True,
    # The processes that connect, for --action=budget and the pool-size check: strings in
    # the --service syntax ("web=4x8", "web=2x4x8:10") or dicts of dbconnmgr.core.budget.Service.
    "SERVICES": [],
    # Slots --action=budget keeps free for people, migrations and one-off jobs.
    "BUDGET_HEADROOM": 5,
    # Fraction of the usable slots (after headroom) the services may fill.
    "BUDGET_SAFETY": 0.95,
    # True when the project is served over ASGI (None: True when ASGI_APPLICATION is set).
    "ASGI": None,
    # Alerts (docs/alerts.md): dotted paths of handlers, or {"HANDLER": path, "OPTIONS": {}}.
    "ALERTS": {
        "HANDLERS": ["dbconnmgr.alerts.LoggingHandler"],
        # Seconds before the same finding is sent again (cooldown state is per process).
        "COOLDOWN": 300,
        # Findings below this severity are not sent (ok < warning < unknown < critical).
        "MIN_SEVERITY": "warning",
    },
    # Bearer tokens accepted by the HTTP health endpoint (staff users need none).
    "HEALTH_TOKENS": [],
    # Seconds close-idle/force-close wait for signalled backends to exit before reporting
    # them as "not_exited" (0: do not wait).
    "TERMINATE_TIMEOUT": 5,
    # Monitor: seconds between samples of --action=monitor (--interval overrides it).
    "MONITOR_INTERVAL": 5,
    # Monitor: seconds of samples the average active sessions (AAS) is computed over.
    "AAS_WINDOW": 60,
    # Recorded samples (--record) older than this many days are pruned; None keeps all.
    "RETENTION_DAYS": 30,
}


def thresholds() -> dict[str, Any]:
    """The THRESHOLDS dict: defaults overlaid with the project's keys."""
    merged = dict(DEFAULTS["THRESHOLDS"])
    merged.update(user_settings().get("THRESHOLDS") or {})
    return merged


def user_settings() -> dict[str, Any]:
    """The project's ``DBCONNMGR`` dict (empty when unset)."""
    value = getattr(settings, "DBCONNMGR", None)
    return dict(value) if isinstance(value, dict) else {}


def get_setting(name: str) -> Any:
    """One setting: the project's value, else the default.

    Raises:
        KeyError: ``name`` is not a dbconnmgr setting.
    """
    if name not in DEFAULTS:
        raise KeyError(f"unknown dbconnmgr setting {name!r}")
    return user_settings().get(name, DEFAULTS[name])


def alert_settings() -> dict[str, Any]:
    """The ALERTS dict: defaults overlaid with the project's keys."""
    merged = dict(DEFAULTS["ALERTS"])
    merged.update(user_settings().get("ALERTS") or {})
    return merged
