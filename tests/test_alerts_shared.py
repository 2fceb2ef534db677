"""Alerts across processes: the cooldown shared through Django's cache framework.

N dispatchers (monitors, web workers) that see the same problem send one alert: in one
process with the local-memory cache, across processes with a real Redis the suite starts.
Redis down: each process still sends, once, and logs why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbconnmgr.alerts import AlertDispatcher
from dbconnmgr.core.health import Finding, Report, Severity
from devtools.pgserver import free_port
from devtools.redisserver import RedisServer
from tests import alert_handlers
from tests.conftest import ROOT
from tests.test_alerts import _clean  # noqa: F401  (autouse: fresh handlers and state)

RECORD = "tests.alert_handlers.record"


def report(severity: Severity, alias: str = "default") -> Report:
    """A report with one finding (no snapshot: the server was not read)."""
    finding = Finding("server_unreachable", severity, "cannot connect")
    return Report(alias=alias, status=severity, findings=(finding,), snapshot=None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_two_dispatchers_one_locmem_cache_send_once(settings) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "alerts": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "a"},
    }
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60, "CACHE": "alerts"}}
    monitors = [AlertDispatcher(), AlertDispatcher(), AlertDispatcher()]
    for monitor in monitors:
        monitor.dispatch(report(Severity.CRITICAL))
    assert [(a.status, a.severity.label) for a in alert_handlers.RECEIVED] == [
        ("firing", "critical")
    ]
    alert_handlers.RECEIVED.clear()
    for monitor in monitors:  # a warning within the critical's cooldown: nothing
        monitor.dispatch(report(Severity.WARNING))
    assert alert_handlers.RECEIVED == []
    ok = Report(alias="default", status=Severity.OK, findings=(), snapshot=None)
    for monitor in monitors:  # recovered: one resolved alert
        monitor.dispatch(ok)
    assert [(a.status, a.finding.key) for a in alert_handlers.RECEIVED] == [
        ("resolved", "server_unreachable")
    ]


SCRIPT = """
import sys
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["dbconnmgr"],
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": sys.argv[1]}},
    DBCONNMGR={"ALERTS": {"HANDLERS": ["tests.alert_handlers.to_file"], "COOLDOWN": 60,
                          "CACHE": "default"}},
    LOGGING={"version": 1, "handlers": {"err": {"class": "logging.StreamHandler"}},
             "loggers": {"dbconnmgr": {"handlers": ["err"], "level": "WARNING"}}},
)
django.setup()
from dbconnmgr import alerts
from dbconnmgr.core.health import Finding, Report, Severity
finding = Finding("server_unreachable", Severity.CRITICAL, "cannot connect")
alerts.dispatch(Report(alias=sys.argv[2], status=Severity.CRITICAL, findings=(finding,),
                       snapshot=None))
"""


def run_processes(location: str, alias: str, out: Path, count: int = 3) -> list[str]:
    env = dict(os.environ, DBCONNMGR_TEST_ALERT_FILE=str(out))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, location, alias],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        errors.append(err)
    return errors


def test_processes_sharing_redis_send_one_alert(redis_server: RedisServer, tmp_path: Path) -> None:
    out = tmp_path / "alerts.txt"
    errors = run_processes(redis_server.url, "shared", out)
    lines = out.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("firing server_unreachable critical")
    assert not any(errors)


def test_redis_down_each_process_sends_once_and_logs_it(tmp_path: Path) -> None:
    out = tmp_path / "alerts.txt"
    errors = run_processes(f"redis://127.0.0.1:{free_port()}/0", "down", out)
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and len({line.split()[0] for line in lines}) == 3
    for err in errors:
        assert "dbconnmgr alerts: cache 'default' unavailable" in err
        assert "decided by this process only" in err
