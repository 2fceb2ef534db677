"""``--action=health``: every check, exiting 0 ok, 1 warning, 2 critical, 3 unknown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dbconnmgr.app_settings import thresholds as configured_thresholds
from dbconnmgr.backends import get_backend
from dbconnmgr.cli import Action, reader_left
from dbconnmgr.cli.options import Options, option
from dbconnmgr.core.health import Severity, threshold_errors
from dbconnmgr.exceptions import DbConnMgrError, ServerUnavailable
from dbconnmgr.health import check_health, judge
from dbconnmgr.payloads import health_payload, nagios_perfdata

_SPEC = re.compile(r"^(?:(?P<kind>count|free):)?(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<pct>%)?$")
#: The largest count:N / free:N: PostgreSQL's largest max_connections.
_MAX_SLOTS = 262_143
_KEYS = {None: "UTILIZATION", "count": "CONNECTIONS", "free": "FREE_SLOTS"}


def parse_threshold(option: str, spec: str) -> tuple[str, float]:
    """``85`` or ``85%`` (percent of usable slots), ``count:120`` (connections in use),
    ``free:5`` (usable slots left) -> (THRESHOLDS key prefix, value).

    Raises:
        ValueError: the spec is not one of those forms.
    """
    match = _SPEC.match(spec.strip())
    if not match or (match["kind"] and match["pct"]):
        raise ValueError(
            f"{option}: expected a percentage of usable slots (85 or 85%), count:N "
            f"(connections in use) or free:N (usable slots left), got {spec!r}"
        )
    number = float(match["number"])
    if match["kind"]:
        if number != int(number):
            raise ValueError(f"{option}: {match['kind']}:N takes a whole number, got {spec!r}")
        if number > _MAX_SLOTS:
            raise ValueError(f"{option}: {match['kind']}:N must be <= {_MAX_SLOTS}, got {spec!r}")
        return _KEYS[match["kind"]], int(number)
    return _KEYS[None], int(number) if number == int(number) else number


def _threshold_option(level: str, default: int) -> Any:
    return option(
        f"--{level}",
        metavar="N|N%|count:N|free:N",
        help=(
            f"health {level} threshold for this run: percent of usable slots "
            f"(default DBCONNMGR THRESHOLDS, {default}), count:N connections in use "
            "or free:N usable slots left"
        ),
    )


@dataclass(frozen=True)
class HealthOptions(Options):
    """``--action=health``'s options: the thresholds of this run, parsed in run()."""

    warning: str | None = _threshold_option("warning", 70)
    critical: str | None = _threshold_option("critical", 85)


class HealthAction(Action[HealthOptions]):
    """Evaluate the connection checks; Nagios exit codes."""

    name = "health"
    help = "connection health checks; exit 0 ok, 1 warning, 2 critical, 3 unknown (Nagios)"
    options_type = HealthOptions
    reads_together = True

    def run(self) -> int:
        try:
            thresholds = self.thresholds()
            # An alias whose ENGINE cannot be loaded is one line, as for every action.
            get_backend(self.alias)
            read = self.given_read()
            if read is None:
                report = check_health(self.alias, thresholds)
            elif isinstance(read, DbConnMgrError) and not isinstance(read, ServerUnavailable):
                raise read  # an unknown alias, an engine dbconnmgr does not read: UNKNOWN
            else:  # a snapshot, or why the server could not be read: judged alike
                report = judge(self.alias, read, thresholds)
        except (DbConnMgrError, ValueError) as exc:
            # Nagios reads exit 1 as WARNING and 2 as CRITICAL: a check that cannot run is
            # UNKNOWN (3).
            self.command.stderr.write(f"UNKNOWN: {exc}")
            return int(Severity.UNKNOWN)
        try:
            if self.format == "json":
                self.write_json(health_payload(report, vendor=self.vendor()))
            else:
                from dbconnmgr.render import render_health

                render_health(self.renderer, report, nagios_perfdata(report, thresholds))
            self.command.stdout.flush()
        except BrokenPipeError:  # `health | head -1`: the exit code is still the verdict
            reader_left()
        return int(report.status)

    def vendor(self) -> str | None:
        """The alias's vendor (``postgresql``...), known even when the server is down."""
        from django.db import connections

        return connections[self.alias].vendor if self.alias in connections.settings else None

    def thresholds(self) -> dict[str, Any]:
        """The project's thresholds with --warning / --critical applied and validated."""
        merged = configured_thresholds()
        for level, spec in (("warning", self.options.warning), ("critical", self.options.critical)):
            if spec is not None:
                prefix, value = parse_threshold(f"--{level}", spec)
                merged[f"{prefix}_{level.upper()}"] = value
        errors = threshold_errors(merged)
        if errors:
            raise ValueError("; ".join(errors))
        return merged
