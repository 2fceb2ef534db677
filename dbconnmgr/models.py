"""Recorded monitoring samples (``--action=monitor --record``), read by ``--action=peak``,
and their hourly rollup, from which peak and the admin page's charts read whole hours.

Samples are written through the ORM, so they land where the project's database routers
send the ``dbconnmgr`` app (the ``default`` alias without a router), whichever alias was
monitored; ``alias`` says which one that was. The rollup lives beside them.
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
    wlm = models.JSONField(
        null=True,
        blank=True,
        help_text="the query queues (Redshift's WLM), null for engines without them",
    )

    class Meta:
        ordering = ("-taken_at",)
        indexes = (models.Index(fields=("alias", "taken_at")),)
        get_latest_by = "taken_at"
        verbose_name = "connection sample"

    def __str__(self) -> str:
        return f"{self.alias} {self.taken_at:%Y-%m-%d %H:%M:%S}: {self.total_connections}"


class ConnectionHour(models.Model):
    """The samples of one alias in one clock hour (UTC), summarised exactly.

    Written by ``--action=monitor --record`` for each finished hour, pruned with the
    samples, rebuilt from them by ``--action=rollup``. What peak and the charts need from
    an hour is here: a 1-year window reads about 8,760 of these instead of millions of
    samples. See :class:`dbconnmgr.core.hours.HourRow` for the meaning of each figure, and
    :class:`dbconnmgr.core.hours.HourLoad` for ``load``.
    """

    alias = models.CharField(max_length=100, help_text="the Django alias monitored")
    hour = models.DateTimeField(help_text="the hour's start (UTC)")
    samples = models.PositiveIntegerField()
    first_at = models.DateTimeField(help_text="the hour's first sample")
    last_at = models.DateTimeField(help_text="the hour's last sample")
    max_total_connections = models.PositiveIntegerField()
    max_at = models.DateTimeField(help_text="the first sample that saw the maximum")
    total_connections_sum = models.BigIntegerField()
    max_utilization_percent = models.FloatField()
    utilization_percent_sum = models.FloatField()
    histogram = models.JSONField(default=dict, help_text='{"total_connections": samples}')
    # Null for an hour rolled up before the rollup carried the load split: such hours are
    # read from their samples until the monitor (or --action=rollup) fills them in.
    load = models.JSONField(
        null=True,
        blank=True,
        help_text='{"active": n, "refused": n, "wait_class": {...}, "application": {...}, '
        '"code": {...}}: the load split summed over the hour',
    )

    class Meta:
        ordering = ("-hour",)
        constraints = (
            models.UniqueConstraint(fields=("alias", "hour"), name="dbconnmgr_hour_alias_hour"),
        )
        verbose_name = "connection hour"

    def __str__(self) -> str:
        return f"{self.alias} {self.hour:%Y-%m-%d %H}:00: max {self.max_total_connections}"


class RollupCoverage(models.Model):
    """The hours of one alias the rollup holds completely: ``[start, end)``.

    Hours outside it (not rolled up yet, or partly pruned) are read from the samples.
    """

    alias = models.CharField(max_length=100, unique=True)
    start = models.DateTimeField(help_text="the first hour covered")
    end = models.DateTimeField(help_text="hours before this one are covered")

    class Meta:
        verbose_name = "rollup coverage"
        verbose_name_plural = "rollup coverage"

    def __str__(self) -> str:
        return f"{self.alias}: {self.start:%Y-%m-%d %H}:00 to {self.end:%Y-%m-%d %H}:00"


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
