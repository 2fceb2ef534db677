"""System checks of ``settings.DBCONNMGR`` itself: keys, thresholds, alerts, tokens.

Ids (docs/health.md, docs/alerts.md):

- ``dbconnmgr.E101`` DBCONNMGR is not a dict, or a key is unknown (a typo would silently
  leave the default in force).
- ``dbconnmgr.E102`` THRESHOLDS is not a dict, or one of its keys is unknown.
- ``dbconnmgr.E103`` a threshold has the wrong type or is out of range.
- ``dbconnmgr.E104`` a warning threshold is not below its critical one.
- ``dbconnmgr.E105`` ALERTS is malformed (unknown key, COOLDOWN, MIN_SEVERITY, HANDLERS).
- ``dbconnmgr.E106`` an alert handler does not import, or cannot be built from its OPTIONS.
- ``dbconnmgr.E107`` HEALTH_TOKENS is not a list of non-empty strings.
- ``dbconnmgr.W101`` a health token is shorter than 16 characters (guessable).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from dbconnmgr.app_settings import DEFAULTS
from dbconnmgr.core.health import THRESHOLD_KINDS, Severity, threshold_errors

_PAIR_HINT = "Each warning threshold must be reached before its critical one."


def _unknown(keys: Iterable[str], known: Iterable[str], where: str, check_id: str) -> list[Error]:
    known = list(known)
    errors = []
    for key in keys:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        errors.append(
            Error(
                f"Unknown key {key!r} in {where}.",
                hint=f"{hint}Known keys: {', '.join(sorted(known))}.",
                id=check_id,
            )
        )
    return errors


@register()
def check_dbconnmgr_settings(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Validate ``settings.DBCONNMGR``."""
    value = getattr(settings, "DBCONNMGR", None)
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Error(f"DBCONNMGR must be a dict, got {type(value).__name__}.", id="dbconnmgr.E101")
        ]
    messages: list[CheckMessage] = []
    messages += _unknown(value, DEFAULTS, "DBCONNMGR", "dbconnmgr.E101")
    messages += _check_thresholds(value.get("THRESHOLDS"))
    messages += _check_alerts(value.get("ALERTS"))
    messages += _check_tokens(value.get("HEALTH_TOKENS"))
    return messages


def _check_thresholds(value: Any) -> list[CheckMessage]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Error(
                f"DBCONNMGR['THRESHOLDS'] must be a dict, got {type(value).__name__}.",
                id="dbconnmgr.E102",
            )
        ]
    known = set(DEFAULTS["THRESHOLDS"]) | set(THRESHOLD_KINDS)
    messages: list[CheckMessage] = list(
        _unknown(value, known, "DBCONNMGR['THRESHOLDS']", "dbconnmgr.E102")
    )
    merged = {**DEFAULTS["THRESHOLDS"], **value}
    for problem in threshold_errors(merged):
        pair = "must be below" in problem or "must be above" in problem
        messages.append(
            Error(
                f"DBCONNMGR['THRESHOLDS']: {problem}.",
                hint=_PAIR_HINT if pair else "See docs/health.md for each threshold's unit.",
                id="dbconnmgr.E104" if pair else "dbconnmgr.E103",
            )
        )
    return messages


def _check_alerts(value: Any) -> list[CheckMessage]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Error(
                f"DBCONNMGR['ALERTS'] must be a dict, got {type(value).__name__}.",
                id="dbconnmgr.E105",
            )
        ]
    messages: list[CheckMessage] = list(
        _unknown(value, DEFAULTS["ALERTS"], "DBCONNMGR['ALERTS']", "dbconnmgr.E105")
    )
    cooldown = value.get("COOLDOWN", 0)
    if (
        isinstance(cooldown, bool)
        or not isinstance(cooldown, int | float)
        or not math.isfinite(cooldown)
        or cooldown < 0
    ):
        messages.append(
            Error(
                f"DBCONNMGR['ALERTS']['COOLDOWN'] must be seconds >= 0, got {cooldown!r}.",
                id="dbconnmgr.E105",
            )
        )
    try:
        Severity.from_label(str(value.get("MIN_SEVERITY", "warning")))
    except ValueError as exc:
        messages.append(Error(f"DBCONNMGR['ALERTS']['MIN_SEVERITY']: {exc}.", id="dbconnmgr.E105"))
    handlers = value.get("HANDLERS", [])
    if isinstance(handlers, str) or not isinstance(handlers, list | tuple):
        messages.append(
            Error(
                f"DBCONNMGR['ALERTS']['HANDLERS'] must be a list, got {handlers!r}.",
                hint="A list of dotted paths or {'HANDLER': path, 'OPTIONS': {...}} dicts.",
                id="dbconnmgr.E105",
            )
        )
        return messages
    from dbconnmgr.alerts import build_handler

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


def _check_tokens(value: Any) -> list[CheckMessage]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return [
            Error(
                "DBCONNMGR['HEALTH_TOKENS'] must be a list of strings, "
                f"got {type(value).__name__}.",
                hint="HEALTH_TOKENS = [env.str('HEALTH_TOKEN')]",
                id="dbconnmgr.E107",
            )
        ]
    messages: list[CheckMessage] = []
    for token in value:
        if not isinstance(token, str) or not token.strip():
            messages.append(
                Error(
                    "DBCONNMGR['HEALTH_TOKENS'] holds an empty or non-string token.",
                    id="dbconnmgr.E107",
                )
            )
        elif len(token) < 16:
            messages.append(
                Warning(
                    "A DBCONNMGR['HEALTH_TOKENS'] token is shorter than 16 characters.",
                    hint="Use a long random token: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'",
                    id="dbconnmgr.W101",
                )
            )
    return messages
