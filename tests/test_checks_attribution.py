"""System check W017: attribution on, but no middleware labels the requests."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks

from dbconnmgr.attribution import AttributionMiddleware
from dbconnmgr.checks.attribution import MIDDLEWARE_PATH, labels_requests

pytestmark = pytest.mark.engine_neutral

BASE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


class LabellingMiddleware(AttributionMiddleware):
    """A project's own subclass labels requests too."""


def _w017() -> list[Any]:
    return [m for m in run_checks(tags=["dbconnmgr"]) if m.id == "dbconnmgr.W017"]


def test_w017_fires_without_the_middleware_and_clears_with_it(settings: Any) -> None:
    settings.DBCONNMGR = {"ATTRIBUTION": True}
    settings.MIDDLEWARE = BASE
    [message] = _w017()
    assert message.level == 30  # a warning: commands and tasks are still labelled
    assert MIDDLEWARE_PATH in message.msg and "'unknown'" in message.msg
    assert "first in MIDDLEWARE" in message.hint

    settings.MIDDLEWARE = [MIDDLEWARE_PATH, *BASE]
    assert _w017() == []
    settings.MIDDLEWARE = [*BASE, f"{__name__}.LabellingMiddleware"]
    assert _w017() == []


@pytest.mark.parametrize("options", [{}, {"ATTRIBUTION": False}, {"ATTRIBUTION": "on"}])
def test_w017_is_silent_when_attribution_is_off(settings: Any, options: dict[str, Any]) -> None:
    # "on" is E125's to report (not a bool), not W017's
    settings.DBCONNMGR = options
    settings.MIDDLEWARE = BASE
    assert _w017() == []


def test_entries_that_do_not_import_are_left_to_django() -> None:
    assert not labels_requests(["no.such.Middleware", *BASE])
    assert labels_requests(["no.such.Middleware", MIDDLEWARE_PATH])
