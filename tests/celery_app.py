"""A Celery app on the test suite's Django settings, for a real worker
(tests/test_attribution.py starts it on a throwaway Redis)."""

from __future__ import annotations

import os
import time

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_attribution")
django.setup()

app = Celery("tests", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="tests.celery_app.hold_connection")  # type: ignore[untyped-decorator]
def hold_connection(seconds: float) -> None:
    """Runs one statement in a transaction, then holds it idle for ``seconds``."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        time.sleep(seconds)
