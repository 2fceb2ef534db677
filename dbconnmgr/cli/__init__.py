"""The actions of ``manage.py db_connections``: one module per action, one registry.

An action declares its own options; the command adds them to one parser and refuses an
option given to an action it does not belong to.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.management.base import BaseCommand, CommandError

if TYPE_CHECKING:
    from dbconnmgr.render import Renderer


class Action:
    """One ``--action``. Subclasses set ``name``, ``help``, ``options`` and implement run().

    ``options`` names the dests of the options this action accepts beyond the common ones
    (``--database``, ``--format``); add_arguments() declares them once for all actions.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ("table", "json")

    def __init__(self, command: BaseCommand, opts: dict[str, Any]) -> None:
        self.command = command
        self.opts = opts
        self.alias: str = opts["database"]
        self.format: str = opts["format"]

    @cached_property
    def renderer(self) -> Renderer:
        """The terminal renderer; rich is imported only when a table is drawn."""
        from dbconnmgr.render import Renderer

        return Renderer(self.command.stdout)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Declare options this action owns (those not declared by another action)."""

    def run(self) -> int:
        """Do the work and return the process exit code."""
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------
    def write_json(self, payload: Any) -> None:
        """Write one JSON document to stdout."""
        self.command.stdout.write(json.dumps(payload, indent=2, default=str))

    def confirm(self, question: str) -> bool:
        """Ask on a terminal; refuse without one unless --noinput was given."""
        if not self.opts.get("interactive", True):  # --noinput
            return True
        if not sys.stdin.isatty():
            raise CommandError(
                "refusing to act without confirmation: stdin is not a terminal; "
                "pass --noinput to run from a script"
            )
        answer = input(f"{question} [y/N] ")
        return answer.strip().lower() in {"y", "yes"}


def whole_number(minimum: int = 0) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return number

    return parse


def finite_number(
    low: float = 0, high: float | None = None, *, above: bool = False, what: str = "a number"
) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``low`` (> ``low`` with ``above``), <= ``high``."""
    bounds = f"{'>' if above else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        in_range = (number > low if above else number >= low) and (high is None or number <= high)
        if not (math.isfinite(number) and in_range):
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {value}")
        return number

    return parse


#: argparse type: a whole number >= 1 (counts, limits).
positive_int = whole_number(1)
#: argparse type: a finite number >= 0 (seconds, thresholds).
non_negative_float = finite_number(0)


def registry() -> dict[str, type[Action]]:
    """Every action by name, in the order ``--help`` lists them."""
    from dbconnmgr.cli.budget import BudgetAction
    from dbconnmgr.cli.health import HealthAction
    from dbconnmgr.cli.monitor import MonitorAction
    from dbconnmgr.cli.peak import PeakAction
    from dbconnmgr.cli.status import StatusAction
    from dbconnmgr.cli.terminate import CloseIdleAction, ForceCloseAction

    actions: list[type[Action]] = [
        StatusAction,
        HealthAction,
        MonitorAction,
        PeakAction,
        CloseIdleAction,
        ForceCloseAction,
        BudgetAction,
    ]
    return {action.name: action for action in actions}
