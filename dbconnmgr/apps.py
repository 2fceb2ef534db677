"""Django app configuration."""

from __future__ import annotations

from django.apps import AppConfig


class DbConnMgrConfig(AppConfig):
    """dbconnmgr's AppConfig."""

    name = "dbconnmgr"
    verbose_name = "Database connection manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks."""
        from dbconnmgr import checks  # noqa: F401
