"""The connection budget: the arithmetic of docs/budget.md, and --action=budget on a real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbconnmgr.core.budget import (
    Service,
    compute_budget,
    connector_share,
    parse_service,
    pool_max_size_from_settings,
    services_from_setting,
)
from devtools.pgserver import PgServer
from tests.conftest import manage

# The services of docs/budget.md, example 1.
DOC_SERVICES = ("web=4x32:25", "worker=1x32:25", "cron=1x1:25")


def test_doc_example_1_four_workers_of_25_plus_25_plus_1_plus_10() -> None:
    services = [parse_service(s) for s in DOC_SERVICES]
    budget = compute_budget(services, usable_connections=200, headroom=10)
    # cron's one thread holds one connection, whatever its pool of 25
    assert [s.service.demand for s in budget.services] == [100, 25, 1]
    assert budget.demand == 126
    assert budget.demand_with_headroom == 136 <= 200
    assert budget.capacity == 180  # floor((200 - 10) x 0.95)
    assert budget.fits and budget.spare == 54
    assert budget.safe_pool_max_size == 30  # 180 / 6 pooled processes
    assert [s.safe_pool_max_size for s in budget.services] == [38, 79, 55]


def test_a_process_holds_at_most_one_connection_per_thread_even_with_a_larger_pool() -> None:
    """docs/budget.md example 4: 4 x 8 threads + 1 x 4 threads with the default profile's
    pool of 25, on a server of 40 max_connections (37 usable): 36 connections at most, over
    the capacity of 30 by 6, not by 95 (5 x 25 pools)."""
    web, worker = parse_service("web=4x8:25"), parse_service("worker=1x4:25")
    assert (web.connections_per_process, worker.connections_per_process) == (8, 4)
    budget = compute_budget([web, worker], usable_connections=37, headroom=5)
    assert (budget.demand, budget.capacity, budget.spare) == (36, 30, -6)
    assert parse_service("web=4x8").connections_per_process == 8  # persistent: one per thread
    assert parse_service("web=4x8:6").connections_per_process == 6  # the pool caps it


def test_doc_example_2_per_connector_share() -> None:
    # max_connections / n x 0.95 with n = 4 connectors and 200 slots
    assert connector_share(200, 4) == 47
    web = Service("web", processes=4, threads=32, pool_max_size=10)
    assert compute_budget([web], 200).safe_pool_max_size == 47
    # the bench: 47 usable slots, 3 kept for people, 4 gunicorn processes
    assert compute_budget([web], 47, headroom=3).safe_pool_max_size == 10


def test_doc_example_3_persistent_threads_over_budget() -> None:
    web = parse_service("web=2x4x16")  # no pool: one connection per thread
    worker = parse_service("worker=1x8:persistent")
    budget = compute_budget([web, worker], usable_connections=97, headroom=5)
    assert web.demand == 128 and worker.demand == 8
    assert budget.capacity == 87
    assert not budget.fits and budget.spare == -49
    # turning the pool on everywhere: 87 / (8 + 1) processes
    assert budget.safe_pool_max_size == 9


def test_uniform_pool_size_leaves_room_for_persistent_services() -> None:
    budget = compute_budget(
        [parse_service("web=4x8:20"), parse_service("beat=1x1:persistent")], 100, headroom=0
    )
    assert budget.capacity == 95
    assert budget.safe_pool_max_size == (95 - 1) // 4


def test_safety_is_exact_decimal_arithmetic() -> None:
    assert compute_budget([], 200, safety=0.95).capacity == 190  # not 189
    assert compute_budget([], 100, safety=1).capacity == 100
    with pytest.raises(ValueError, match="safety"):
        compute_budget([], 100, safety=1.5)
    with pytest.raises(ValueError, match="headroom"):
        compute_budget([], 100, headroom=-1)


@pytest.mark.parametrize("text", ["web", "web=4", "web=4x", "=4x8", "web=0x8", "web=4x8:0",
                                  "web=4x8:many", "web 4x8", "web=\u0664x8", "web=4x8x9999999",
                                  "web=4x8:10000000"])  # fmt: skip
def test_parse_service_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(ValueError):
        parse_service(text)


def test_services_and_pool_max_size_from_settings() -> None:
    assert pool_max_size_from_settings({"OPTIONS": {"pool": True}}) == 4
    assert pool_max_size_from_settings({"OPTIONS": {"pool": {"max_size": 12}}}) == 12
    assert pool_max_size_from_settings({"OPTIONS": {}}) is None
    services = services_from_setting(
        ["web=4x16", {"name": "worker", "processes": 2, "threads": 1}], pool_max_size=12
    )
    assert [s.pool_max_size for s in services] == [12, 12]
    assert [s.demand for s in services] == [48, 2]  # 4 x 12; 2 x 1 thread
    with pytest.raises(ValueError, match="SERVICES"):
        services_from_setting([{"name": "x", "procs": 1}])


def test_services_dict_form_takes_pool_max_size_and_names_the_old_key() -> None:
    (web,) = services_from_setting(
        [{"name": "web", "processes": 4, "threads": 16, "pool_max_size": 10}]
    )
    assert web.pool_max_size == 10 and web.demand == 40
    (worker,) = services_from_setting(["worker=2x4:persistent"], pool_max_size=12)
    assert worker.pool_max_size is None and worker.demand == 8
    with pytest.raises(ValueError, match="'pool_size' is now 'pool_max_size'"):
        services_from_setting([{"name": "web", "processes": 4, "pool_size": 10}])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([{"name": "w", "processes": 2.5}], "processes must be a whole number, got 2.5"),
        ([{"name": "w", "processes": 2, "threads": True}], "threads must be a whole number"),
        (
            [{"name": "w", "processes": 2, "pool_max_size": 1.5}],
            "pool_max_size must be a whole number",
        ),
        (["web=4x8", {"name": "web", "processes": 1}], "service 'web' is given twice"),
        ("web=4x8", "must be a list of services, got 'web=4x8'"),
    ],
)
def test_services_setting_refuses_fractions_duplicates_and_strings(
    value: Any, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        services_from_setting(value)
    with pytest.raises(ValueError, match="given twice"):
        compute_budget([parse_service("a=1x1"), parse_service("a=2x2")], 100)


def test_demand_exactly_at_capacity_fits() -> None:
    budget = compute_budget([parse_service("web=2x95:95")], 100)  # capacity floor(100 x 0.95)
    assert (budget.capacity, budget.demand) == (95, 190)
    assert not budget.fits
    budget = compute_budget([parse_service("web=1x95:95")], 100)
    assert budget.demand == budget.capacity == 95
    assert budget.fits and budget.spare == 0


def test_nothing_fits_is_zero_never_negative() -> None:
    # headroom larger than the server: no capacity at all
    budget = compute_budget([parse_service("web=4x8:10")], 10, headroom=20)
    assert budget.capacity == 0 and budget.safe_pool_max_size == 0
    assert budget.spare == -32
    # the other services already take everything: this one may have no pool at all
    web, batch = parse_service("web=2x6:6"), parse_service("batch=1x1:persistent")
    budget = compute_budget([web, batch], 10, safety=1)
    assert [s.safe_pool_max_size for s in budget.services] == [4, 0]


def test_no_services_leave_the_whole_capacity() -> None:
    budget = compute_budget([], 100, headroom=10)
    assert budget.demand == 0 and budget.fits
    assert budget.safe_pool_max_size == budget.capacity == 85


def test_connector_share_refuses_bad_input() -> None:
    assert connector_share(3, 4) == 0  # rounds down, never up
    with pytest.raises(ValueError, match="connectors"):
        connector_share(200, 0)
    with pytest.raises(ValueError, match="safety"):
        connector_share(200, 4, safety=0)


def test_pool_max_size_from_settings_follows_psycopg_pool_defaults() -> None:
    assert pool_max_size_from_settings({"OPTIONS": {"pool": {"min_size": 6}}}) == 6
    assert pool_max_size_from_settings({"OPTIONS": {"pool": {}}}) is None  # Django: no pool
    assert pool_max_size_from_settings({"OPTIONS": {"pool": False}}) is None
    assert pool_max_size_from_settings({}) is None


# -- the command, on a server of the docs' size --------------------------------------------


@pytest.fixture(scope="module")
def server_203() -> Iterator[PgServer]:
    """max_connections 203 - 3 reserved for superusers = 200 usable, as in docs/budget.md."""
    server = PgServer(max_connections=203).start()
    try:
        yield server
    finally:
        server.stop()


def budget(server_url: str, *args: str):
    return manage("db_connections", "--action=budget", *args, database_url=server_url)


def test_command_matches_doc_example_1(server_203: PgServer) -> None:
    args = [f"--service={s}" for s in DOC_SERVICES]
    result = budget(server_203.url, *args, "--headroom=10", "--format=json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["usable_connections"] == 200
    assert data["demand"] == 126 and data["demand_with_headroom"] == 136
    assert data["capacity"] == 180 and data["fits"] is True
    assert data["safe_pool_max_size"] == 30
    table = budget(server_203.url, *args, "--headroom=10")
    assert table.returncode == 0
    assert "Demand 126 + headroom 10 = 136 of 200 usable" in table.stdout
    assert "1 (pool 25)" in table.stdout  # cron: one thread, one connection
    assert "Largest safe DB_MAX_CONNS per process: 30" in table.stdout


def test_command_exits_1_over_budget_and_warns(server_203: PgServer) -> None:
    result = budget(server_203.url, "--service=web=8x25:25", "--service=worker=2x25:25")
    assert result.returncode == 1
    assert "OVER BUDGET by 65" in result.stdout  # 250 > floor(195 x 0.95) = 185
    assert "WARNING: the configured pools cannot fit this server" in result.stdout


def test_nothing_fits_suggests_no_pool_of_0(server_203: PgServer) -> None:
    """database_config() refuses DB_MAX_CONNS=0: the budget never suggests it."""
    result = budget(server_203.url, "--service=web=400x8:4", "--headroom=0")
    assert result.returncode == 1
    assert "Largest safe DB_MAX_CONNS per process: none, not even 1 per process fits" in (
        result.stdout
    )
    assert "none fits" in result.stdout and "| 0 " not in result.stdout.replace("  ", " ")


def test_without_services_the_settings_pool_is_measured_against_the_server() -> None:
    from dbconnmgr.cli.budget import _settings_pool_line

    assert _settings_pool_line(25, 180) == (
        "The settings' pool of 25 per process: at most 7 such processes fit"
    )
    assert _settings_pool_line(25, 16) == (
        "WARNING: the settings' pool cannot fit this server: 25 > capacity 16"
    )


def test_command_uses_the_projects_pool_size(server_203: PgServer) -> None:
    result = manage(
        "db_connections", "--action=budget", "--service=web=4x8", "--format=json",
        database_url=server_203.url, extra_env={"DB_POOL": "true", "DB_MAX_CONNS": "7"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["settings_pool_max_size"] == 7
    assert data["services"][0]["connections"] == 28


def test_role_connection_limit_caps_the_usable_slots(server_203: PgServer) -> None:
    with psycopg.connect(server_203.dsn(), autocommit=True) as admin:
        admin.execute("CREATE ROLE capped LOGIN PASSWORD 'pw' CONNECTION LIMIT 40")
    result = budget(server_203.url_for("capped", "pw"), "--service=web=4x8", "--format=json")
    data = json.loads(result.stdout)
    assert data["usable_connections"] == 40
    assert "role capped" in data["usable_source"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--service=web:4x8"], "--service: expected NAME=[INSTANCESx]PROCESSESxTHREADS"),
        (["--service=web=4x8:zero"], "got 'web=4x8:zero'"),
        (["--headroom=-1"], "--headroom: expected a number >= 0"),
        (["--safety=1.2"], "--safety: expected a number > 0 and <= 1"),
        (["--service=web=4x8", "--service=web=2x2"], "service 'web' is given twice"),
    ],
)
def test_bad_options_give_one_line(args: list[str], fragment: str) -> None:
    result = manage("db_connections", "--action=budget", *args)
    assert result.returncode == 3  # usage errors are UNKNOWN
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_budget_options_belong_to_budget_only() -> None:
    result = manage("db_connections", "--action=status", "--headroom=3")
    assert result.returncode == 3
    assert "--headroom does not apply to --action=status" in result.stderr
