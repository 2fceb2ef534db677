"""Django app configuration."""

from __future__ import annotations

from django.apps import AppConfig


class DbConnMgrConfig(AppConfig):
    """dbconnmgr's AppConfig."""

    name = "dbconnmgr"
    verbose_name = "Database connection manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks, and count new connections of unpooled aliases."""
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from dbconnmgr import checks  # noqa: F401
        from dbconnmgr.process_stats import needs_signal, on_connection_created

        if needs_signal(getattr(settings, "DATABASES", {})):
            connection_created.connect(
                on_connection_created, dispatch_uid="dbconnmgr.process_stats"
            )
