"""dbconnmgr beside the real django-health-check and django-prometheus packages."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import AsyncRequestFactory
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from dbconnmgr.contrib.health_check import ConnectionHealth
from devtools.pgserver import free_port
from tests.conftest import ROOT, Sessions, database_alias

QUIET = {"IDLE_RATIO_WARNING": None}


def run_check(check: ConnectionHealth) -> BaseException | None:
    """The check as django-health-check runs it: in its executor, with its timeout."""
    result = asyncio.run(check.get_result())
    error: BaseException | None = result.error
    return error


def test_quiet_server_passes(health_alias: str, settings) -> None:
    settings.DBCONNMGR = {"THRESHOLDS": QUIET}
    assert run_check(ConnectionHealth(alias=health_alias)) is None


def test_utilization_is_unavailable_or_warning_naming_codes_only(
    held: Sessions, health_alias: str, settings
) -> None:
    held.open_many(3, "t-hc-util")  # 3 of 17 usable slots: 17.6 %
    settings.DBCONNMGR = {
        "THRESHOLDS": {**QUIET, "UTILIZATION_WARNING": 10, "UTILIZATION_CRITICAL": 15}
    }
    error = run_check(ConnectionHealth(alias=health_alias))
    assert isinstance(error, ServiceUnavailable)
    assert str(error) == (
        "Unavailable: critical: utilization (manage.py db_connections --action=health)"
    )
    assert "t-hc-util" not in str(error) and "postgres" not in str(error)

    settings.DBCONNMGR = {
        "THRESHOLDS": {**QUIET, "UTILIZATION_WARNING": 10, "UTILIZATION_CRITICAL": 50}
    }
    error = run_check(ConnectionHealth(alias=health_alias))
    assert isinstance(error, ServiceWarning)
    assert "warning: utilization" in str(error)
    assert run_check(ConnectionHealth(alias=health_alias, warnings=False)) is None


def test_unreachable_server_and_unknown_alias_are_unavailable() -> None:
    with database_alias("hc_gone", f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"):
        error = run_check(ConnectionHealth(alias="hc_gone"))
    assert isinstance(error, ServiceUnavailable)
    assert "critical: server_unreachable" in str(error)
    error = run_check(ConnectionHealth(alias="no_such_alias"))
    assert isinstance(error, ServiceUnavailable)
    assert "no_such_alias" in str(error)


def test_django_health_checks_view_reports_it(held: Sessions, health_alias: str, settings) -> None:
    """The package's own view, configured as docs/installation.md shows: JSON and status."""
    settings.DBCONNMGR = {"THRESHOLDS": QUIET}
    view = HealthCheckView.as_view(
        checks=[
            "health_check.checks.Database",
            ("dbconnmgr.contrib.health_check.ConnectionHealth", {"alias": health_alias}),
        ]
    )
    request = AsyncRequestFactory().get("/ht/", {"format": "json"})
    response = asyncio.run(view(request))
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    assert body[f"ConnectionHealth(alias='{health_alias}')"] == "OK"

    held.open_many(3, "t-hc-view")
    settings.DBCONNMGR = {
        "THRESHOLDS": {**QUIET, "UTILIZATION_WARNING": 10, "UTILIZATION_CRITICAL": 15}
    }
    response = asyncio.run(view(AsyncRequestFactory().get("/ht/", {"format": "json"})))
    assert response.status_code == 500
    assert json.loads(response.content)[f"ConnectionHealth(alias='{health_alias}')"].startswith(
        "Unavailable: critical: utilization"
    )


# A project with django-prometheus installed beside dbconnmgr, in multiprocess mode (the
# setup where the two share prometheus_client's files), configured as settings.py would be.
PROMETHEUS_PROJECT = """
import json, os, sys
import django
from django.conf import settings
from dbconnmgr.database_settings import database_config
settings.configure(
    INSTALLED_APPS=["django_prometheus", "dbconnmgr"], USE_TZ=True,
    DATABASES={"default": database_config(service="t-prom")},
    DBCONNMGR={"HEALTH_TOKENS": ["a-token-of-sixteen-chars"]},
    ALLOWED_HOSTS=["testserver"],
    PROMETHEUS_EXPORT_MIGRATIONS=True,  # django-prometheus writes its migration gauges
)
django.setup()
from django.db import connection
from django.test import RequestFactory
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.parser import text_string_to_metric_families
from dbconnmgr.views import metrics

with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
connection.close()
rf = RequestFactory()
ours = metrics(rf.get("/dbconnmgr/metrics", HTTP_AUTHORIZATION="Bearer a-token-of-sixteen-chars"))
theirs = ExportToDjangoView(rf.get("/metrics"))
def names(response):
    assert response.status_code == 200, response.content
    return sorted({f.name for f in text_string_to_metric_families(response.content.decode())})
print(json.dumps({"ours": names(ours), "theirs": names(theirs),
                  "files": sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))}))
"""


def test_django_prometheus_coexists_in_multiprocess_mode(tmp_path: Path) -> None:
    """Both apps, one PROMETHEUS_MULTIPROC_DIR: each endpoint answers, names never clash.

    dbconnmgr's names are ``dbconnmgr_*`` and postgres_exporter's ``pg_*``; django-prometheus
    uses ``django_*``. The shared directory makes each endpoint show the other's
    per-process series (what docs/installation.md tells users: scrape one of them).
    """
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "CONN_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    result = subprocess.run(
        [sys.executable, "-c", PROMETHEUS_PROJECT],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    ours, theirs = set(out["ours"]), set(out["theirs"])
    mine = {n for n in ours if n.startswith(("dbconnmgr_", "pg_"))}
    assert {"dbconnmgr_pool_max", "pg_stat_activity_count", "pg_settings_max_connections"} <= mine
    their_own = {n for n in theirs if n.startswith("django_")}
    assert their_own, theirs
    assert not mine & their_own
    assert all(n.startswith(("dbconnmgr_", "pg_", "django_")) for n in ours | theirs), ours | theirs
    # The shared directory: dbconnmgr's per-process figures reach django-prometheus's
    # endpoint too, and django-prometheus's series reach dbconnmgr's.
    assert "dbconnmgr_pool_max" in theirs
    assert ours & their_own
    assert out["files"], "nothing written to PROMETHEUS_MULTIPROC_DIR"
