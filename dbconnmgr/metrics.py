"""Prometheus metrics: the server's connections (one snapshot per alias, read at scrape time)
and this process's pool and connection figures. Needs ``dbconnmgr[prometheus]``.

Names follow postgres_exporter where it exports the same thing
(``pg_stat_activity_count{datname,state,usename,application_name}``,
``pg_settings_max_connections``); the rest are ``dbconnmgr_*``. docs/metrics.md lists them.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dbconnmgr import process_stats

__all__ = [
    "PUBLISH_SECONDS",
    "DatabaseCollector",
    "child_exit",
    "multiprocess_dir",
    "publish",
    "start_publisher",
]

#: this process's figures: (metric name, AliasFigures attribute, help)
GAUGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("dbconnmgr_pool_max", "pool_max", "the pool's max_size in this process"),
    ("dbconnmgr_pool_size", "pool_size", "connections the pool holds"),
    ("dbconnmgr_pool_available", "pool_available", "idle connections in the pool"),
    ("dbconnmgr_pool_waiting", "requests_waiting", "requests waiting for one"),
    ("dbconnmgr_pool_in_use", "in_use", "pooled connections Django holds"),
)
COUNTERS: Final[tuple[tuple[str, str, str], ...]] = (
    ("dbconnmgr_pool_requests", "requests", "connections asked of the pool"),
    ("dbconnmgr_pool_wait_seconds", "wait_seconds", "time requests waited"),
    ("dbconnmgr_pool_timeouts", "timeouts", "requests that gave up waiting"),
    ("dbconnmgr_pool_rejected", "rejected", "requests the gate refused at once"),
    ("dbconnmgr_connections_opened", "opened", "server connections opened"),
    ("dbconnmgr_connections_closed", "closed", "server connections closed"),
)
FAILURES: Final = ("dbconnmgr_connection_failures", "failed connection attempts by cause")
#: How often a process writes its figures to the multiprocess files (seconds).
PUBLISH_SECONDS: Final[float] = 1.0


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess directory when the mode is on, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scraped_aliases() -> list[str]:
    """Every alias dbconnmgr reads (the endpoint's default): :func:`dbconnmgr.health.
    readable_aliases`."""
    from dbconnmgr.health import readable_aliases

    return readable_aliases()


def _loaded(aliases: Sequence[str]) -> list[str]:
    """The aliases whose ENGINE loads: only they have a connection, hence process figures."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    found = []
    for alias in aliases:
        try:
            connections[alias]
        except ImproperlyConfigured:
            continue
        found.append(alias)
    return found


class DatabaseCollector(Collector):
    """Reads every alias once per scrape: register it on a per-request registry."""

    def __init__(self, aliases: Sequence[str], process_figures: bool = True) -> None:
        """``process_figures=False`` in multiprocess mode: MultiProcessCollector has them."""
        self.aliases = list(aliases)
        self.process_figures = process_figures

    def collect(self) -> Iterator[Metric]:
        """Server gauges, then this process's figures."""
        yield from self._server()
        if self.process_figures:
            yield from self._process()

    def _server(self) -> Iterator[Metric]:
        from dbconnmgr.core.figures import FIGURES, Figures
        from dbconnmgr.core.health import Severity
        from dbconnmgr.health import check_health, project_thresholds

        labels = ["alias"]
        up = GaugeMetricFamily("dbconnmgr_up", "1 when the server could be read", labels=labels)
        activity = GaugeMetricFamily(
            "pg_stat_activity_count",
            "client connections by database, state, role and application",
            labels=["alias", "datname", "state", "usename", "application_name"],
        )
        gauges = [
            (figure.name, metric, GaugeMetricFamily(metric.name, metric.help, labels=labels))
            for figure in FIGURES
            for metric in figure.metrics
        ]
        findings = GaugeMetricFamily(
            "dbconnmgr_findings", "health findings by severity", labels=["alias", "severity"]
        )
        limits = project_thresholds()
        for alias in self.aliases:
            # PgBouncer's findings included, as docs/metrics.md says of dbconnmgr_findings.
            report = check_health(alias, limits)
            snapshot = report.snapshot
            up.add_metric([alias], 0 if snapshot is None else 1)
            if snapshot is not None:
                groups: Counter[tuple[str, str, str, str]] = Counter(
                    (c.database or "", c.state or "", c.user or "", c.application_name or "")
                    for c in snapshot.connections
                )
                for key, count in sorted(groups.items()):
                    activity.add_metric([alias, *key], count)
                figures = Figures.of(snapshot)
                for name, metric, gauge in gauges:
                    value = figures[name]
                    if value is not None:  # a seconds figure without its session: no sample
                        gauge.add_metric([alias], value / metric.per if metric.per != 1 else value)
            severities = Counter(finding.severity for finding in report.findings)
            for severity in Severity:
                findings.add_metric([alias, severity.label], severities.get(severity, 0))
        yield from (up, activity)
        yield from (gauge for _, _, gauge in gauges)
        yield findings

    def _process(self) -> Iterator[Metric]:
        labels = ["alias"]
        gauges = [(a, GaugeMetricFamily(n, t, labels=labels)) for n, a, t in GAUGES]
        counters = [(a, CounterMetricFamily(n, t, labels=labels)) for n, a, t in COUNTERS]
        failures = CounterMetricFamily(*FAILURES, labels=["alias", "cause"])
        for figures in process_stats.collect(_loaded(self.aliases)):
            for attr, gauge in gauges:
                value = getattr(figures, attr)
                if value is not None:
                    gauge.add_metric([figures.alias], value)
            for attr, counter in counters:
                counter.add_metric([figures.alias], getattr(figures, attr))
            for cause, count in figures.failures.items():
                failures.add_metric([figures.alias, cause], count)
        yield from (gauge for _, gauge in gauges)
        yield from (counter for _, counter in counters)
        yield failures


class _Publisher:
    """Writes this process's figures to prometheus_client's multiprocess files.

    Gauges are ``livesum`` (the sum over live workers); counters are incremented by what
    changed since the last write, so MultiProcessCollector sums them over every worker,
    exited ones included, and a worker's exit never makes a total go down.
    """

    def __init__(self) -> None:
        from prometheus_client import Counter as PromCounter
        from prometheus_client import Gauge

        self.lock = threading.Lock()
        self.gauges = [
            (a, Gauge(n, t, ["alias"], registry=None, multiprocess_mode="livesum"))
            for n, a, t in GAUGES
        ]
        self.counters = [(a, PromCounter(n, t, ["alias"], registry=None)) for n, a, t in COUNTERS]
        self.failures = PromCounter(*FAILURES, ["alias", "cause"], registry=None)
        self.written: dict[tuple[str, ...], float] = {}
        self.aliases: list[str] | None = None

    def _add(self, counter: Any, labels: tuple[str, ...], key: str, value: float) -> None:
        child = counter.labels(*labels)  # written at 0 too: the series exists from the start
        before = self.written.get((key, *labels), 0.0)
        if value > before:
            child.inc(value - before)
        self.written[(key, *labels)] = value

    def publish(self) -> None:
        with self.lock:
            if self.aliases is None:
                self.aliases = scraped_aliases()
            for figures in process_stats.collect(_loaded(self.aliases)):
                alias = figures.alias
                for attr, gauge in self.gauges:
                    value = getattr(figures, attr)
                    if value is not None:
                        gauge.labels(alias).set(value)
                for attr, counter in self.counters:
                    self._add(counter, (alias,), attr, getattr(figures, attr))
                for cause, count in figures.failures.items():
                    self._add(self.failures, (alias, cause), "failures", count)


_publisher: _Publisher | None = None
_publisher_pid: int | None = None
_publisher_lock = threading.Lock()


def publish() -> None:
    """Write this process's figures now (multiprocess mode; the scraped worker does)."""
    global _publisher, _publisher_pid
    with _publisher_lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher, _publisher_pid = _Publisher(), os.getpid()
        publisher = _publisher
    publisher.publish()


def _publish_forever() -> None:
    import logging

    logger = logging.getLogger("dbconnmgr.metrics")
    stop = threading.Event()
    while not stop.wait(PUBLISH_SECONDS):
        try:
            publish()
        except Exception:  # a bad moment must not end the worker's publishing
            logger.exception("dbconnmgr could not write its multiprocess metrics")


def start_publisher() -> None:
    """In multiprocess mode, write this process's figures every :data:`PUBLISH_SECONDS`.

    Called by the app's ``ready()``; a process forked later (gunicorn ``--preload``) starts
    its own writer. Nothing runs per request or per query.
    """
    if multiprocess_dir() is None:
        return
    threading.Thread(target=_publish_forever, name="dbconnmgr-metrics", daemon=True).start()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: drop an exited worker's gauges from the sums.

    In ``gunicorn.conf.py``: ``from dbconnmgr.metrics import child_exit``.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
