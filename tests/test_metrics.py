"""The Prometheus endpoint: who may scrape, what it reports, and that promtool accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.test import Client

from devtools.system_packages import ensure_debian_packages, find_binary
from tests.conftest import ROOT, Sessions

TOKEN = "t0ken-for-the-metrics-endpoint-tests"
URL = "/dbconnmgr/metrics"
RULES = ROOT / "docs" / "prometheus" / "dbconnmgr.rules.yml"
RULE_TESTS = ROOT / "docs" / "prometheus" / "dbconnmgr.rules.test.yml"


@pytest.fixture
def token_settings(settings):
    settings.DBCONNMGR = {"HEALTH_TOKENS": [TOKEN]}
    return settings


@pytest.fixture(scope="session")
def promtool() -> str:
    ensure_debian_packages({"promtool": "prometheus"})
    path = find_binary("promtool")
    assert path is not None
    return path


def scrape(**params: str) -> str:
    response = Client().get(URL, params, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def test_same_authentication_as_the_health_endpoint(token_settings) -> None:
    assert Client().get(URL).status_code == 401
    assert Client().get(URL, HTTP_AUTHORIZATION="Bearer wrong-token-xxxxxxxx").status_code == 401
    assert Client().post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_server_gauges_count_the_sessions_by_postgres_exporter_labels(
    token_settings, sessions: Sessions
) -> None:
    sessions.open_many(3, "t-metrics-idle")
    text = scrape(alias="default")
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("pg_stat_activity_count{")
        and 'application_name="t-metrics-idle"' in line
        and 'state="idle"' in line
    )
    assert line.endswith(" 3.0")
    assert 'dbconnmgr_up{alias="default"} 1.0' in text
    assert 'pg_settings_max_connections{alias="default"}' in text
    assert 'dbconnmgr_usable_connections{alias="default"}' in text
    assert 'dbconnmgr_oldest_connection_seconds{alias="default"}' in text
    assert 'dbconnmgr_findings{alias="default",severity="ok"}' in text
    # this process's figures, for the same alias
    assert 'dbconnmgr_connection_failures_total{alias="default",cause="too_many_clients"}' in text
    assert 'dbconnmgr_connections_opened_total{alias="default"}' in text


def test_unknown_alias_is_404(token_settings) -> None:
    response = Client().get(URL, {"alias": "nope"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404


def test_promtool_accepts_the_metrics_and_the_alert_rules(
    token_settings, promtool: str, tmp_path: Path
) -> None:
    exposition = scrape()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    # Exit 3 is lint only (1 would be a parse error). The one lint allowed is the name
    # postgres_exporter gives the same series: dashboards built on it keep working.
    problems = [line for line in (check.stdout + check.stderr).splitlines() if line.strip()]
    allowed = (
        "pg_stat_activity_count non-histogram and non-summary metrics should not have "
        '"_count" suffix'
    )
    assert check.returncode in (0, 3) and problems in ([], [allowed]), problems
    rules = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
        timeout=60, cwd=RULE_TESTS.parent,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_aas_counts_the_sessions_running_a_query_but_not_the_scrape(
    token_settings, sessions: Sessions
) -> None:
    sessions.open_many(2, "t-metrics-aas", state="active")
    text = scrape(alias="default")
    aas = next(line for line in text.splitlines() if line.startswith("dbconnmgr_aas{"))
    active = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pg_stat_activity_count{") and 'state="active"' in line
    ]
    # the same snapshot: every active client session except the scrape's own reading one
    assert float(aas.rsplit(" ", 1)[1]) == sum(active) - 1 >= 2
    assert "avg_over_time(dbconnmgr_aas" in text  # the HELP says how to get the AAS
