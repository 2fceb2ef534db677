"""Django app configuration."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

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
                _start_publisher_after_fork(start_publisher)


_fork_hook_registered = False


def _start_publisher_after_fork(start: Callable[[], None]) -> None:
    """A process forked later (gunicorn ``--preload``) starts its own writer.

    Registered here, once per process, rather than when metrics.py is imported: an
    at-fork hook cannot be removed, so only a project in multiprocess mode gets one.
    """
    global _fork_hook_registered
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=start)
        _fork_hook_registered = True
