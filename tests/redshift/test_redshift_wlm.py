"""WLM queues in status and health: query slots beside connections, fed into the emulation."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.core.management import call_command

from dbconnmgr import check_connection_health, take_snapshot
from dbconnmgr.core.documents import FindingDoc, HealthDoc
from dbconnmgr.models import ConnectionSample
from devtools.redshiftemu import RedshiftEmulation, add_queue, add_wlm_query
from tests.conftest import manage


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def finding(health: HealthDoc, code: str) -> FindingDoc:
    (found,) = [f for f in health["findings"] if f["code"] == code]
    return found


def test_queued_queries_raise_a_finding_that_clears_without_them(
    rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    add_queue(feeds, 7, "dashboards", 5)
    assert finding(check_connection_health(rs_alias), "wlm_queued")["severity"] == "ok"
    add_wlm_query(feeds, query=1, service_class=7, state="Running",
                  queued_since=now() - timedelta(seconds=5), running_since=now())  # fmt: skip
    add_wlm_query(feeds, query=2, service_class=6, state="Queued",
                  queued_since=now() - timedelta(seconds=10))  # fmt: skip
    health = check_connection_health(rs_alias)
    queued = finding(health, "wlm_queued")
    assert queued["severity"] == "warning"
    assert queued["data"]["queued_queries"] == 1
    assert "etl (1)" in queued["message"]
    feeds.execute("DELETE FROM redshift_emulation.wlm_query WHERE state = 'Queued'")
    assert finding(check_connection_health(rs_alias), "wlm_queued")["severity"] == "ok"


def test_a_queue_at_its_slot_count_longer_than_the_threshold_is_reported(
    rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    for query in (1, 2):
        add_wlm_query(feeds, query=query, service_class=6, state="Running",
                      queued_since=now() - timedelta(seconds=200),
                      running_since=now() - timedelta(seconds=199))  # fmt: skip
    add_wlm_query(feeds, query=3, service_class=6, state="Queued",
                  queued_since=now() - timedelta(seconds=90))  # fmt: skip
    saturated = finding(check_connection_health(rs_alias), "wlm_saturated")
    assert saturated["severity"] == "warning"  # 90 s: over 60, under 300
    assert saturated["data"]["queues"][0]["slots"] == 2
    assert 89 <= saturated["data"]["queues"][0]["saturated_seconds"] < 120
    assert "more connections would not run more queries" in saturated["message"]
    snapshot = take_snapshot(rs_alias)
    (etl,) = snapshot.extras["wlm"]["queues"]
    assert (etl["slots"], etl["executing"], etl["slots_in_use"], etl["queued"]) == (2, 2, 2, 1)
    # the connections are far from the cluster's limit all the while
    assert finding(check_connection_health(rs_alias), "utilization")["severity"] == "ok"


def test_status_json_and_table_carry_the_wlm_queues(
    emulation: RedshiftEmulation, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    add_wlm_query(feeds, query=1, service_class=6, state="Queued",
                  queued_since=now() - timedelta(seconds=30))  # fmt: skip
    env = {"DB_REDSHIFT_NODE_TYPE": "dc2.large"}
    result = manage("db_connections", "--action=status", "--format=json",
                    database_url=emulation.url, extra_env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["vendor"] == "redshift"
    assert document["server"]["max_connections"] == 500
    assert document["redshift"]["node_type"] == "dc2.large"
    assert document["redshift"]["wlm"]["queues"][0]["queued"] == 1
    table = manage("db_connections", "--action=status", database_url=emulation.url,
                   extra_env=env)  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "WLM queues" in table.stdout and "etl" in table.stdout
    health = manage("db_connections", "--action=health", database_url=emulation.url,
                    extra_env=env)  # fmt: skip
    assert health.returncode == 1  # the queued query: a warning
    assert "waiting for a WLM slot" in health.stdout


def test_monitor_json_lines_carry_the_wlm_queues(
    emulation: RedshiftEmulation, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    add_wlm_query(feeds, query=1, service_class=6, state="Queued",
                  queued_since=now() - timedelta(seconds=20))  # fmt: skip
    result = manage("db_connections", "--action=monitor", "--format=json", "--count=2",
                    "--interval=0.2", database_url=emulation.url,
                    extra_env={"DB_REDSHIFT_NODE_TYPE": "ra3.4xlarge"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    assert all(line["redshift"]["wlm"]["queued_queries"] == 1 for line in lines)


@pytest.mark.django_db
def test_recorded_samples_keep_the_wlm_queues_and_postgresql_ones_none(
    rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    add_queue(feeds, 7, "dashboards", -1)  # automatic WLM: no fixed slot count
    add_wlm_query(feeds, query=1, service_class=6, state="Running",
                  queued_since=now() - timedelta(seconds=40),
                  running_since=now() - timedelta(seconds=39), slot_count=2)  # fmt: skip
    add_wlm_query(feeds, query=2, service_class=6, state="Queued",
                  queued_since=now() - timedelta(seconds=30))  # fmt: skip
    out = io.StringIO()
    call_command("db_connections", "--action=monitor", f"--database={rs_alias}", "--record",
                 "--format=json", stdout=out)  # fmt: skip
    (line,) = [json.loads(text) for text in out.getvalue().splitlines() if text.strip()]
    (stored,) = ConnectionSample.objects.filter(alias=rs_alias)
    assert stored.vendor == "redshift"
    assert stored.wlm is not None and stored.wlm["visible"] is True
    etl, dashboards = stored.wlm["queues"]
    assert {k: etl[k] for k in ("service_class", "name", "slots", "queued", "slots_in_use")} == {
        "service_class": 6, "name": "etl", "slots": 2, "queued": 1, "slots_in_use": 2,
    }  # fmt: skip
    assert 29 <= etl["longest_queued_seconds"] < 60
    assert (dashboards["service_class"], dashboards["slots"], dashboards["queued"]) == (7, None, 0)
    assert (stored.wlm["queued_queries"], stored.wlm["query_slots"]) == (1, 2)
    # what was stored is what the monitor's JSON line said
    assert stored.wlm == line["redshift"]["wlm"]

    call_command("db_connections", "--action=monitor", "--record", stdout=io.StringIO())
    (postgresql,) = ConnectionSample.objects.filter(alias="default")
    assert postgresql.vendor == "postgresql" and postgresql.wlm is None
