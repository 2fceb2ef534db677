"""The registry of engines: one door (``dbconnmgr.backends``) by vendor and ENGINE, light."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from django.db import connection, connections

from dbconnmgr.backends import (
    BACKENDS,
    backend_class_of,
    capabilities_of,
    classify_error,
    engine_of,
    get_backend,
)
from dbconnmgr.backends.registry import ENGINES, by_engine, by_vendor
from dbconnmgr.exceptions import ServerUnavailable


@pytest.mark.engine_neutral
def test_each_engine_is_found_by_vendor_and_by_every_engine_path() -> None:
    assert list(BACKENDS) == [engine.vendor for engine in ENGINES]
    for engine in ENGINES:
        backend = BACKENDS[engine.vendor]
        assert backend.vendor == engine.vendor and engine.backend() is backend
        assert by_vendor(engine.vendor) is engine
        assert engine.engines and all(by_engine(path) is engine for path in engine.engines)
    assert by_engine("django.db.backends.postgresql") is by_vendor("postgresql")
    assert by_engine("dbconnmgr.db.postgresql") is by_vendor("postgresql")
    assert by_engine("django.db.backends.mysql") is by_vendor("mysql")
    assert by_engine("django.db.backends.sqlite3") is None and "sqlite" not in BACKENDS
    assert capabilities_of("sqlite").display_name == "sqlite"  # a bare declaration


@pytest.mark.engine_neutral
def test_the_registry_imports_no_driver_and_no_django_database_layer() -> None:
    """``database_settings`` (imported from settings.py) may ask the registry and an engine's
    package; the backend's reader, and its driver with it, come only on first use."""
    code = (
        "import sys\n"
        "import dbconnmgr.backends, dbconnmgr.backends.postgresql, dbconnmgr.backends.mysql\n"
        "from dbconnmgr.backends.registry import by_engine\n"
        "assert by_engine('django.db.backends.mysql').vendor == 'mysql'\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('psycopg', 'MySQLdb', 'environ') or m.startswith('django.db')"
        " or m.endswith('.reader'))\n"
        "print(','.join(loaded))\n"
    )
    env = {"PATH": "", "PYTHONPATH": "."}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_an_alias_is_classified_by_its_own_engine() -> None:
    """process_stats counts connect failures through this: PostgreSQL's wording for the
    PostgreSQL alias, nothing for an alias of an engine dbconnmgr does not read."""
    full = psycopg.OperationalError("FATAL:  sorry, too many clients already")
    problem = classify_error(full, "default")
    assert isinstance(problem, ServerUnavailable) and problem.kind == "full"
    assert classify_error(full, "legacy") is full  # sqlite: not read, not classified
    assert engine_of("legacy") is None and backend_class_of("legacy") is None
    assert engine_of("no-such-alias") is None


def test_the_backend_knows_the_pid_of_its_own_driver_connection() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    backend = get_backend("default")
    assert type(backend).driver_pid(connections["default"].connection) == pid
    assert type(backend).driver_pid(None) is None
