"""``--action=close-idle``, ``--action=force-close`` and ``--action=cancel``: the emergency
levers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from django.core.management.base import CommandError

from dbconnmgr.cli import Action, non_negative_seconds
from dbconnmgr.core.termination import STATE_CHOICES, TerminationReport
from dbconnmgr.exceptions import EXIT_UNKNOWN, EXIT_WARNING, TerminationIncomplete

#: Exit code when some selected backend could not be terminated (permission, still running).
EXIT_NOT_ALL_TERMINATED = EXIT_WARNING  # partly done

_SHARED = ("dry_run", "interactive", "include_superusers")


def _add_once(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """Declare an option unless another action already did (they share the parser)."""
    if any(flag in parser._option_string_actions for flag in flags):
        return
    parser.add_argument(*flags, **kwargs)


class _TerminatingAction(Action):
    """Shared flow: select, show and confirm, terminate, render, exit code."""

    verb: ClassVar[str] = "terminate"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        _add_once(
            parser,
            "--dry-run",
            action="store_true",
            dest="dry_run",
            help="close-idle/force-close/cancel: show what would be done, change nothing",
        )
        _add_once(
            parser,
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation (for scripts)",
        )
        _add_once(
            parser,
            "--include-superusers",
            action="store_true",
            dest="include_superusers",
            help="close-idle/force-close/cancel: also superusers' sessions (only as a superuser)",
        )

    def ask(self, plan: TerminationReport) -> bool:
        """Show the plan on a terminal and ask; refuse without a terminal unless --noinput."""
        if not self.opts.get("interactive", True):
            return True
        count = len(plan.would_act)
        if plan.signal == "cancel":
            question = f"Cancel the queries of {count} backend(s) on database {plan.database!r}?"
        else:
            question = (
                f"Terminate {count} backend(s) on database {plan.database!r} ({plan.action})?"
            )
        if not sys.stdin.isatty():
            return self.confirm(question)  # refuses with the standard message
        if self.format == "json":
            # stdout carries one JSON document: talk to the person on stderr
            sys.stderr.write(f"{plan.summary()}\n{question} [y/N] ")
            sys.stderr.flush()
            answer = sys.stdin.readline()
            return answer.strip().lower() in {"y", "yes"}  # "" at end of input: no
        self.renderer.termination(plan)
        return self.ask_yes_no(question)

    def execute(self, act: Callable[[], TerminationReport]) -> int:
        """Run the action and render its report, also when it failed after signalling
        (then the error follows on stderr in one line, exit 3)."""
        try:
            report = act()
        except TerminationIncomplete as exc:
            self.finish(exc.report)
            self.command.stderr.write(str(exc))
            return EXIT_UNKNOWN  # the outcome could not be confirmed
        return self.finish(report)

    def finish(self, report: TerminationReport) -> int:
        """Render the report; exit 1 (partly done) when a selected backend was not terminated."""
        if self.format == "json":
            self.write_json(report.as_dict())
        else:
            self.renderer.termination(report)
        acted = not (report.dry_run or report.cancelled)
        return EXIT_NOT_ALL_TERMINATED if acted and report.failed else 0


class CloseIdleAction(_TerminatingAction):
    """Terminate client backends idle for longer than a threshold."""

    name = "close-idle"
    help = (
        "terminate client backends idle for at least --idle-for seconds "
        "(default DBCONNMGR['IDLE_TIMEOUT'], 300) that match the filters"
    )
    options: ClassVar[tuple[str, ...]] = (
        "idle_for",
        "state",
        "application",
        "user",
        "db_name",
        *_SHARED,
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        _add_once(
            parser,
            "--idle-for",
            type=non_negative_seconds,
            default=None,
            metavar="SECONDS",
            help="close-idle: minimum seconds in the state (default DBCONNMGR['IDLE_TIMEOUT'])",
        )
        _add_once(
            parser,
            "--state",
            choices=list(STATE_CHOICES),
            default=None,
            help="close-idle: idle (default), idle-in-transaction (incl. aborted) or all",
        )
        _add_once(
            parser,
            "--application",
            default=None,
            metavar="NAME",
            help="close-idle/cancel: only sessions with this exact application_name",
        )
        _add_once(
            parser, "--user", default=None, metavar="NAME", help="close-idle/cancel: only this role"
        )
        _add_once(
            parser,
            "--db-name",
            dest="db_name",
            default=None,
            metavar="NAME",
            help="close-idle/cancel: only sessions on this database (default: all databases)",
        )

    def run(self) -> int:
        from dbconnmgr.actions import close_idle_connections

        return self.execute(
            lambda: close_idle_connections(
                self.alias,
                older_than=self.opts.get("idle_for"),
                states=STATE_CHOICES[self.opts.get("state") or "idle"],
                **self.filters(),
            )
        )

    def filters(self) -> dict[str, Any]:
        """The filters and switches close-idle and cancel share, as keyword arguments."""
        return {
            "application": self.opts.get("application"),
            "user": self.opts.get("user"),
            "database_name": self.opts.get("db_name"),
            "dry_run": bool(self.opts.get("dry_run")),
            "include_superusers": bool(self.opts.get("include_superusers")),
            "confirm": self.ask,
        }


class ForceCloseAction(_TerminatingAction):
    """Close this process's connections and terminate every other backend of the project."""

    name = "force-close"
    help = (
        "close this process's connections and pool, then terminate every client backend of "
        "this project (its application_name, else its user) on the alias's database"
    )
    options = _SHARED

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)

    def run(self) -> int:
        from dbconnmgr.actions import force_close_connections

        return self.execute(
            lambda: force_close_connections(
                self.alias,
                dry_run=bool(self.opts.get("dry_run")),
                include_superusers=bool(self.opts.get("include_superusers")),
                confirm=self.ask,
            )
        )


class CancelAction(CloseIdleAction):
    """Cancel queries running for longer than a threshold; their sessions stay open."""

    name = "cancel"
    help = (
        "cancel the queries running longer than --running-for seconds that match the filters "
        "(pg_cancel_backend: the sessions stay open)"
    )
    options: ClassVar[tuple[str, ...]] = (
        "running_for", "application", "user", "db_name", *_SHARED,
    )  # fmt: skip

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        _add_once(
            parser,
            "--running-for",
            dest="running_for",
            type=non_negative_seconds,
            default=None,
            metavar="SECONDS",
            help="cancel: only queries running for longer than this (required)",
        )

    def run(self) -> int:
        from dbconnmgr.actions import cancel_long_queries

        running_for = self.opts.get("running_for")
        if running_for is None:
            raise CommandError("--action=cancel needs --running-for SECONDS")
        return self.execute(
            lambda: cancel_long_queries(self.alias, older_than=running_for, **self.filters())
        )
