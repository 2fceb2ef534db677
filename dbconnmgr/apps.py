"""Django app configuration."""

from __future__ import annotations

import contextlib
import os

from django.apps import AppConfig


class DbConnMgrConfig(AppConfig):
    """dbconnmgr's AppConfig."""

    name = "dbconnmgr"
    verbose_name = "Database connection manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks, count new connections of unpooled aliases, and in
        prometheus_client's multiprocess mode write this process's figures for ``/metrics``.
        """
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from dbconnmgr import checks  # noqa: F401
        from dbconnmgr.process_stats import needs_signal, on_connection_created

        if needs_signal(getattr(settings, "DATABASES", {})):
            connection_created.connect(
                on_connection_created, dispatch_uid="dbconnmgr.process_stats"
            )
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            with contextlib.suppress(ImportError):  # without the extra /metrics answers 501
                from dbconnmgr.metrics import start_publisher

                start_publisher()
