"""Alerts: send health findings to configured handlers, with a cooldown and recovery.

``dispatch(report)`` is meant to be called for every sample of a long-running process (the
monitor, a worker): it sends each problem once, again only after ``ALERTS["COOLDOWN"]``
seconds (sooner if it got worse), and one ``resolved`` alert when the problem clears.

The cooldown state lives in this process's memory. With ``ALERTS["CACHE"]`` naming a
Django cache shared by the processes (Redis, Memcached, the database cache), each alert is
also claimed there with an atomic ``cache.add()`` before it is sent, so N monitors or web
workers send it once. When that cache cannot be reached, each process decides alone (its
alerts still go out, once per process) and logs why.

Handlers come from ``DBCONNMGR["ALERTS"]["HANDLERS"]``: a dotted path to a callable taking
an :class:`Alert` (a class is instantiated first), or ``{"HANDLER": path, "OPTIONS": {...}}``
whose options are passed to the class. A handler that raises is logged on
``dbconnmgr.alerts`` and the others still run; ``dispatch`` never raises.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from django.utils.module_loading import import_string

from dbconnmgr import app_settings
from dbconnmgr.core.health import Finding, FindingCode, Report, Severity
from dbconnmgr.exceptions import InvalidSetting

__all__ = [
    "Alert",
    "AlertDispatcher",
    "LoggingHandler",
    "MailAdminsHandler",
    "WebhookHandler",
    "dispatch",
    "load_handlers",
    "reset",
]

logger = logging.getLogger("dbconnmgr.alerts")

AlertHandler = Callable[["Alert"], object]


@dataclass(frozen=True)
class Alert:
    """One message about one finding.

    Attributes:
        alias: the Django database alias.
        finding: the finding (for ``resolved``, the check's current, ok or absent, result).
        resolved: True when this alert says a problem has cleared.
        previous: for ``resolved``, the severity that was announced.
        sent_at: when it was dispatched (UTC).
    """

    alias: str
    finding: Finding
    resolved: bool = False
    previous: Severity | None = None
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def status(self) -> str:
        """``firing`` or ``resolved``."""
        return "resolved" if self.resolved else "firing"

    @property
    def severity(self) -> Severity:
        """The finding's severity (``ok`` for a resolved alert)."""
        return Severity.OK if self.resolved else self.finding.severity

    @property
    def title(self) -> str:
        """A one-line subject: ``[dbconnmgr] default: CRITICAL utilization``."""
        what = self.finding.key
        if self.resolved:
            was = self.previous.label if self.previous else "a problem"
            return f"[dbconnmgr] {self.alias}: RESOLVED {what} (was {was})"
        return f"[dbconnmgr] {self.alias}: {self.severity.label.upper()} {what}"

    @property
    def text(self) -> str:
        """The title and the finding's message."""
        return f"{self.title}: {self.finding.message}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON document webhooks receive (``text`` makes it a valid Slack message)."""
        return {
            "text": self.text,
            "alias": self.alias,
            "status": self.status,
            "severity": self.severity.label,
            "previous_severity": self.previous.label if self.previous else None,
            "code": self.finding.code,
            "subject": self.finding.subject,
            "message": self.finding.message,
            "data": self.finding.data,
            "sent_at": self.sent_at.isoformat(),
        }


# -- handlers ---------------------------------------------------------------------------------
class LoggingHandler:
    """Log each alert on ``logger``: WARNING, ERROR for critical and unknown, INFO resolved.

    Args:
        logger: the logger's name.
    """

    def __init__(self, logger: str = "dbconnmgr.alerts") -> None:
        self.logger = logging.getLogger(logger)

    def __call__(self, alert: Alert) -> None:
        """Log it."""
        level = {
            Severity.OK: logging.INFO,
            Severity.WARNING: logging.WARNING,
        }.get(alert.severity, logging.ERROR)
        self.logger.log(level, "%s", alert.text, extra={"alert": alert.as_dict()})


class MailAdminsHandler:
    """Mail ``settings.ADMINS`` through Django's ``mail_admins``.

    Args:
        fail_silently: passed to ``mail_admins``; by default a failure is raised, which
            dispatch logs.
    """

    def __init__(self, fail_silently: bool = False) -> None:
        self.fail_silently = fail_silently

    def __call__(self, alert: Alert) -> None:
        """Send one mail."""
        from django.core.mail import mail_admins

        body = json.dumps(alert.as_dict(), indent=2, default=str)
        mail_admins(alert.title, f"{alert.text}\n\n{body}\n", fail_silently=self.fail_silently)


class WebhookHandler:
    """POST each alert as JSON (:meth:`Alert.as_dict`) to ``url``.

    Failures (refused, timeout, a non-2xx answer) are logged on ``dbconnmgr.alerts`` and
    never raised.

    Args:
        url: an ``http://`` or ``https://`` URL.
        timeout: seconds for the whole request.
        headers: extra headers (``Authorization``...).
    """

    def __init__(
        self, url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        self.url = url
        self.timeout = float(timeout)
        self.headers = dict(headers or {})

    def __call__(self, alert: Alert) -> None:
        """POST it."""
        body = json.dumps(alert.as_dict(), default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(1024)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            logger.warning("dbconnmgr webhook %s failed for %s: %s", self.url, alert.title, reason)


def load_handlers(specs: Any = None) -> list[tuple[str, AlertHandler]]:
    """Build the handlers of ``specs`` (default: ``ALERTS["HANDLERS"]``) as (name, callable).

    A spec that does not import or build is logged and skipped, never raised; specs that
    are not a list (a lone string would be read character by character) are logged in one
    line and no handler is loaded.
    """
    if specs is None:
        try:
            specs = app_settings.alert_settings()["HANDLERS"]
        except InvalidSetting as exc:
            logger.error("dbconnmgr alerts: no handler loaded: %s", exc)
            return []
    if specs is not None and not isinstance(specs, list | tuple):
        logger.error("dbconnmgr alerts: no handler loaded: handlers must be a list, got %r", specs)
        return []
    handlers: list[tuple[str, AlertHandler]] = []
    for spec in specs or ():
        try:
            name, handler = build_handler(spec)
        except Exception:
            logger.exception("dbconnmgr alert handler %r could not be loaded", spec)
            continue
        handlers.append((name, handler))
    return handlers


def build_handler(spec: Any) -> tuple[str, AlertHandler]:
    """One handler from a dotted path or a ``{"HANDLER": path, "OPTIONS": {...}}`` dict.

    Raises:
        ImportError, TypeError, ValueError: the spec is wrong.
    """
    if isinstance(spec, str):
        path, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("HANDLER"), str):
        path, options = spec["HANDLER"], dict(spec.get("OPTIONS") or {})
    else:
        raise TypeError(
            f"an alert handler is a dotted path or {{'HANDLER': path, 'OPTIONS': {{}}}}, "
            f"got {spec!r}"
        )
    target = import_string(path)
    if isinstance(target, type):
        handler = target(**options)
    elif options:
        raise TypeError(f"{path} is not a class: it takes no OPTIONS")
    else:
        handler = target
    if not callable(handler):
        raise TypeError(f"{path} is not callable")
    return path, handler


# -- dispatch ---------------------------------------------------------------------------------
@dataclass
class _State:
    announced: Severity | None = None  # severity last sent as firing and not yet resolved
    sent_at: dict[Severity, float] = field(default_factory=dict)
    active: bool = False


class AlertDispatcher:
    """Cooldown and recovery bookkeeping for one process.

    Args:
        clock: seconds, monotonic (``time.monotonic``).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._states: dict[tuple[str, str], _State] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every finding (the next problem is sent at once)."""
        with self._lock:
            self._states.clear()

    def plan(self, report: Report) -> list[Alert]:
        """Decide which alerts ``report`` causes and record them as sent."""
        settings = app_settings.alert_settings()
        cooldown = float(settings["COOLDOWN"])
        floor = Severity.from_label(str(settings["MIN_SEVERITY"])).rank
        now = self.clock()
        alerts: list[Alert] = []
        current = {f.key: f for f in report.findings}
        evaluated = report.evaluated_codes
        with self._lock:
            for finding in report.findings:
                key = (report.alias, finding.key)
                state = self._states.get(key)
                if finding.severity.rank < max(floor, 1):
                    continue
                if state is None:
                    state = self._states[key] = _State()
                state.active = True
                recent = any(
                    now - sent < cooldown
                    for severity, sent in state.sent_at.items()
                    if severity.rank >= finding.severity.rank
                )
                if not recent and self._claim(report.alias, finding, cooldown, settings):
                    state.sent_at[finding.severity] = now
                    state.announced = finding.severity
                    alerts.append(Alert(report.alias, finding))
            for (alias, fkey), state in list(self._states.items()):
                if alias != report.alias or not state.active:
                    continue
                now_found = current.get(fkey)
                still = now_found is not None and now_found.severity.rank >= max(floor, 1)
                code = cast(FindingCode, fkey.split(":", 1)[0])
                if still or (now_found is None and code not in evaluated):
                    continue  # still a problem, or not evaluated this time (server down)
                state.active = False
                if state.announced is not None:
                    cleared = now_found or Finding(code, Severity.OK, "no longer reported")
                    resolved = Alert(alias, cleared, resolved=True, previous=state.announced)
                    if self._claim_resolved(alias, fkey, state.announced, cooldown, settings):
                        alerts.append(resolved)
                    state.announced = None
            # Forget cleared findings whose cooldown is over.
            for key, state in list(self._states.items()):
                if not state.active and all(now - s >= cooldown for s in state.sent_at.values()):
                    del self._states[key]
        return alerts

    # -- the state shared between processes (ALERTS["CACHE"]) ----------------------------------

    def _shared(self, settings: Mapping[str, Any]) -> Any:
        """The cache named by ``ALERTS["CACHE"]``, or None (per process)."""
        alias = settings.get("CACHE")
        if not alias:
            return None
        from django.core.cache import caches

        return caches[alias]

    def _claim(
        self, alias: str, finding: Finding, cooldown: float, settings: Mapping[str, Any]
    ) -> bool:
        """True when this process is the one to send ``finding`` now.

        Another process claimed it (at this severity or a worse one) within the cooldown:
        False. The claim is ``cache.add()``, atomic in every shared Django cache.
        """
        cache = self._shared(settings)
        if cache is None:
            return True
        base = f"dbconnmgr:alert:{alias}:{finding.key}"
        worse = [f"{base}:{s.label}" for s in Severity if s.rank > finding.severity.rank]
        try:
            if worse and cache.get_many(worse):
                return False
            if not cache.add(f"{base}:{finding.severity.label}", 1, timeout=max(cooldown, 1)):
                return False
            cache.delete(f"{base}:resolved")  # firing again: its next recovery is news
            return True
        except Exception as exc:  # the cache is down: decide alone, say so
            return _cache_down(settings, exc, alias)

    def _claim_resolved(
        self,
        alias: str,
        key: str,
        announced: Severity,
        cooldown: float,
        settings: Mapping[str, Any],
    ) -> bool:
        """True when this process sends the resolved alert; frees the firing claims."""
        cache = self._shared(settings)
        if cache is None:
            return True
        base = f"dbconnmgr:alert:{alias}:{key}"
        try:
            if not cache.add(f"{base}:resolved", 1, timeout=max(cooldown, 1)):
                return False
            cache.delete_many([f"{base}:{s.label}" for s in Severity])
            return True
        except Exception as exc:
            return _cache_down(settings, exc, alias)

    def dispatch(self, report: Report) -> list[Alert]:
        """Send the alerts ``report`` causes to every handler and the signal.

        Returns:
            The alerts sent (empty within the cooldown). Never raises.
        """
        try:
            alerts = self.plan(report)
        except InvalidSetting as exc:
            logger.error("dbconnmgr alerts: nothing sent for %s: %s", report.alias, exc)
            return []
        except Exception:
            logger.exception("dbconnmgr alerts: could not evaluate report for %s", report.alias)
            return []
        if alerts:
            deliver(alerts)
        return alerts


def _cache_down(settings: Mapping[str, Any], exc: Exception, alias: str) -> bool:
    """Log that the shared cache failed; this process then decides alone (True)."""
    logger.warning(
        "dbconnmgr alerts: cache %r unavailable (%s): %s decided by this process only",
        settings.get("CACHE"), exc, alias,
    )  # fmt: skip
    return True


def deliver(alerts: list[Alert], handlers: list[tuple[str, AlertHandler]] | None = None) -> None:
    """Give each alert to every handler, then send ``connection_alert``; never raises."""
    from dbconnmgr.signals import connection_alert

    if handlers is None:
        handlers = load_handlers()
    for alert in alerts:
        for name, handler in handlers:
            try:
                handler(alert)
            except Exception:
                logger.exception("dbconnmgr alert handler %s failed for %s", name, alert.title)
        for receiver, result in connection_alert.send_robust(sender=Alert, alert=alert):
            if isinstance(result, Exception):
                logger.error(
                    "dbconnmgr connection_alert receiver %r failed for %s: %r",
                    receiver,
                    alert.title,
                    result,
                    exc_info=result,
                )


_dispatcher = AlertDispatcher()


def dispatch(report: Report) -> None:
    """Send ``report``'s new, repeated (after the cooldown) and resolved findings.

    Uses the process-wide dispatcher; see the module docstring for the rules.
    """
    _dispatcher.dispatch(report)


def reset() -> None:
    """Forget the process-wide cooldown state."""
    _dispatcher.reset()
