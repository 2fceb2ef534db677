"""The app's own settings: ``settings.DBCONNMGR``, read at call time with defaults.

Every key is documented in docs/configuration.md. Accessors read ``django.conf.settings``
each time so ``override_settings`` and per-process changes are honoured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Defaults of every key of ``settings.DBCONNMGR``.
DEFAULTS: dict[str, Any] = {
    # Top-N rows in the status breakdowns.
    "STATUS_LIMIT": 10,
    # Seconds a plain idle session must be idle before close-idle terminates it.
    "IDLE_TIMEOUT": 300,
    # Health thresholds. Utilization is a percentage of the *usable* slots.
    "THRESHOLDS": {
        "UTILIZATION_WARNING": 70,
        "UTILIZATION_CRITICAL": 85,
    },
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
