"""What ``manage.py db_connections`` imports: the chosen action's module and what it needs,
not every action's (the command's start-up is most of what a one-shot status costs).

Each case runs the real command in a fresh interpreter and reads ``sys.modules`` at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, dsn_to_url, manage, superuser_dsn

# Runs manage.py as `python manage.py ...` does, then writes the modules it imported.
_SCRIPT = """
import atexit, json, os, runpy, sys
def dump():
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(dump)
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""

#: Modules no one-shot status or termination needs: other actions' and the monitor's,
#: history and charts, the terminal renderer (JSON never draws), /metrics.
_NEVER_FOR_JSON = (
    "dbconnmgr.monitor_loop",
    "dbconnmgr.history",
    "dbconnmgr.live_view",
    "dbconnmgr.load_view",
    "dbconnmgr.render",
    "dbconnmgr.metrics",
    "dbconnmgr.core.charts",
    "rich",
    "prometheus_client",
)


def _modules(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=dsn_to_url(superuser_dsn()),
        MODULES_OUT=str(out),
    )
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # the command did its work
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    ("args", "needed", "not_needed"),
    [
        (
            ["--action=status", "--format=json"],
            "dbconnmgr.cli.status",
            ["health", "monitor", "peak", "terminate", "budget"],
        ),
        (
            ["--action=close-idle", "--dry-run", "--noinput", "--format=json"],
            "dbconnmgr.cli.terminate",
            ["status", "health", "monitor", "peak", "budget"],
        ),
    ],
)
def test_an_action_imports_its_own_module_only(
    tmp_path: Path, args: list[str], needed: str, not_needed: list[str]
) -> None:
    modules = _modules(tmp_path, "db_connections", *args)
    assert needed in modules  # the dump sees what the command imported
    unexpected = [
        name
        for name in (*(f"dbconnmgr.cli.{m}" for m in not_needed), *_NEVER_FOR_JSON)
        if name in modules or any(m.startswith(f"{name}.") for m in modules)
    ]
    assert unexpected == []


def test_status_json_does_not_import_the_payloads_shell(tmp_path: Path) -> None:
    """status builds its document with the pure builder; the shell module (and the chart
    types it imports) are for health and peak."""
    modules = _modules(tmp_path, "db_connections", "--format=json")  # status by default
    assert "dbconnmgr.core.builders" in modules
    assert "dbconnmgr.payloads" not in modules
    assert "dbconnmgr.cli.health" not in modules


@pytest.mark.engine_neutral
def test_help_without_an_action_lists_every_action_and_every_option() -> None:
    from dbconnmgr.cli import ACTIONS, registry

    result = manage("db_connections", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for name, cls in registry().items():
        assert cls.name == name  # the registry names each class where it is
        assert f"{name}: " in text
        for declared in cls.options_type.declared():
            assert declared.flags[0] in text, (name, declared.flags[0])
    assert list(registry()) == list(ACTIONS)


@pytest.mark.engine_neutral
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # without --action the command runs status: its parser refuses monitor's option
        (["--watch"], "--watch does not apply to --action=status (it is for: monitor)"),
        # an abbreviation of one other action's option, with its value
        (
            ["--action=status", "--idle-f=5"],
            "--idle-for does not apply to --action=status (it is for: close-idle)",
        ),
        (
            ["--action=health", "--noinput"],
            "--noinput does not apply to --action=health (it is for: close-idle, "
            "force-close, cancel)",
        ),
    ],
)
def test_another_actions_option_on_the_command_line_is_one_line_exit_3(
    argv: list[str], message: str
) -> None:
    result = manage("db_connections", *argv)
    assert result.returncode == 3
    assert result.stderr.strip().endswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.engine_neutral
def test_an_argument_no_action_takes_is_still_unrecognized() -> None:
    result = manage("db_connections", "--action=status", "--no-such-option")
    assert result.returncode == 3
    assert "unrecognized arguments: --no-such-option" in result.stderr
