"""System checks of ``settings.DBCONNMGR`` itself, one pass over its declared schema.

Every key's validator lives in :data:`dbconnmgr.app_settings.SCHEMA` and is shared with the
accessors that read the key at run time. Ids (listed in docs/configuration.md):

- ``dbconnmgr.E101`` DBCONNMGR is not a dict.
- ``dbconnmgr.W102`` DBCONNMGR has an unknown key (a typo leaves the default in force).
- ``dbconnmgr.E102`` THRESHOLDS is not a dict, or one of its keys is unknown.
- ``dbconnmgr.E103`` a threshold has the wrong type or is out of range.
- ``dbconnmgr.E104`` a warning threshold is not below its critical one.
- ``dbconnmgr.E105`` ALERTS is malformed (unknown key, COOLDOWN, MIN_SEVERITY, HANDLERS).
- ``dbconnmgr.E106`` an alert handler does not import, or cannot be built from its OPTIONS.
- ``dbconnmgr.E107`` HEALTH_TOKENS is not a list of non-empty strings.
- ``dbconnmgr.W101`` a health token is shorter than 16 characters (guessable).
- ``dbconnmgr.E108`` STATUS_LIMIT, ``E109`` IDLE_TIMEOUT, ``E110`` TERMINATE_TIMEOUT,
  ``E111`` RETENTION_DAYS, ``E112`` BUDGET_HEADROOM, ``E113`` BUDGET_SAFETY, ``E114``
  SERVICES, ``E115`` MONITOR_INTERVAL, ``E116`` AAS_WINDOW, ``E117``
  MONITOR_SAMPLE_SERVER, ``E118`` ASGI, ``E125`` ATTRIBUTION, ``E126`` LEAK_THRESHOLD,
  ``E127`` CODE_LABELS: wrong type or out of range.
- ``dbconnmgr.E119`` PGBOUNCER is malformed (not a dict of aliases, unknown key, a URL
  that is not a postgres:// URL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from dbconnmgr.app_settings import SCHEMA, Problem, unknown_keys


def _message(problem: Problem) -> CheckMessage:
    kind = Error if problem.is_error else Warning
    return kind(problem.message, hint=problem.hint, id=problem.check_id)


@register()
def check_dbconnmgr_settings(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Validate ``settings.DBCONNMGR``: every key with its schema validator."""
    value = getattr(settings, "DBCONNMGR", None)
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Error(f"DBCONNMGR must be a dict, got {type(value).__name__}.", id="dbconnmgr.E101")
        ]
    problems = unknown_keys(value, list(SCHEMA), "DBCONNMGR", "dbconnmgr.W102")
    for key, setting in SCHEMA.items():
        if key in value:
            problems += setting.validate(value[key])
    messages = [_message(p) for p in problems]
    alerts = value.get("ALERTS")
    if isinstance(alerts, Mapping) and isinstance(alerts.get("HANDLERS"), list | tuple):
        messages += _check_handlers(alerts["HANDLERS"])
    return messages


def _check_handlers(handlers: Sequence[Any]) -> list[CheckMessage]:
    """E106: each alert handler imports and builds from its OPTIONS."""
    from dbconnmgr.alerts import build_handler

    messages: list[CheckMessage] = []
    for spec in handlers:
        try:
            build_handler(spec)
        except Exception as exc:
            messages.append(
                Error(
                    f"DBCONNMGR['ALERTS']['HANDLERS']: {spec!r} cannot be used: "
                    f"{type(exc).__name__}: {exc}",
                    hint="A dotted path to a callable or a class taking the OPTIONS as "
                    "keyword arguments, e.g. 'dbconnmgr.alerts.WebhookHandler'.",
                    id="dbconnmgr.E106",
                )
            )
    return messages
