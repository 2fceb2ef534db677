"""System check of the audit trail: do the ``dbconnmgr`` audit lines reach a handler?

Every terminate and cancel logs INFO lines on the ``dbconnmgr`` logger (docs/actions.md,
"Audit log"). A project created by ``startproject`` configures no logger for it: the
records stop at the root logger's WARNING level and the trail is lost. ``dbconnmgr.W016``
says so; it does not add a handler itself (a library does not configure logging).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.checks import CheckMessage, Warning, register

__all__ = ["AUDIT_LOGGER", "audit_trail_is_handled", "check_audit_trail"]

#: The logger of the audit lines.
AUDIT_LOGGER = "dbconnmgr"


def audit_trail_is_handled(name: str = AUDIT_LOGGER) -> bool:
    """True when an INFO record of logger ``name`` reaches a handler that keeps it.

    Walks the logger and its ancestors as :meth:`logging.Logger.callHandlers` does (until a
    logger that does not propagate); Python's last-resort handler keeps only warnings, so it
    does not count.
    """
    logger: logging.Logger | None = logging.getLogger(name)
    if logger is None or not logger.isEnabledFor(logging.INFO):
        return False
    while logger is not None:
        if any(handler.level <= logging.INFO for handler in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


@register("dbconnmgr")
def check_audit_trail(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W016: no handler receives the INFO audit lines of terminate and cancel."""
    if audit_trail_is_handled():
        return []
    return [
        Warning(
            "the dbconnmgr audit trail is lost: no logging handler receives the INFO lines "
            "that name each terminated or cancelled session and who asked",
            hint='Add to settings.LOGGING: "loggers": {"dbconnmgr": {"handlers": ["console"], '
            '"level": "INFO"}} (with a "console" StreamHandler, or a file handler); see '
            "docs/actions.md#audit-log. The admin page also writes a LogEntry per action.",
            id="dbconnmgr.W016",
        )
    ]
