"""System checks of settings.DBCONNMGR (ids dbconnmgr.E101-E107, W101)."""

from __future__ import annotations

import json
import re
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
        ({"THRESHOLD": {}}, "dbconnmgr.W102", "Unknown key 'THRESHOLD' in DBCONNMGR"),
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


#: A bad value of every key: each passed ``manage.py check`` and crashed later (or, for
#: STATUS_LIMIT=-1 and RETENTION_DAYS=-1, silently dropped rows / deleted all history).
BAD_VALUES: list[tuple[str, Any, str, str]] = [
    ("STATUS_LIMIT", -1, "dbconnmgr.E108", "whole number from 1"),
    ("STATUS_LIMIT", "10", "dbconnmgr.E108", "got '10'"),
    ("STATUS_LIMIT", True, "dbconnmgr.E108", "got True"),
    ("IDLE_TIMEOUT", "abc", "dbconnmgr.E109", "seconds"),
    ("IDLE_TIMEOUT", 1e15, "dbconnmgr.E109", "seconds from 0 to"),
    ("TERMINATE_TIMEOUT", "abc", "dbconnmgr.E110", "seconds"),
    ("TERMINATE_TIMEOUT", float("nan"), "dbconnmgr.E110", "nan"),
    ("RETENTION_DAYS", -1, "dbconnmgr.E111", "days above 0"),
    ("RETENTION_DAYS", 0, "dbconnmgr.E111", "or None"),
    ("RETENTION_DAYS", 800000, "dbconnmgr.E111", "800000"),
    ("BUDGET_HEADROOM", -2, "dbconnmgr.E112", "whole number"),
    ("BUDGET_HEADROOM", 1.5, "dbconnmgr.E112", "whole number"),
    ("BUDGET_SAFETY", 1.5, "dbconnmgr.E113", "above 0 to 1"),
    ("BUDGET_SAFETY", 0, "dbconnmgr.E113", "above 0 to 1"),
    ("SERVICES", "web=2x4", "dbconnmgr.E114", "must be a list, got str 'web=2x4'"),
    ("SERVICES", ["web"], "dbconnmgr.E114", "expected"),
    ("SERVICES", ["web=2x4", "web=1x1"], "dbconnmgr.E114", "'web' is given twice"),
    ("MONITOR_INTERVAL", 0, "dbconnmgr.E115", "seconds above 0"),
    ("AAS_WINDOW", -60, "dbconnmgr.E116", "seconds above 0"),
    ("MONITOR_SAMPLE_SERVER", "no", "dbconnmgr.E117", "True or False"),
    ("ASGI", "yes", "dbconnmgr.E118", "True, False or None"),
    ("ATTRIBUTION", "on", "dbconnmgr.E125", "True or False"),
    ("LEAK_THRESHOLD", 0, "dbconnmgr.E126", "seconds above 0"),
    ("CODE_LABELS", 0, "dbconnmgr.E127", "whole number from 1"),
    ("ALERTS", {"HANDLERS": "dbconnmgr.alerts.LoggingHandler"}, "dbconnmgr.E105", "a list"),
    ("HEALTH_TOKENS", "a-long-random-token-of-32-chars!", "dbconnmgr.E107", "list of strings"),
    ("THRESHOLDS", {"UTILIZATION_WARNING": "70"}, "dbconnmgr.E103", "number or None"),
    ("THRESHOLDS", {"PGBOUNCER_MAXWAIT_WARNING": -1}, "dbconnmgr.E103", "in seconds"),
    ("PGBOUNCER", "postgres://s@h:6432/pgbouncer", "dbconnmgr.E119", "must be a dict"),
    ("PGBOUNCER", {"default": "h:6432"}, "dbconnmgr.E119", "must be a postgres:// URL"),
    ("PGBOUNCER", {"default": {"SERVER": "postgres://a@h/d"}}, "dbconnmgr.E119", "no 'CONSOLE'"),
    (
        "PGBOUNCER",
        {"default": {"CONSOLE": "postgres://s@h/pgbouncer", "SEVRER": ""}},
        "dbconnmgr.E119",
        "'SEVRER'",
    ),
]


@pytest.mark.parametrize(("key", "value", "check_id", "fragment"), BAD_VALUES)
def test_every_key_is_validated_by_check_and_where_read(
    settings, key: str, value: Any, check_id: str, fragment: str
) -> None:
    from dbconnmgr.app_settings import get_setting
    from dbconnmgr.exceptions import InvalidSetting

    found = ids(settings, {key: value})
    assert [i for i, _ in found] == [check_id], found
    assert f"DBCONNMGR[{key!r}]" in found[0][1]
    assert fragment in found[0][1]
    # The same validator refuses the value where it is read, naming the key.
    with pytest.raises(InvalidSetting, match=re.escape(f"DBCONNMGR[{key!r}]")) as caught:
        get_setting(key)
    assert caught.value.key == key
    assert "\n" not in str(caught.value)


def test_every_declared_key_has_a_checked_bad_value() -> None:
    from dbconnmgr.app_settings import SCHEMA

    assert {key for key, *_ in BAD_VALUES} == set(SCHEMA)


def test_health_token_is_never_echoed(settings) -> None:
    secret = "a-long-random-token-of-32-chars!"
    [(_, message)] = ids(settings, {"HEALTH_TOKENS": secret})
    assert secret not in message


def test_pgbouncer_url_is_never_echoed(settings) -> None:
    secret = "mysql://stats:s3cret@h:6432/pgbouncer"
    [(_, message)] = ids(settings, {"PGBOUNCER": {"default": {"CONSOLE": secret}}})
    assert "s3cret" not in message


def test_unknown_key_is_a_warning_with_a_hint(settings) -> None:
    settings.DBCONNMGR = {"IDLE_TIMOUT": 60}
    [message] = check_dbconnmgr_settings()
    assert message.id == "dbconnmgr.W102"
    assert message.hint is not None and message.hint.startswith("Did you mean 'IDLE_TIMEOUT'?")


def test_valid_edge_values_pass(settings) -> None:
    assert (
        ids(
            settings,
            {
                "RETENTION_DAYS": None,
                "TERMINATE_TIMEOUT": 0,
                "BUDGET_SAFETY": 1,
                "BUDGET_HEADROOM": 0,
                "ASGI": True,
                "SERVICES": ["web=2x4x8", {"name": "worker", "processes": 1, "threads": 2}],
                "THRESHOLDS": None,
                "PGBOUNCER": {
                    "default": "postgres://stats@127.0.0.1:6432/pgbouncer",
                    "other": {"CONSOLE": "postgres://s@h/pgbouncer", "SERVER": "postgres://a@h/d"},
                },
            },
        )
        == []
    )


def test_dbconnmgr_not_a_dict_is_refused_where_read(settings) -> None:
    from dbconnmgr.app_settings import get_setting
    from dbconnmgr.exceptions import InvalidSetting

    settings.DBCONNMGR = [("IDLE_TIMEOUT", 5)]
    with pytest.raises(InvalidSetting, match="DBCONNMGR must be a dict"):
        get_setting("IDLE_TIMEOUT")


def test_command_refuses_a_bad_setting_in_one_line_exit_3() -> None:
    result = manage(
        "db_connections",
        "--action=status",
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"STATUS_LIMIT": -1})},
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "DBCONNMGR['STATUS_LIMIT'] must be a whole number from 1" in line


def test_services_as_a_string_is_one_line_naming_the_key() -> None:
    # It used to be read character by character: "got 'w'".
    result = manage(
        "db_connections",
        "--action=budget",
        settings_module="tests.settings_cli",
        extra_env={"DBCONNMGR_JSON": json.dumps({"SERVICES": "web=2x4x8"})},
    )
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "DBCONNMGR['SERVICES'] must be a list, got str 'web=2x4x8'" in line
    assert "got 'w'" not in line
