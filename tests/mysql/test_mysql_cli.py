"""Every action of ``manage.py db_connections`` on a MariaDB alias, and its bad input."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import MySQLdb
import pytest

from devtools.mariadbserver import MariaDBServer
from devtools.pgserver import free_port
from tests.conftest import ROOT
from tests.mysql.conftest import MySessions, manage, one_line

pytestmark = pytest.mark.mysql


def test_health_json_has_the_mysql_figures_and_refused_finding(
    mariadb: MariaDBServer, mysessions: MySessions
) -> None:
    mysessions.open("idle")
    result = manage("db_connections", "--action=health", "--format=json",
                    database_url=mariadb.url)  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert doc["vendor"] == "mysql" and doc["server_info"]["reachable"]
    codes = {f["code"]: f for f in doc["findings"]}
    assert codes["refused_connections"]["severity"] == "ok"  # no earlier sample
    assert doc["mysql"]["max_used_connections"] >= 2
    assert "postgresql_info" not in doc


def test_monitor_json_lines_carry_threads_running_and_refused_counts(
    mariadb: MariaDBServer,
) -> None:
    result = manage("db_connections", "--action=monitor", "--count=2", "--interval=0.2",
                    "--format=json", database_url=mariadb.url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["refused_connections"] is None  # nothing to compare with yet
    assert second["refused_connections"] == 0
    assert second["mysql"]["threads_running"] >= 1  # the reader itself
    assert second["mysql"]["aborted_connects_since_last_sample"] == 0


def test_monitor_record_then_peak_on_mariadb(mariadb: MariaDBServer) -> None:
    migrate = manage("migrate", "dbconnmgr", "--noinput", database_url=mariadb.url)
    assert migrate.returncode == 0, migrate.stderr
    record = manage("db_connections", "--action=monitor", "--count=2", "--interval=0.1",
                    "--record", "--format=json", database_url=mariadb.url)  # fmt: skip
    assert record.returncode == 0, record.stderr
    peak = manage("db_connections", "--action=peak", "--format=json", database_url=mariadb.url)
    assert peak.returncode == 0, peak.stderr
    doc = json.loads(peak.stdout)
    assert doc["schema"] == "dbconnmgr.peak/1" and doc["samples"] >= 2


#: Plants three finished hours of samples with a load split in the history (MariaDB here),
#: rebuilds the rollup, and prints what the rollup holds and what the week's hourly load
#: chart reads from it. The sums are worked out by hand in the test.
_ROLLUP_ON_MARIADB = """
import datetime as dt, json
from dbconnmgr import history
from dbconnmgr.models import ConnectionHour, ConnectionSample
ConnectionSample.objects.filter(alias="rollup-probe").delete()
ConnectionHour.objects.filter(alias="rollup-probe").delete()
now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
base = now - dt.timedelta(hours=3)
loads = [
    (0, 10, 3, {"CPU": 2, "Lock": 1}, {"web": 3}, {"view:a": 2, "unknown": 1}, None),
    (0, 40, 5, {"CPU": 5}, {"web": 4, "worker": 1}, {"view:a": 5}, 2),
    (1, 5, 1, {"IO": 1}, {"worker": 1}, {"task:b": 1}, 0),
    (2, 20, 0, {}, {}, {}, None),
]
for hour, minute, active, classes, apps, codes, refused in loads:
    ConnectionSample.objects.create(
        taken_at=base + dt.timedelta(hours=hour, minutes=minute), alias="rollup-probe",
        vendor="mysql", total_connections=active + 10, active_connections=active,
        idle_in_transaction_connections=0, waiting_connections=0, max_connections=151,
        usable_connections=150, utilization_percent=1.0, by_state={}, by_application={},
        load={"wait_class": classes, "application": apps, "code": codes},
        refused_connections=refused,
    )
history.rebuild_rollup("rollup-probe", now=now)
hours = {
    h.hour.isoformat(): h.load
    for h in ConnectionHour.objects.filter(alias="rollup-probe").order_by("hour")
}
charts = history.load_charts("rollup-probe", ("wait_class", "code"), seconds=4 * 3600,
                             bucket_seconds=3600, now=now)
points = {d: [[p.samples, p.aas, p.parts] for p in s.points if p.samples]
          for d, s in charts.items()}
print(json.dumps({"base": base.isoformat(), "hours": hours, "points": points}))
"""


def test_the_rollup_sums_the_load_split_on_a_mariadb_history(mariadb: MariaDBServer) -> None:
    """The rollup's load sums are grouped in SQL (JSON functions differ between engines):
    on a MariaDB history they equal the hand sums, and the hourly chart reads them."""
    migrate = manage("migrate", "dbconnmgr", "--noinput", database_url=mariadb.url)
    assert migrate.returncode == 0, migrate.stderr
    result = manage("shell", "-c", _ROLLUP_ON_MARIADB, database_url=mariadb.url)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    first, second, third = doc["hours"].values()
    assert first == {
        "active": 8, "refused": 2, "wait_class": {"CPU": 7, "Lock": 1},
        "application": {"web": 7, "worker": 1}, "code": {"view:a": 7, "unknown": 1},
    }  # fmt: skip
    assert second["active"] == 1 and second["refused"] == 0
    assert second["wait_class"] == {"IO": 1} and second["code"] == {"task:b": 1}
    assert third["active"] == 0 and third["refused"] is None
    by_class = doc["points"]["wait_class"]
    assert by_class[0] == [2, 4.0, {"CPU": 3.5, "Lock": 0.5}]  # AAS over the hour's 2 samples
    assert by_class[1] == [1, 1.0, {"IO": 1.0}]
    assert [p[0] for p in doc["points"]["code"]] == [2, 1, 1]


def test_budget_counts_one_connection_per_thread(mariadb: MariaDBServer) -> None:
    result = manage("db_connections", "--action=budget", "--service=web=4x8:persistent",
                    "--format=json", database_url=mariadb.url)  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dbconnmgr.budget/2"
    assert doc["server"]["reserved_slots"] == 1  # MariaDB's one extra slot for SUPER
    assert doc["demand"] == 32  # 4 processes x 8 threads, one connection each


def test_an_admin_accounts_own_limit_binds_it(make_account: Callable[..., str]) -> None:
    """MariaDB applies MAX_USER_CONNECTIONS to SUPER accounts too (PostgreSQL exempts
    superusers from CONNECTION LIMIT): the snapshot and the budget count it."""
    url = make_account("t_admin_capped", "pw", "SUPER", "CONNECTION ADMIN", "PROCESS",
                       max_user_connections=3)  # fmt: skip
    status = manage("db_connections", "--action=status", "--format=json", database_url=url)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["server"]["current_user_is_superuser"] is True
    assert doc["limited_by"] == "role" and doc["free_connections"] == 3
    budget = manage("db_connections", "--action=budget", "--service=web=1x2:persistent",
                    "--format=json", database_url=url)  # fmt: skip
    assert budget.returncode in (0, 1), budget.stderr
    plan = json.loads(budget.stdout)
    assert plan["usable_connections"] == 3
    assert plan["usable_source"] == "MAX_USER_CONNECTIONS of account t_admin_capped"


# -- bad input and unavailable servers ------------------------------------------------------
FULL = 10


@pytest.fixture(scope="module")
def tiny() -> Iterator[MariaDBServer]:
    """A server of its own with max_connections 10 (MariaDB's least; plus the admin slot)."""
    server = MariaDBServer(max_connections=FULL).start()
    server.sql(
        "CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON dbconnmgr.* TO 'app'@'%';"
    )
    try:
        yield server
    finally:
        server.stop()


def test_full_server_is_critical_in_one_line_and_counted_as_refused(
    tiny: MariaDBServer,
) -> None:
    held = [MySQLdb.connect(**tiny.connect_kwargs("app", "pw")) for _ in range(FULL)]
    try:
        result = manage("db_connections", "--action=health",
                        database_url=tiny.url_for("app", "pw"))  # fmt: skip
        assert result.returncode == 2
        assert "1040" in result.stdout + result.stderr or "full" in result.stdout
        status = manage("db_connections", "--action=status",
                        database_url=tiny.url_for("app", "pw"))  # fmt: skip
        assert status.returncode == 2
        assert "full" in one_line(status.stderr)
        # the admin still gets in through the reserved slot and sees the refusals
        doc = json.loads(
            manage(
                "db_connections", "--action=status", "--format=json", database_url=tiny.url
            ).stdout
        )
        assert doc["mysql"]["aborted_connects"] >= 2  # MariaDB counts 1040 refusals here
        assert doc["total_connections"] == FULL and doc["free_connections"] == 0
    finally:
        for conn in held:
            conn.close()


def test_wrong_password_is_unknown_in_one_line(mariadb: MariaDBServer) -> None:
    result = manage("db_connections", "--action=status",
                    database_url=mariadb.url_for("admin", "wrong"))  # fmt: skip
    assert result.returncode == 3
    assert "authentication failed" in one_line(result.stderr)


def test_unreachable_server_is_critical_in_one_line() -> None:
    url = f"mysql://admin:pw@127.0.0.1:{free_port()}/dbconnmgr"
    result = manage("db_connections", "--action=status", database_url=url)
    assert result.returncode == 2
    assert "cannot connect" in one_line(result.stderr)
    health = manage("db_connections", "--action=health", database_url=url)
    assert health.returncode == 2 and "Traceback" not in health.stderr


def test_mysql_alias_without_the_driver_is_unknown_in_one_line(
    mariadb: MariaDBServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "MySQLdb"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('No module named MySQLdb')\n")
    result = manage("db_connections", "--action=status", "--database=maria",
                    database_url=mariadb.url, settings_module="tests.mysql.settings_second_alias",
                    extra_env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})  # fmt: skip
    assert result.returncode == 3
    assert "mysqlclient" in one_line(result.stderr)


def test_close_idle_on_a_full_server_reports_instead_of_crashing(
    tiny: MariaDBServer, make_account: Callable[..., str]
) -> None:
    held = [MySQLdb.connect(**tiny.connect_kwargs("app", "pw")) for _ in range(FULL)]
    try:
        result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                        database_url=tiny.url_for("app", "pw"))  # fmt: skip
        assert result.returncode == 2
        one_line(result.stderr)
    finally:
        for conn in held:
            with contextlib.suppress(MySQLdb.Error):
                conn.close()
