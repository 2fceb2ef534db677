"""Bad input and bad days: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import psycopg
import pytest

from devtools.pgserver import PgServer, free_port
from tests.conftest import manage


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_action() -> None:
    result = manage("db_connections", "--action=explode")
    assert result.returncode == 3  # usage errors are unknown: 2 only ever means critical
    _one_line_error(result, "invalid choice", "explode")


def test_bad_limit() -> None:
    _one_line_error(manage("db_connections", "--limit=zero"), "--limit", "whole number")
    _one_line_error(manage("db_connections", "--limit=0"), "--limit", ">= 1")


def test_unknown_alias() -> None:
    result = manage("db_connections", "--database=nope")
    assert result.returncode == 3
    _one_line_error(result, "unknown database alias 'nope'", "default")


def test_sqlite_alias_is_not_supported_yet() -> None:
    result = manage("db_connections", "--database=legacy", settings_module="tests.settings")
    _one_line_error(result, "sqlite", "not support")


def test_unreachable_server() -> None:
    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    _one_line_error(manage("db_connections", database_url=url), "cannot connect")


def test_wrong_password(dsn: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    url = f"postgres://postgres:wrong@127.0.0.1:{info['port']}/postgres"
    _one_line_error(manage("db_connections", database_url=url), "authentication failed")


def test_full_server(small_server: PgServer) -> None:
    """Ordinary roles get 'reserved' once 3 slots are used; everyone gets 'full' at 6."""
    with psycopg.connect(small_server.dsn(), autocommit=True) as admin:
        admin.execute("CREATE ROLE app LOGIN PASSWORD 'pw'")
    app_url = small_server.url_for("app", "pw")
    held = [psycopg.connect(small_server.dsn("app", "pw")) for _ in range(3)]
    try:
        result = manage("db_connections", database_url=app_url)
        _one_line_error(result, "only reserved slots are left")
        held += [psycopg.connect(small_server.dsn()) for _ in range(3)]
        result = manage("db_connections", database_url=small_server.url)
        _one_line_error(result, "the server is full", "too many clients")
    finally:
        for conn in held:
            conn.close()


def test_full_server_from_python_raises_server_unavailable(small_server: PgServer) -> None:
    from dbconnmgr.backends.postgresql.driver import classify_error
    from dbconnmgr.exceptions import ServerUnavailable

    held = [psycopg.connect(small_server.dsn()) for _ in range(6)]
    try:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(small_server.dsn())
    finally:
        for conn in held:
            conn.close()
    problem = classify_error(info.value, "default")
    assert isinstance(problem, ServerUnavailable)
    assert problem.kind == "full"


def test_option_of_another_action_is_refused_by_its_own_name() -> None:
    result = manage("db_connections", "--action=status", "--noinput")
    _one_line_error(result, "--noinput does not apply to --action=status")


def test_status_on_a_pooled_alias_reads_through_one_private_connection(dsn: str) -> None:
    """The pool (min_size 3) is never opened; the command's own session is not counted."""
    import json

    from tests.conftest import dsn_to_url

    result = manage(
        "db_connections", "--database=pooled", "--format=json", "--limit=100",
        settings_module="tests.settings_pool", database_url=dsn_to_url(dsn),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    apps = {g["name"]: g["connections"] for g in payload["by_application"]}
    assert "t-ci-pooled" not in apps, apps
    own = payload["own_pid"]
    with psycopg.connect(dsn) as check:
        row = check.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't-ci-pooled'"
        ).fetchone()
    assert row == (0,), f"the command's session {own} or a pool connection outlived it"


def test_pooled_alias_on_an_unreachable_server_fails_at_once() -> None:
    """Not the pool's 'couldn't get a connection after 30 sec', nor its warnings."""
    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    for action in ("status", "health", "monitor", "budget"):
        result = manage(
            "db_connections", f"--action={action}", "--database=pooled",
            settings_module="tests.settings_pool", database_url=url, timeout=25,
        )  # fmt: skip
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "couldn't get a connection" not in result.stderr + result.stdout
        assert "connection refused" in (result.stderr + result.stdout).lower()


# -- numbers that parse but would crash later: every numeric option has an upper bound ------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--action=close-idle", "--idle-for=1e15"], ("--idle-for", "<= 3.16")),
        (["--action=monitor", "--interval=1e308"], ("--interval", "<= 86400")),
        (["--action=peak", "--days=800000"], ("--days", "<= 36500")),
        (["--action=status", "--limit=99999999999"], ("--limit", "<= 100000")),
        (["--action=monitor", "--count=99999999999"], ("--count", "<= 1000000000")),
        (["--action=budget", "--headroom=1000000"], ("--headroom", "<= 262143")),
        (["--action=health", "--warning=count:9999999"], ("--warning", "<= 262143")),
        (["--action=status", "--limit=1_000"], ("--limit", "whole number")),
        (["--action=status", "--limit=\u0663"], ("--limit", "whole number")),
        (["--action=close-idle", "--idle-for=1_0"], ("--idle-for", "number of seconds")),
    ],
)
def test_numbers_out_of_range_get_one_line(args: list[str], fragments: tuple[str, ...]) -> None:
    result = manage("db_connections", *args)
    assert result.returncode in (2, 3)  # usage error; health's own options: UNKNOWN
    _one_line_error(result, *fragments)


def _closed_pipe_run(*args: str, database_url: str | None = None):
    """Run manage.py with stdout a pipe nobody reads any more (``| head`` that has left)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, dsn_to_url, superuser_dsn

    read_end, write_end = os.pipe()
    os.close(read_end)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="example_project.settings",
               DATABASE_URL=database_url or dsn_to_url(superuser_dsn()))  # fmt: skip
    try:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)


def test_health_into_a_closed_pipe_keeps_its_exit_code_and_says_nothing() -> None:
    """`health | head -1`: the verdict is the exit code; no BrokenPipe noise, no 120."""
    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    result = _closed_pipe_run("db_connections", "--action=health", database_url=url)
    assert (result.returncode, result.stderr) == (2, "")
    result = _closed_pipe_run("db_connections", "--action=health", "--format=json")
    assert (result.returncode, result.stderr) == (0, "")


def test_status_into_a_closed_pipe_is_quiet() -> None:
    result = _closed_pipe_run("db_connections", "--action=status")
    assert (result.returncode, result.stderr) == (0, "")


def test_psycopg_pipeline_exit_noise_is_dropped_for_our_pipelines_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During an outage the pipeline's failing exit logged "error ignored terminating"."""
    import logging

    from dbconnmgr.internals import quiet_pipeline_exit

    class Pipe:  # stands for a psycopg Pipeline (hashable, weak-referenceable)
        pass

    ours, theirs = Pipe(), Pipe()
    logger = logging.getLogger("psycopg")
    filters = list(logger.filters)
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        with quiet_pipeline_exit() as quiet:
            quiet(ours)
            logger.warning("error ignored terminating %r: %s", ours, "consuming input failed")
            logger.warning("error ignored terminating %r: %s", theirs, "consuming input failed")
        logger.warning("error ignored terminating %r: %s", ours, "after the block")
    assert [r.args[0] for r in caplog.records] == [theirs, ours]  # type: ignore[index]
    assert logger.filters == filters  # the filter is only there around our pipelines
