"""Prometheus metrics: the server's connections (one snapshot per alias, read at scrape time)
and this process's pool and connection figures. Needs ``dbconnmgr[prometheus]``.

Names follow postgres_exporter where it exports the same thing
(``pg_stat_activity_count{datname,state,usename,application_name}``,
``pg_settings_max_connections``); the rest are ``dbconnmgr_*``. docs/metrics.md lists them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dbconnmgr import process_stats

__all__ = ["DatabaseCollector"]


class DatabaseCollector(Collector):
    """Reads every alias once per scrape: register it on a per-request registry."""

    def __init__(self, aliases: Sequence[str]) -> None:
        self.aliases = list(aliases)

    def collect(self) -> Iterator[Metric]:
        """Server gauges, then this process's figures."""
        yield from self._server()
        yield from self._process()

    def _server(self) -> Iterator[Metric]:
        from dbconnmgr.app_settings import thresholds
        from dbconnmgr.backends import working_backend
        from dbconnmgr.core.health import Severity, evaluate, evaluate_unavailable
        from dbconnmgr.exceptions import ServerUnavailable

        labels = ["alias"]
        up = GaugeMetricFamily("dbconnmgr_up", "1 when the server could be read", labels=labels)
        activity = GaugeMetricFamily(
            "pg_stat_activity_count",
            "client connections by database, state, role and application",
            labels=["alias", "datname", "state", "usename", "application_name"],
        )
        max_conns = GaugeMetricFamily(
            "pg_settings_max_connections", "the server's max_connections", labels=labels
        )
        usable = GaugeMetricFamily(
            "dbconnmgr_usable_connections",
            "slots ordinary roles can use (max_connections minus reserved; the binding limit)",
            labels=labels,
        )
        clients = GaugeMetricFamily(
            "dbconnmgr_client_connections", "client backends using slots", labels=labels
        )
        utilization = GaugeMetricFamily(
            "dbconnmgr_utilization_ratio",
            "client connections / usable slots (0-1)",
            labels=labels,
        )
        active = GaugeMetricFamily(
            "dbconnmgr_active_sessions", "sessions running a query now", labels=labels
        )
        findings = GaugeMetricFamily(
            "dbconnmgr_findings", "health findings by severity", labels=["alias", "severity"]
        )
        limits = thresholds()
        for alias in self.aliases:
            try:
                with working_backend(alias) as backend:
                    snapshot = backend.snapshot()
            except ServerUnavailable as exc:
                up.add_metric([alias], 0)
                report = evaluate_unavailable(exc)
            else:
                up.add_metric([alias], 1)
                report = evaluate(snapshot, limits)
                groups: Counter[tuple[str, str, str, str]] = Counter(
                    (c.database or "", c.state or "", c.user or "", c.application_name or "")
                    for c in snapshot.connections
                )
                for key, count in sorted(groups.items()):
                    activity.add_metric([alias, *key], count)
                max_conns.add_metric([alias], snapshot.max_connections)
                usable.add_metric([alias], snapshot.usable_connections)
                clients.add_metric([alias], snapshot.total_connections)
                utilization.add_metric([alias], snapshot.utilization_percent / 100.0)
                active.add_metric([alias], snapshot.active_connections)
            severities = Counter(finding.severity for finding in report.findings)
            for severity in Severity:
                findings.add_metric([alias, severity.label], severities.get(severity, 0))
        yield from (up, activity, max_conns, usable, clients, utilization, active, findings)

    def _process(self) -> Iterator[Metric]:
        labels = ["alias"]
        gauges: dict[str, tuple[str, GaugeMetricFamily]] = {
            name: (attr, GaugeMetricFamily(name, text, labels=labels))
            for name, attr, text in (
                ("dbconnmgr_pool_max", "pool_max", "the pool's max_size in this process"),
                ("dbconnmgr_pool_size", "pool_size", "connections the pool holds"),
                ("dbconnmgr_pool_available", "pool_available", "idle connections in the pool"),
                ("dbconnmgr_pool_waiting", "requests_waiting", "requests waiting for one"),
                ("dbconnmgr_pool_in_use", "in_use", "pooled connections Django holds"),
            )
        }
        counters: dict[str, tuple[str, CounterMetricFamily]] = {
            name: (attr, CounterMetricFamily(name, text, labels=labels))
            for name, attr, text in (
                ("dbconnmgr_pool_requests", "requests", "connections asked of the pool"),
                ("dbconnmgr_pool_wait_seconds", "wait_seconds", "time requests waited"),
                ("dbconnmgr_pool_timeouts", "timeouts", "requests that gave up waiting"),
                ("dbconnmgr_pool_rejected", "rejected", "requests the gate refused at once"),
                ("dbconnmgr_connections_opened", "opened", "server connections opened"),
                ("dbconnmgr_connections_closed", "closed", "server connections closed"),
            )
        }
        failures = CounterMetricFamily(
            "dbconnmgr_connection_failures",
            "failed connection attempts by cause",
            labels=["alias", "cause"],
        )
        for figures in process_stats.collect(self.aliases):
            values: dict[str, Any] = {
                attr: getattr(figures, attr) for attr, _ in [*gauges.values(), *counters.values()]
            }
            for attr, family in gauges.values():
                if values[attr] is not None:
                    family.add_metric([figures.alias], values[attr])
            for attr, counter in counters.values():
                counter.add_metric([figures.alias], values[attr])
            for cause, count in figures.failures.items():
                failures.add_metric([figures.alias, cause], count)
        for _, family in gauges.values():
            yield family
        for _, counter in counters.values():
            yield counter
        yield failures
