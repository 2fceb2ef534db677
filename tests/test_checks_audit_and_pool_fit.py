"""The system checks a new project meets first: the audit trail that reaches no handler
(W016), and pools that cannot fit the server (W015, only with ``check --database``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from dbconnmgr.checks.audit import audit_trail_is_handled, check_audit_trail
from dbconnmgr.checks.pool_fit import check_pools_fit
from tests.conftest import manage


@pytest.fixture
def loggers() -> Iterator[list[logging.Logger]]:
    made: list[logging.Logger] = []
    yield made
    for logger in made:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def test_a_default_projects_logging_loses_the_audit_lines(loggers: list[logging.Logger]) -> None:
    """startproject's settings: no logger for dbconnmgr, the root at WARNING, no handler."""
    root = logging.getLogger()
    parent = logging.getLogger("t_audit")
    child = logging.getLogger("t_audit.trail")
    loggers += [parent, child]
    if root.level <= logging.INFO:  # pragma: no cover - pytest leaves the root at WARNING
        pytest.skip("the root logger keeps INFO here")
    assert not audit_trail_is_handled("t_audit.trail")  # INFO is not even enabled
    child.setLevel(logging.INFO)
    parent.propagate = False  # INFO enabled, but no handler on the way
    assert not audit_trail_is_handled("t_audit.trail")
    warnings_only = logging.StreamHandler()
    warnings_only.setLevel(logging.WARNING)
    parent.addHandler(warnings_only)
    assert not audit_trail_is_handled("t_audit.trail")
    parent.addHandler(logging.FileHandler("/dev/null", delay=True))
    assert audit_trail_is_handled("t_audit.trail")


def test_w016_is_raised_when_dbconnmgr_has_no_handler(loggers: list[logging.Logger]) -> None:
    logger = logging.getLogger("dbconnmgr")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        [message] = check_audit_trail()
        assert message.id == "dbconnmgr.W016"
        assert "audit trail is lost" in message.msg
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    assert check_audit_trail() == []  # the test settings keep it


def check_output(*args: str, services: list[str]) -> str:
    result = manage(
        "check", *args, settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"SERVICES": services})},
    )  # fmt: skip
    return result.stdout + result.stderr


def test_w015_only_with_database_when_the_pools_cannot_fit() -> None:
    """A plain check never connects: it cannot know the server's limit. With --database it
    reads it once and warns when the services' pools cannot fit."""
    too_many = ["web=500x8:25"]  # 4,000 connections: more than any test server
    assert "dbconnmgr.W015" not in check_output(services=too_many)
    found = check_output("--database", "default", services=too_many)
    assert "dbconnmgr.W015" in found
    assert "the configured pools cannot fit the server" in found
    assert "web 4000" in found
    assert "dbconnmgr.W015" not in check_output("--database", "default", services=["web=1x2:2"])


@pytest.mark.django_db
def test_w015_without_services_checks_one_process_with_the_aliases_pool(settings) -> None:
    settings.DBCONNMGR = {}
    assert check_pools_fit(databases=None) == []
    db = settings.DATABASES["default"]
    huge = {**db, "OPTIONS": {**db.get("OPTIONS", {}), "pool": {"max_size": 100_000}}}
    with pytest.warns(UserWarning, match="Overriding setting DATABASES"):
        settings.DATABASES = {**settings.DATABASES, "default": huge}
    [message] = check_pools_fit(databases=["default"])
    assert message.id == "dbconnmgr.W015" and "one process 100000" in message.msg
    assert "not even a pool of 1" not in str(message.hint)
