"""A django-health-check check reporting dbconnmgr's findings for one database alias.

``pip install django-health-check`` (4.x), then in the project's ``urls.py``::

    from health_check.views import HealthCheckView

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "dbconnmgr.contrib.health_check.ConnectionHealth",   # the "default" alias
        ("dbconnmgr.contrib.health_check.ConnectionHealth", {"alias": "replica"}),
    ])),

django-health-check's own ``Database`` check answers "can I run a query"; this one answers
"is the server about to run out of connections": the checks of ``--action=health``
(utilization of the usable slots, idle in transaction, long transactions, lock waits, a
full or unreachable server...). A critical or unknown report raises ``ServiceUnavailable``,
a warning ``ServiceWarning`` (django-health-check counts both as failing: pass
``warnings=False`` to report critical and unknown only). The message names the status and
the finding codes only, never roles, databases or queries: health pages are often public;
``manage.py db_connections --action=health`` (or the staff endpoint) gives the details.
"""

from __future__ import annotations

import dataclasses
import datetime

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from dbconnmgr.core.findings import Severity

__all__ = ["ConnectionHealth"]


@dataclasses.dataclass
class ConnectionHealth(HealthCheck):  # type: ignore[misc]  # untyped base
    """dbconnmgr's health report of ``alias`` as a django-health-check check.

    Attributes:
        alias: the Django database alias to judge.
        warnings: a warning report fails the check too (``ServiceWarning``).
        timeout: django-health-check's budget for the check; the read itself is bounded
            by the alias's ``connect_timeout``.
    """

    alias: str = "default"
    warnings: bool = dataclasses.field(default=True, repr=False)
    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=10), repr=False
    )

    def run(self) -> None:
        """Judge the alias (in django-health-check's executor thread) and raise its status.

        Raises:
            ServiceUnavailable: critical or unknown (an unreachable or full server included).
            ServiceWarning: a warning, when :attr:`warnings` is on.
        """
        from django.db import connections

        from dbconnmgr.exceptions import DbConnMgrError
        from dbconnmgr.health import check_health

        try:
            report = check_health(self.alias)
        except DbConnMgrError as exc:  # an unknown alias, an engine dbconnmgr cannot read
            raise ServiceUnavailable(f"dbconnmgr cannot judge {self.alias!r}: {exc}") from None
        finally:
            # This thread is django-health-check's; its Django connections end with it.
            connections.close_all()
        status = report.status
        if status is Severity.OK or (status is Severity.WARNING and not self.warnings):
            return
        codes = ", ".join(dict.fromkeys(f.code for f in report.problems))
        message = f"{status.label}: {codes} (manage.py db_connections --action=health)"
        if status is Severity.WARNING:
            raise ServiceWarning(message)
        raise ServiceUnavailable(message)
