"""``--action=close-idle``, ``--action=force-close`` and ``--action=cancel``: the emergency
levers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from django.core.management.base import CommandError

from dbconnmgr.cli import Action, non_negative_seconds
from dbconnmgr.cli.options import Options, option
from dbconnmgr.core.termination import STATE_CHOICES, TerminationReport
from dbconnmgr.exceptions import EXIT_UNKNOWN, EXIT_WARNING, TerminationIncomplete

#: Exit code when some selected backend could not be terminated (permission, still running).
EXIT_NOT_ALL_TERMINATED = EXIT_WARNING  # partly done


@dataclass(frozen=True)
class TerminateOptions(Options):
    """The options every terminating action takes."""

    dry_run: bool = option(
        "--dry-run",
        default=False,
        action="store_true",
        help="close-idle/force-close/cancel: show what would be done, change nothing",
    )
    interactive: bool = option(
        "--noinput",
        "--no-input",
        default=True,
        action="store_false",
        help="do not ask for confirmation (for scripts)",
    )
    include_superusers: bool = option(
        "--include-superusers",
        default=False,
        action="store_true",
        help="close-idle/force-close/cancel: also superusers' sessions (only as a superuser)",
    )


@dataclass(frozen=True)
class FilterOptions(TerminateOptions):
    """The filters close-idle and cancel share."""

    application: str | None = option(
        "--application",
        metavar="NAME",
        help="close-idle/cancel: only sessions with this exact application_name",
    )
    user: str | None = option("--user", metavar="NAME", help="close-idle/cancel: only this role")
    db_name: str | None = option(
        "--db-name",
        metavar="NAME",
        help="close-idle/cancel: only sessions on this database (default: all databases)",
    )


@dataclass(frozen=True)
class CloseIdleOptions(FilterOptions):
    """``--action=close-idle``'s options."""

    idle_for: float | None = option(
        "--idle-for",
        type=non_negative_seconds,
        metavar="SECONDS",
        help="close-idle: minimum seconds in the state (default DBCONNMGR['IDLE_TIMEOUT'])",
    )
    state: str | None = option(
        "--state",
        choices=list(STATE_CHOICES),
        help="close-idle: idle (default), idle-in-transaction (incl. aborted) or all",
    )


@dataclass(frozen=True)
class CancelOptions(FilterOptions):
    """``--action=cancel``'s options."""

    running_for: float | None = option(
        "--running-for",
        type=non_negative_seconds,
        metavar="SECONDS",
        help="cancel: only queries running for longer than this (required)",
    )


TerminateT = TypeVar("TerminateT", bound=TerminateOptions)
FilterT = TypeVar("FilterT", bound=FilterOptions)


class _TerminatingAction(Action[TerminateT]):
    """Shared flow: select, show and confirm, terminate, render, exit code."""

    verb: ClassVar[str] = "terminate"

    def ask(self, plan: TerminationReport) -> bool:
        """Show the plan on a terminal and ask; refuse without a terminal unless --noinput."""
        if not self.options.interactive:
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


class _FilteringAction(_TerminatingAction[FilterT]):
    """close-idle and cancel: the filters they share."""

    def filters(self) -> dict[str, Any]:
        """The filters and switches close-idle and cancel share, as keyword arguments."""
        return {
            "application": self.options.application,
            "user": self.options.user,
            "database_name": self.options.db_name,
            "dry_run": self.options.dry_run,
            "include_superusers": self.options.include_superusers,
            "confirm": self.ask,
        }


class CloseIdleAction(_FilteringAction[CloseIdleOptions]):
    """Terminate client backends idle for longer than a threshold."""

    name = "close-idle"
    help = (
        "terminate client backends idle for at least --idle-for seconds "
        "(default DBCONNMGR['IDLE_TIMEOUT'], 300) that match the filters"
    )
    options_type = CloseIdleOptions

    def run(self) -> int:
        from dbconnmgr.actions import close_idle_connections

        return self.execute(
            lambda: close_idle_connections(
                self.alias,
                older_than=self.options.idle_for,
                states=STATE_CHOICES[self.options.state or "idle"],
                **self.filters(),
            )
        )


class ForceCloseAction(_TerminatingAction[TerminateOptions]):
    """Close this process's connections and terminate every other backend of the project."""

    name = "force-close"
    help = (
        "close this process's connections and pool, then terminate every client backend of "
        "this project (its application_name, else its user) on the alias's database"
    )
    options_type = TerminateOptions

    def run(self) -> int:
        from dbconnmgr.actions import force_close_connections

        return self.execute(
            lambda: force_close_connections(
                self.alias,
                dry_run=self.options.dry_run,
                include_superusers=self.options.include_superusers,
                confirm=self.ask,
            )
        )


class CancelAction(_FilteringAction[CancelOptions]):
    """Cancel queries running for longer than a threshold; their sessions stay open."""

    name = "cancel"
    help = (
        "cancel the queries running longer than --running-for seconds that match the filters "
        "(pg_cancel_backend: the sessions stay open)"
    )
    options_type = CancelOptions

    def run(self) -> int:
        from dbconnmgr.actions import cancel_long_queries

        running_for = self.options.running_for
        if running_for is None:
            raise CommandError("--action=cancel needs --running-for SECONDS")
        return self.execute(
            lambda: cancel_long_queries(self.alias, older_than=running_for, **self.filters())
        )
