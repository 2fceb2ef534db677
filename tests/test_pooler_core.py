"""Pure tests of core/pooler: the arithmetic PgBouncer's figures are judged by."""

from __future__ import annotations

from datetime import UTC, datetime

from dbconnmgr.core.health import Severity, resolve_thresholds
from dbconnmgr.core.pooler import Pool, PoolerSnapshot, evaluate_pooler, maxwait_from


def pool(database: str, user: str, size: int = 5, reserve: int = 0, **figures: int) -> Pool:
    values = {
        "active_clients": 0, "waiting_clients": 0, "active_servers": 0, "idle_servers": 0,
        "used_servers": 0, "other_servers": 0,
    }  # fmt: skip
    values.update(figures)
    return Pool(
        database=database, user=user, pool_mode="transaction", pool_size=size,
        reserve_pool_size=reserve, maxwait_seconds=0.0, **values,
    )  # fmt: skip


def snapshot(*pools: Pool, db_caps: dict[str, int] | None = None, **config: str) -> PoolerSnapshot:
    return PoolerSnapshot(
        alias="default", console="127.0.0.1:6432", version="PgBouncer 1.18.0",
        taken_at=datetime.now(UTC), pools=pools, config=config,
        database_max_connections=db_caps or {},
    )  # fmt: skip


def test_possible_server_connections_sum_pools_and_reserve() -> None:
    pooler = snapshot(pool("app", "web", 10, 2), pool("app", "worker", 5, 2), pool("x", "web", 3))
    assert pooler.max_server_connections() == 22


def test_max_db_and_max_user_connections_cap_the_sum() -> None:
    pools = (pool("app", "web", 10, 2), pool("app", "worker", 5, 2), pool("x", "web", 3))
    # a database's own max_db_connections (SHOW DATABASES) caps its pools: app 19 -> 8
    assert snapshot(*pools, db_caps={"app": 8}).max_server_connections() == 11
    # the global max_db_connections caps each database
    assert snapshot(*pools, max_db_connections="4").max_server_connections() == 7
    # max_user_connections caps each user's pools: web 15 -> 6, worker 7 -> 6
    assert snapshot(*pools, max_user_connections="6").max_server_connections() == 12


def test_saturation_and_zero_sized_pools() -> None:
    assert pool("a", "u", 4, active_servers=3).saturation_percent == 75.0
    assert pool("a", "u", 0).saturation_percent == 0.0
    assert pool("a", "u", 0, waiting_clients=1).saturation_percent == 100.0


def test_capacity_is_judged_against_usable_slots_and_unknown_without_them() -> None:
    t = resolve_thresholds(None)
    pooler = snapshot(pool("app", "web", 10, 2))
    by_code = {f.code: f for f in evaluate_pooler(pooler, t, usable_connections=12)}
    assert by_code["pgbouncer_server_connections"].severity is Severity.OK
    by_code = {f.code: f for f in evaluate_pooler(pooler, t, usable_connections=11)}
    assert by_code["pgbouncer_server_connections"].severity is Severity.CRITICAL
    by_code = {f.code: f for f in evaluate_pooler(pooler, t, usable_connections=None)}
    assert by_code["pgbouncer_server_connections"].severity is Severity.UNKNOWN


def test_waiting_and_maxwait_thresholds() -> None:
    t = resolve_thresholds({"PGBOUNCER_WAITING_CRITICAL": 3})
    busy = snapshot(pool("app", "web", waiting_clients=2), pool("app", "job", waiting_clients=1))
    by_code = {f.code: f for f in evaluate_pooler(busy, t, 100)}
    assert by_code["pgbouncer_waiting"].severity is Severity.CRITICAL
    assert "app/web 2, app/job 1" in by_code["pgbouncer_waiting"].message
    assert maxwait_from({"maxwait": 2, "maxwait_us": 500000}) == 2.5
    assert maxwait_from({"maxwait": 7}) == 7.0  # a version without maxwait_us
