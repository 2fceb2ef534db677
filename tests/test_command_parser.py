"""The command's parser, composed from each action's declared options, and the monitor's
policy as a library (``iter_samples(record=True, alert=True)``)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dbconnmgr.cli import registry
from dbconnmgr.cli.monitor import MonitorAction, MonitorOptions
from dbconnmgr.management.commands.db_connections import Command
from tests import alert_handlers
from tests.conftest import manage

RECORD = "tests.alert_handlers.record"


def _parser(action: str | None) -> Any:
    command = Command()
    command._action = action  # what run_from_argv() finds on a command line
    return command.create_parser("manage.py", "db_connections")


@pytest.mark.engine_neutral
@pytest.mark.parametrize(
    "argv",
    [
        ["--no-such-option"],  # unrecognized arguments
        ["--limit=many"],  # a type's ArgumentTypeError
        ["--format=xml"],  # a choice
        ["--limit"],  # a missing value
    ],
)
def test_argparse_reports_every_usage_error_through_parser_error(argv: list[str]) -> None:
    """one_line_usage_errors() relies on argparse calling ``parser.error``: if a version of
    argparse stops doing so, this fails (SystemExit 2 and a usage dump instead)."""
    with pytest.raises(CommandError) as info:
        _parser("status").parse_args(["--action=status", *argv])
    assert info.value.returncode == 3


@pytest.mark.engine_neutral
def test_every_option_of_another_action_is_refused_by_the_parser() -> None:
    actions = registry()
    for name, cls in actions.items():
        mine = {d.dest for d in cls.options_type.declared()}
        parser = _parser(name)
        for other in actions.values():
            for declared in other.options_type.declared():
                if declared.dest in mine:
                    continue
                argv = [f"--action={name}", declared.flags[0]]
                if declared.takes_value:
                    argv.append("1")
                with pytest.raises(CommandError, match="does not apply to") as info:
                    parser.parse_args(argv)
                assert f"{declared.flags[0]} does not apply to --action={name}" in str(info.value)
                assert other.name in str(info.value)


@pytest.mark.engine_neutral
def test_help_of_one_action_lists_its_options_only() -> None:
    result = manage("db_connections", "--action=monitor", "--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--watch", "--interval", "--count", "--record", "--database", "--format"):
        assert flag in result.stdout
    for flag in ("--limit", "--idle-for", "--noinput", "--service", "--days", "--warning"):
        assert flag not in result.stdout
    close_idle = manage("db_connections", "--action=close-idle", "--help").stdout
    assert "--noinput" in close_idle and "--idle-for" in close_idle
    assert "--watch" not in close_idle and "--running-for" not in close_idle


@pytest.mark.engine_neutral
def test_call_command_refuses_another_actions_option_by_its_keyword() -> None:
    with pytest.raises(CommandError, match=r"--watch does not apply to --action=status"):
        call_command("db_connections", action="status", watch=True, stdout=io.StringIO())
    # at its default it is not "given"
    with pytest.raises(CommandError, match=r"--running-for SECONDS"):
        call_command("db_connections", action="cancel", watch=False, stdout=io.StringIO())


@pytest.mark.engine_neutral
def test_an_action_reads_its_options_typed_and_frozen() -> None:
    opts = {"database": "default", "format": "json", "watch": True, "count": 3, "limit": 9}
    action = MonitorAction(Command(), opts)
    assert action.options == MonitorOptions(watch=True, interval=None, count=3, record=False)
    name = "count"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(action.options, name, 4)


# -- the monitor's policy from Python --------------------------------------------------------
@pytest.mark.django_db
def test_iter_samples_records_and_alerts_as_the_command_does(settings: Any) -> None:
    from dbconnmgr import alerts
    from dbconnmgr.models import ConnectionSample
    from dbconnmgr.monitor_loop import iter_samples

    settings.DBCONNMGR = {
        "THRESHOLDS": {"CONNECTIONS_WARNING": 1},  # its own connection counts
        "ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60},
    }
    alert_handlers.RECEIVED.clear()
    alerts.reset()
    try:
        samples = list(iter_samples("default", interval=0.05, count=2, record=True, alert=True))
        assert ConnectionSample.objects.count() == 2
        keys = {a.finding.key for a in alert_handlers.RECEIVED}
        assert any(key.startswith("utilization") for key in keys), keys
        assert len(alert_handlers.RECEIVED) == 1  # the second sample is within the cooldown
        assert all(s.reachable for s in samples)
    finally:
        alert_handlers.RECEIVED.clear()
        alerts.reset()


@pytest.mark.django_db
def test_iter_samples_without_policy_records_nothing() -> None:
    from dbconnmgr.models import ConnectionSample
    from dbconnmgr.monitor_loop import iter_samples

    list(iter_samples("default", interval=0.05, count=1))
    assert ConnectionSample.objects.count() == 0


def test_invalid_thresholds_judge_no_snapshot_but_an_unreachable_server_still_alerts(
    settings: Any,
) -> None:
    """As the monitor command always did: no thresholds are needed to say the server is
    gone."""
    from datetime import UTC, datetime

    from dbconnmgr import alerts
    from dbconnmgr.core.samples import SampleWindow
    from dbconnmgr.exceptions import ServerUnavailable
    from dbconnmgr.monitor_loop import Monitor, SamplePolicy

    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    alert_handlers.RECEIVED.clear()
    alerts.reset()
    policy = SamplePolicy(thresholds=None)
    try:
        Monitor("default", 1, on_sample=policy).sample()  # reachable: not judged
        assert alert_handlers.RECEIVED == []
        down = ServerUnavailable("database 'default': gone", kind="unreachable", alias="default")
        policy(SampleWindow("default", 60).unreachable(datetime.now(UTC), str(down), down))
        assert [a.severity.label for a in alert_handlers.RECEIVED] == ["critical"]
    finally:
        alert_handlers.RECEIVED.clear()
        alerts.reset()
