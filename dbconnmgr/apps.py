"""Django app configuration."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from django.apps import AppConfig


class DbConnMgrConfig(AppConfig):
    """dbconnmgr's AppConfig."""

    name = "dbconnmgr"
    verbose_name = "Database connection manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks, log how each alias holds its connections (one line
        each, at DEBUG), count new connections of unpooled aliases, and in prometheus_client's
        multiprocess mode have each process that serves requests write its figures for
        ``/metrics`` (from its first request: no thread in other processes).
        """
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from dbconnmgr import checks  # noqa: F401
        from dbconnmgr.database_settings import describe_pooling
        from dbconnmgr.process_stats import needs_signal, on_connection_created

        for alias, db in getattr(settings, "DATABASES", {}).items():
            if isinstance(db, dict):  # "is pooling working?": how each alias holds connections
                logging.getLogger("dbconnmgr").debug("%s", describe_pooling(alias, db))
        if needs_signal(getattr(settings, "DATABASES", {})):
            connection_created.connect(
                on_connection_created, dispatch_uid="dbconnmgr.process_stats"
            )
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Only a process that serves requests writes figures for /metrics: migrate,
            # shell or a Celery worker of a django-prometheus project start no thread.
            from django.core.signals import request_started

            request_started.connect(_publish_once_serving, dispatch_uid="dbconnmgr.metrics")


def _publish_once_serving(**kwargs: Any) -> None:
    """At a process's first request, start its writer of the multiprocess files.

    A process forked later (gunicorn ``--preload``) is a new pid: it starts its own at its
    first request. Without prometheus_client /metrics answers 501 and nothing starts.
    """
    with contextlib.suppress(ImportError):
        from dbconnmgr.metrics import start_publisher

        start_publisher()
