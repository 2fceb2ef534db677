"""The HTTP health endpoint: JSON, 200 when ok or warning, 503 when critical or unknown.

Only staff users (Django's session login) and callers sending
``Authorization: Bearer <token>`` with a token from ``DBCONNMGR["HEALTH_TOKENS"]`` get an
answer: 401 without credentials or with a wrong token, 403 for a logged-in non-staff user.
The document is :func:`dbconnmgr.check_connection_health`'s: counts, ages, pids,
application and role names; never query text or client addresses.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from dbconnmgr import check_connection_health
from dbconnmgr.app_settings import get_setting
from dbconnmgr.exceptions import UnknownDatabaseAlias, UnsupportedDatabase

__all__ = ["health"]

_UNHEALTHY = {"critical", "unknown"}


def _token_ok(request: HttpRequest) -> bool | None:
    """True for a configured token, False for a wrong one, None when none was sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    sent = token.strip().encode()
    tokens = get_setting("HEALTH_TOKENS") or ()
    # compare_digest against every token: the time taken does not tell which one matched.
    matches = [hmac.compare_digest(sent, str(t).encode()) for t in tokens if t]
    return any(matches)


def _denied(status: int, error: str) -> JsonResponse:
    response = JsonResponse({"error": error}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="dbconnmgr"'
    return response


@login_not_required
@never_cache
@require_safe
def health(request: HttpRequest, alias: str = "default") -> JsonResponse:
    """Evaluate database ``alias`` and answer with the health document."""
    token = _token_ok(request)
    user: Any = getattr(request, "user", None)
    if token is False:
        return _denied(401, "invalid token")
    if token is None:
        if user is None or not user.is_authenticated:
            return _denied(401, "authentication required: log in as staff or send a token")
        if not user.is_staff:
            return _denied(403, "staff only")
    try:
        payload = check_connection_health(alias)
    except (UnknownDatabaseAlias, UnsupportedDatabase) as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    status = 503 if payload["status"] in _UNHEALTHY else 200
    return JsonResponse(payload, status=status)
