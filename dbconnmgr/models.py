"""Recorded monitoring samples (``--action=monitor --record``), read by ``--action=peak``.

Samples are written through the ORM, so they land where the project's database routers
send the ``dbconnmgr`` app (the ``default`` alias without a router), whichever alias was
monitored; ``alias`` says which one that was.
"""

from __future__ import annotations

from django.db import models


class ConnectionSample(models.Model):
    """The connection counts of one database alias at one moment."""

    taken_at = models.DateTimeField(db_index=True, help_text="the monitored server's clock")
    alias = models.CharField(max_length=100, help_text="the Django alias monitored")
    vendor = models.CharField(max_length=30)
    total_connections = models.PositiveIntegerField()
    active_connections = models.PositiveIntegerField(help_text="active, the monitor's own excluded")
    idle_in_transaction_connections = models.PositiveIntegerField()
    waiting_connections = models.PositiveIntegerField()
    max_connections = models.PositiveIntegerField()
    usable_connections = models.PositiveIntegerField()
    utilization_percent = models.FloatField(help_text="% of usable slots")
    by_state = models.JSONField(default=dict, help_text="{state: count}")
    by_application = models.JSONField(default=dict, help_text="{application_name: count}")
    load = models.JSONField(
        null=True,
        blank=True,
        help_text="active sessions by wait_class, application and code",
    )
    refused_connections = models.PositiveIntegerField(
        null=True, blank=True, help_text="refused since the previous sample (engines that count)"
    )

    class Meta:
        ordering = ("-taken_at",)
        indexes = (models.Index(fields=("alias", "taken_at")),)
        get_latest_by = "taken_at"
        verbose_name = "connection sample"

    def __str__(self) -> str:
        return f"{self.alias} {self.taken_at:%Y-%m-%d %H:%M:%S}: {self.total_connections}"


class Connections(models.Model):
    """The admin page of live connections: no table, only its permissions.

    Grant ``dbconnmgr.view_connections`` to see the page, ``dbconnmgr.view_query_text`` to
    also see what each session runs, ``dbconnmgr.terminate_connections`` to cancel queries
    and terminate sessions from it (staff users only; superusers have all three).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = (
            ("view_connections", "Can see the database connections page"),
            ("view_query_text", "Can see the query text of database connections"),
            ("terminate_connections", "Can cancel queries and terminate database sessions"),
        )
        verbose_name = "connections"
        verbose_name_plural = "connections"

    def __str__(self) -> str:
        return "connections"
