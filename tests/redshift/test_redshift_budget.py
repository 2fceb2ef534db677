"""--action=budget on a Redshift alias: the cluster's limit, the connector share, WLM slots."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from devtools.redshiftemu import RedshiftEmulation, add_queue
from tests.conftest import manage

ENV = {"DB_REDSHIFT_NODE_TYPE": "dc2.large"}  # 500 connections, AWS's published figure


def test_budget_uses_the_cluster_limit_the_connector_share_and_shows_the_query_slots(
    emulation: RedshiftEmulation, feeds: psycopg.Connection[Any]
) -> None:
    add_queue(feeds, 6, "etl", 2)
    add_queue(feeds, 7, "dashboards", 5)
    args = ("db_connections", "--action=budget", "--service", "web=4x8",
            "--service", "worker=2x4", "--headroom=10")  # fmt: skip
    result = manage(*args, "--format=json", database_url=emulation.url, extra_env=ENV)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["usable_connections"] == 500
    assert document["usable_source"].startswith("node type dc2.large")
    assert document["capacity"] == (500 - 10) * 95 // 100  # floor((500 - 10) x 0.95) = 465
    queues = document["query_queues"]
    assert queues["connectors"] == 2
    assert queues["connector_share"] == 237  # floor(500 / 2 x 0.95)
    assert queues["query_slots"] == 7  # 2 + 5: what runs at once, whatever the connections
    table = manage(*args, database_url=emulation.url, extra_env=ENV)
    assert table.returncode == 0, table.stderr
    assert "floor(500 / 2 x 0.95) = 237" in table.stdout
    assert "more connections do not make more queries" in " ".join(table.stdout.split())
