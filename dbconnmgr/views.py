"""The HTTP health endpoint: JSON, 200 when ok or warning, 503 when critical or unknown.

Callers sending ``Authorization: Bearer <token>`` with a token from
``DBCONNMGR["HEALTH_TOKENS"]``, and staff users logged in with Django's session who have the
``dbconnmgr.view_connections`` permission (the admin page's), get an answer: 401 without
credentials or with a wrong token, 403 for a logged-in user who is not staff or lacks the
permission.
An invalid ``HEALTH_TOKENS`` (not a list of strings) refuses everyone with 401 and logs
why; invalid ``THRESHOLDS`` answer 503 with status ``unknown``. Only GET and HEAD are
allowed: other methods get 405 JSON with an ``Allow`` header (no CSRF page).
The document is :func:`dbconnmgr.check_connection_health`'s: counts, ages, pids,
application and role names; never query text or client addresses.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from dbconnmgr import check_connection_health
from dbconnmgr.app_settings import get_setting
from dbconnmgr.core.health import Finding, Report, Severity
from dbconnmgr.exceptions import InvalidSetting, UnknownDatabaseAlias, UnsupportedDatabase
from dbconnmgr.payloads import health_payload

__all__ = ["health", "metrics"]

logger = logging.getLogger("dbconnmgr")

_UNHEALTHY = {"critical", "unknown"}
#: The admin page's permission (dbconnmgr.admin.VIEW); a session needs it here too.
VIEW_PERMISSION = "dbconnmgr.view_connections"
_ALLOWED = ("GET", "HEAD")


def _token_ok(request: HttpRequest, tokens: Sequence[str]) -> bool | None:
    """True for one of ``tokens``, False for a wrong one, None when none was sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    sent = token.strip().encode()
    matched = False
    # compare_digest against every token: the time taken does not tell which one matched.
    for configured in tokens:
        matched |= hmac.compare_digest(sent, configured.encode())
    return matched


def _denied(status: int, error: str) -> JsonResponse:
    response = JsonResponse({"error": error}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="dbconnmgr"'
    return response


def _safe_methods_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """405 JSON with an ``Allow`` header for anything but GET and HEAD."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in _ALLOWED:
            response = JsonResponse(
                {"error": f"method {request.method} not allowed: use GET or HEAD"}, status=405
            )
            response["Allow"] = ", ".join(_ALLOWED)
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _unknown(alias: str, exc: InvalidSetting) -> JsonResponse:
    """503 with the health document of a check that could not run as configured."""
    finding = Finding("settings", Severity.UNKNOWN, str(exc), {"key": exc.key})
    report = Report(alias=alias, status=Severity.UNKNOWN, findings=(finding,), snapshot=None)
    return JsonResponse(health_payload(report), status=503)


def _authorize(request: HttpRequest) -> JsonResponse | None:
    """None when the caller may read, else the answer.

    A health token, or a staff session with the admin page's view permission: the document
    shows what the page shows (pids, roles, application names), so the same people see it.
    """
    try:
        tokens = get_setting("HEALTH_TOKENS") or ()
    except InvalidSetting as exc:
        # Fail closed, staff included: a string would otherwise make each character a token.
        logger.error("dbconnmgr health endpoint refuses every request: %s", exc)
        return _denied(401, "health endpoint misconfigured: see the server log")
    token = _token_ok(request, tokens)
    user: Any = getattr(request, "user", None)
    if token is False:
        return _denied(401, "invalid token")
    if token is None:
        if user is None or not user.is_authenticated:
            return _denied(401, "authentication required: log in as staff or send a token")
        if not user.is_staff:
            return _denied(403, "staff only")
        if not user.has_perm(VIEW_PERMISSION):
            return _denied(403, f"needs the {VIEW_PERMISSION} permission")
    return None


@csrf_exempt  # read-only, token or session authenticated; POST gets a 405, not a CSRF page
@login_not_required
@never_cache
@_safe_methods_only
def health(request: HttpRequest, alias: str = "default") -> JsonResponse:
    """Evaluate database ``alias`` and answer with the health document."""
    denied = _authorize(request)
    if denied is not None:
        return denied
    try:
        payload = check_connection_health(alias)
    except (UnknownDatabaseAlias, UnsupportedDatabase) as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    except InvalidSetting as exc:
        logger.error("dbconnmgr health endpoint answers UNKNOWN for %r: %s", alias, exc)
        return _unknown(alias, exc)
    status = 503 if payload["status"] in _UNHEALTHY else 200
    return JsonResponse(payload, status=status)


@csrf_exempt
@login_not_required
@never_cache
@_safe_methods_only
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: the server's connections and this process's figures.

    Same authentication as :func:`health`. Every alias dbconnmgr can read, or those named
    by ``?alias=`` (repeatable); each is read once per scrape.
    """
    denied = _authorize(request)
    if denied is not None:
        return denied
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:
        return JsonResponse(
            {"error": "prometheus_client is not installed: pip install 'dbconnmgr[prometheus]'"},
            status=501,
        )
    from django.db import connections

    from dbconnmgr.metrics import DatabaseCollector, multiprocess_dir, publish, scraped_aliases

    aliases = request.GET.getlist("alias") or scraped_aliases()
    unknown = [alias for alias in aliases if alias not in connections.settings]
    if unknown:
        return JsonResponse({"error": f"unknown database alias {unknown[0]!r}"}, status=404)
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is None:
        registry.register(DatabaseCollector(aliases))
    else:
        # Several workers: each writes its figures to the shared files (this one now,
        # the others every PUBLISH_SECONDS); MultiProcessCollector sums them.
        from prometheus_client import multiprocess

        publish()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(DatabaseCollector(aliases, process_figures=False))
    try:
        body = generate_latest(registry)
    except InvalidSetting as exc:
        logger.error("dbconnmgr metrics endpoint cannot evaluate: %s", exc)
        return JsonResponse({"error": str(exc)}, status=503)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
