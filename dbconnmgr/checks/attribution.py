"""System check of attribution: are requests labelled when attribution is on?

``DBCONNMGR["ATTRIBUTION"] = True`` labels management commands and Celery tasks by itself;
requests are labelled by :class:`dbconnmgr.attribution.AttributionMiddleware`, which only
``MIDDLEWARE`` can install. Without it every view's statements go out unlabelled and the
``by code`` groupings show them as ``unknown``: ``dbconnmgr.W017`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.checks import CheckMessage, Warning, register

__all__ = ["MIDDLEWARE_PATH", "check_attribution_middleware", "labels_requests"]

#: The dotted path of the middleware that labels requests.
MIDDLEWARE_PATH = "dbconnmgr.attribution.AttributionMiddleware"


def labels_requests(middleware: Iterable[Any]) -> bool:
    """True when ``middleware`` (``settings.MIDDLEWARE``) holds the attribution middleware
    or a subclass of it (an entry that does not import is left to Django's own errors)."""
    from django.utils.module_loading import import_string

    from dbconnmgr.attribution import AttributionMiddleware

    for entry in middleware:
        if entry == MIDDLEWARE_PATH:
            return True
        if not isinstance(entry, str):
            continue
        try:
            found = import_string(entry)
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, AttributionMiddleware):
            return True
    return False


@register("dbconnmgr")
def check_attribution_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W017: attribution is on, but no middleware labels the requests."""
    from django.conf import settings

    options = getattr(settings, "DBCONNMGR", None)
    if not isinstance(options, Mapping) or options.get("ATTRIBUTION") is not True:
        return []
    if labels_requests(getattr(settings, "MIDDLEWARE", None) or ()):
        return []
    return [
        Warning(
            'DBCONNMGR["ATTRIBUTION"] is True but MIDDLEWARE has no '
            f"{MIDDLEWARE_PATH}: commands and tasks are labelled, the statements of views "
            "are not (status, health, the admin page and /metrics count them as 'unknown').",
            hint=f'Put "{MIDDLEWARE_PATH}" first in MIDDLEWARE (docs/attribution.md); if '
            "this process serves no requests, silence dbconnmgr.W017.",
            id="dbconnmgr.W017",
        )
    ]
