"""System checks of DATABASES: each fires on its bad configuration, and only there."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from django.core.checks import run_checks
from django.db.utils import ConnectionHandler
from django.test import override_settings

from dbconnmgr.checks.databases import Context, check_database_settings
from dbconnmgr.core.budget import Service
from dbconnmgr.database_settings import database_config
from tests.conftest import dsn_to_url, manage

URL = "postgres://app:secret@db.internal:5432/shop"


def good() -> dict[str, Any]:
    """What the helper builds: must pass every check, deploy ones included."""
    return database_config(env={"DATABASE_URL": URL}, service="web")


def ids(databases: dict[str, Any], **kwargs: Any) -> list[str]:
    return [m.id for m in check_database_settings(databases, **kwargs) if m.id]


def with_changes(**changes: Any) -> dict[str, Any]:
    db = good()
    options = changes.pop("OPTIONS", None)
    db.update(changes)
    if options is not None:
        db["OPTIONS"] = {**db["OPTIONS"], **options}
        db["OPTIONS"] = {k: v for k, v in db["OPTIONS"].items() if v is not None}
    return db


def test_the_helpers_settings_pass_every_check() -> None:
    assert ids({"default": good()}, deploy=True, asgi=True) == []
    persistent = database_config(env={"DATABASE_URL": URL, "DB_POOL": "false"}, service="w")
    assert ids({"default": persistent}, deploy=True) == []


@pytest.mark.parametrize(
    ("bad", "check_id"),
    [
        (with_changes(CONN_MAX_AGE=600), "dbconnmgr.E010"),
        (with_changes(OPTIONS={"pool": "true"}), "dbconnmgr.E013"),
        (with_changes(OPTIONS={"pool": {"max_size": 4, "maxsize": 9}}), "dbconnmgr.E014"),
        (with_changes(OPTIONS={"pool": {"max_size": 4, "kwargs": {}}}), "dbconnmgr.E014"),
        (with_changes(OPTIONS={"pool": None}, CONN_MAX_AGE="none"), "dbconnmgr.E015"),
        (with_changes(OPTIONS={"pool": None}, CONN_MAX_AGE=-1), "dbconnmgr.E015"),
        (with_changes(CONN_HEALTH_CHECKS="false"), "dbconnmgr.E016"),
        (with_changes(ATOMIC_REQUESTS="true"), "dbconnmgr.E016"),
        (with_changes(OPTIONS={"statement_timeout": 100}), "dbconnmgr.E017"),
        (with_changes(OPTIONS={"conn_max_age": "60"}), "dbconnmgr.E017"),
    ],
)
def test_each_error_fires_on_its_bad_configuration(bad: dict[str, Any], check_id: str) -> None:
    assert ids({"default": bad}) == [check_id]


def test_pool_without_psycopg_pool_or_psycopg3() -> None:
    db = good()
    assert ids({"default": db}, context=Context(psycopg_pool=False)) == ["dbconnmgr.E011"]
    assert ids({"default": db}, context=Context(psycopg3=False)) == ["dbconnmgr.E011"]
    no_pool = database_config(env={"DATABASE_URL": URL, "DB_POOL": "false"}, service="w")
    assert ids({"default": no_pool}, context=Context(psycopg_pool=False, psycopg3=False)) == []


def test_asgi_with_persistent_connections_warns() -> None:
    persistent = with_changes(CONN_MAX_AGE=600, OPTIONS={"pool": None})
    assert ids({"default": persistent}, asgi=True) == ["dbconnmgr.W010"]
    assert ids({"default": persistent}, asgi=False) == []
    assert ids({"default": with_changes(CONN_MAX_AGE=0, OPTIONS={"pool": None})}, asgi=True) == []
    assert ids({"default": good()}, asgi=True) == []


def test_deploy_advice_application_name_and_connect_timeout() -> None:
    bare = with_changes(OPTIONS={"application_name": None, "connect_timeout": None})
    assert ids({"default": bare}) == []  # only with --deploy
    assert ids({"default": bare}, deploy=True) == ["dbconnmgr.W011", "dbconnmgr.W012"]
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    assert ids({"legacy": sqlite}, deploy=True) == []


def test_pool_smaller_than_threads_when_services_are_known() -> None:
    db = with_changes(OPTIONS={"pool": {"min_size": 1, "max_size": 4}})
    web = Service("web", processes=2, threads=8)
    assert ids({"default": db}, services=(web,)) == ["dbconnmgr.W013"]
    assert ids({"default": db}, services=(Service("web", processes=2, threads=4),)) == []
    assert ids({"default": db}) == []  # threads unknown: nothing to say


def test_check_key_in_pool_matches_what_django_really_does(dsn: str) -> None:
    """dbconnmgr.E012 fires exactly on the Django versions where the first connection fails."""
    db = database_config(
        env={"DATABASE_URL": dsn_to_url(dsn)}, service=f"t-check-{uuid.uuid4().hex[:6]}"
    )
    db["OPTIONS"]["pool"]["check"] = None
    alias = f"pool_{uuid.uuid4().hex[:8]}"
    handler = ConnectionHandler({"default": {}, alias: db})
    try:
        handler[alias].ensure_connection()
        fails = False
    except TypeError as exc:
        assert "check" in str(exc)
        fails = True
    finally:
        with contextlib.suppress(TypeError):  # the pool never got built
            handler[alias].close()
            handler[alias].close_pool()  # type: ignore[attr-defined]
    assert ids({"default": db}) == (["dbconnmgr.E012"] if fails else [])


def test_registered_with_django_and_honours_dbconnmgr_settings() -> None:
    db = with_changes(OPTIONS={"pool": {"min_size": 1, "max_size": 2}})
    warns = pytest.warns(UserWarning, match="Overriding setting DATABASES")
    with warns, override_settings(DATABASES={"default": db}, DBCONNMGR={"SERVICES": ["web=4x8"]}):
        found = {m.id for m in run_checks(tags=["dbconnmgr"])}
    assert found == {"dbconnmgr.W013"}
    persistent = with_changes(CONN_MAX_AGE=600, OPTIONS={"pool": None})
    warns = pytest.warns(UserWarning, match="Overriding setting DATABASES")
    with warns, override_settings(DATABASES={"default": persistent}, DBCONNMGR={"ASGI": True}):
        found = {m.id for m in run_checks(tags=["dbconnmgr"])}
    assert found == {"dbconnmgr.W010"}


def test_manage_py_check_stops_a_raw_url_with_string_pitfalls(dsn: str) -> None:
    url = dsn_to_url(dsn) + "?conn_max_age=none&conn_health_checks=false"
    result = manage("check", settings_module="tests.settings", database_url=url)
    assert result.returncode == 1
    assert "dbconnmgr.E015" in result.stderr
    assert "dbconnmgr.E016" in result.stderr
    assert "Traceback" not in result.stderr
    clean = manage("check", "--deploy", "--fail-level", "ERROR", database_url=url)
    assert clean.returncode == 0, clean.stderr  # example_project uses the helper
    assert "dbconnmgr" not in clean.stderr + clean.stdout
