"""System checks of settings.DBCONNMGR (ids dbconnmgr.E101-E107, W101)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dbconnmgr.checks.app_settings import check_dbconnmgr_settings
from tests.conftest import manage

WEBHOOK = "dbconnmgr.alerts.WebhookHandler"


def ids(settings, value: Any) -> list[tuple[str | None, str]]:
    settings.DBCONNMGR = value
    return [(m.id, m.msg) for m in check_dbconnmgr_settings()]


def test_valid_settings_are_silent(settings) -> None:
    assert ids(settings, {}) == []
    assert (
        ids(
            settings,
            {
                "THRESHOLDS": {"UTILIZATION_WARNING": 60, "FREE_SLOTS_CRITICAL": 3},
                "ALERTS": {
                    "HANDLERS": [
                        "dbconnmgr.alerts.LoggingHandler",
                        "dbconnmgr.alerts.MailAdminsHandler",
                        {
                            "HANDLER": "dbconnmgr.alerts.WebhookHandler",
                            "OPTIONS": {"url": "https://hooks.example.com/x", "timeout": 3},
                        },
                        "tests.alert_handlers.record",
                    ],
                    "COOLDOWN": 600,
                    "MIN_SEVERITY": "critical",
                },
                "HEALTH_TOKENS": ["a-long-random-token-of-32-chars!"],
                "STATUS_LIMIT": 5,
            },
        )
        == []
    )


@pytest.mark.parametrize(
    ("value", "check_id", "fragment"),
    [
        ([1], "dbconnmgr.E101", "DBCONNMGR must be a dict"),
        ({"THRESHOLD": {}}, "dbconnmgr.E101", "Unknown key 'THRESHOLD' in DBCONNMGR"),
        ({"THRESHOLDS": 5}, "dbconnmgr.E102", "must be a dict"),
        ({"THRESHOLDS": {"UTILISATION_WARNING": 60}}, "dbconnmgr.E102", "UTILISATION_WARNING"),
        ({"THRESHOLDS": {"UTILIZATION_CRITICAL": 101}}, "dbconnmgr.E103", "percentage"),
        ({"THRESHOLDS": {"QUERY_AGE_WARNING": -1}}, "dbconnmgr.E103", "seconds"),
        ({"THRESHOLDS": {"QUERY_AGE_WARNING": "60"}}, "dbconnmgr.E103", "number or None"),
        ({"THRESHOLDS": {"CONNECTIONS_WARNING": 1.5}}, "dbconnmgr.E103", "whole number"),
        ({"THRESHOLDS": {"EXEMPT_APPLICATIONS": "pg_dump"}}, "dbconnmgr.E103", "list"),
        ({"THRESHOLDS": {"UTILIZATION_WARNING": 85}}, "dbconnmgr.E104", "must be below"),
        (
            {"THRESHOLDS": {"FREE_SLOTS_WARNING": 1, "FREE_SLOTS_CRITICAL": 3}},
            "dbconnmgr.E104",
            "must be above",
        ),
        ({"ALERTS": []}, "dbconnmgr.E105", "must be a dict"),
        ({"ALERTS": {"COOLDOWN": -5}}, "dbconnmgr.E105", "COOLDOWN"),
        ({"ALERTS": {"MIN_SEVERITY": "loud"}}, "dbconnmgr.E105", "unknown severity"),
        ({"ALERTS": {"HANDLER": []}}, "dbconnmgr.E105", "Unknown key 'HANDLER'"),
        ({"ALERTS": {"HANDLERS": "x.y"}}, "dbconnmgr.E105", "must be a list"),
        ({"ALERTS": {"HANDLERS": ["no.such.handler"]}}, "dbconnmgr.E106", "no.such.handler"),
        ({"ALERTS": {"HANDLERS": ["dbconnmgr.alerts.nothing"]}}, "dbconnmgr.E106", "nothing"),
        (
            {"ALERTS": {"HANDLERS": [{"HANDLER": WEBHOOK}]}},
            "dbconnmgr.E106",
            "url",
        ),
        (
            {
                "ALERTS": {
                    "HANDLERS": [
                        {
                            "HANDLER": "dbconnmgr.alerts.WebhookHandler",
                            "OPTIONS": {"url": "ftp://x"},
                        }
                    ]
                }
            },
            "dbconnmgr.E106",
            "http:// or https://",
        ),
        ({"HEALTH_TOKENS": "abc"}, "dbconnmgr.E107", "list of strings"),
        ({"HEALTH_TOKENS": [""]}, "dbconnmgr.E107", "empty"),
        ({"HEALTH_TOKENS": ["short"]}, "dbconnmgr.W101", "shorter than 16"),
    ],
)
def test_each_bad_setting_has_its_check(settings, value: Any, check_id: str, fragment: str) -> None:
    found = ids(settings, value)
    assert [i for i, _ in found] == [check_id], found
    assert fragment in found[0][1]


def test_unknown_key_hint_suggests_the_right_one(settings) -> None:
    settings.DBCONNMGR = {"THRESHOLDS": {"UTILISATION_WARNING": 60}}
    [message] = check_dbconnmgr_settings()
    assert message.hint is not None
    assert message.hint.startswith("Did you mean 'UTILIZATION_WARNING'?")


def test_manage_py_check_fails_on_bad_settings() -> None:
    bad = {"THRESHOLDS": {"UTILIZATION_WARNING": 90}, "ALERTS": {"HANDLERS": ["no.such"]}}
    result = manage(
        "check",
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps(bad)},
    )
    assert result.returncode == 1
    assert "dbconnmgr.E104" in result.stderr
    assert "dbconnmgr.E106" in result.stderr
    assert "Traceback" not in result.stderr
