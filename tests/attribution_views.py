"""Views for tests/test_attribution.py: each takes a connection and holds it until told."""

from __future__ import annotations

import threading

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests import urls as test_urls

#: Set by a view once it holds its transaction; the test sets RELEASE to let it finish.
HELD = threading.Event()
RELEASE = threading.Event()


def _hold() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # takes the connection
        HELD.set()
        RELEASE.wait(20)


def hold_transaction(request: HttpRequest) -> HttpResponse:
    """Opens a transaction, runs one statement, and sits idle in it until released."""
    _hold()
    return HttpResponse("released")


async def hold_transaction_async(request: HttpRequest) -> HttpResponse:
    """The same from an async view (the ORM through sync_to_async)."""
    await sync_to_async(_hold)()
    return HttpResponse("released")


urlpatterns = [
    path("hold/", hold_transaction, name="hold"),
    path("hold-async/", hold_transaction_async, name="hold-async"),
    *test_urls.urlpatterns,
]
