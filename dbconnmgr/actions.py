"""close-idle, force-close and cancel: signal client backends safely, report what really
happened. The admin page's cancel and terminate buttons use :func:`signal_backends`.

Both follow the same steps: read the candidates (:meth:`ConnectionBackend.select_for_termination`),
optionally show them and ask (``confirm``), then run ONE terminating statement that re-checks
every condition per backend (a session that turned active meanwhile is spared), wait for the
signalled backends to exit, and build a :class:`~dbconnmgr.core.termination.TerminationReport`
from the server's answers. Every termination is logged on the ``dbconnmgr`` logger.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from dbconnmgr.app_settings import get_setting
from dbconnmgr.backends import ConnectionBackend, backend_class_of, get_backend, working_backend
from dbconnmgr.core.termination import (
    ACTIVE_STATES,
    FAILED_OUTCOMES,
    IDLE_STATES,
    Actor,
    Criteria,
    LocalClose,
    Selection,
    Signal,
    TerminationReport,
    build_report,
)
from dbconnmgr.exceptions import ActionNotPossible, InsufficientPrivilege, TerminationIncomplete
from dbconnmgr.internals import idle_pool_connections, open_pool

logger = logging.getLogger("dbconnmgr")

#: Called with the plan (outcomes predicted, nothing done yet); return False to cancel.
Confirm = Callable[[TerminationReport], bool]

__all__ = [
    "Confirm",
    "cancel_long_queries",
    "close_idle_connections",
    "close_local_connections",
    "force_close_connections",
    "project_identity",
    "signal_backends",
]


def close_idle_connections(
    using: str = "default",
    *,
    older_than: float | None = None,
    states: Iterable[str] = ("idle",),
    application: str | None = None,
    user: str | None = None,
    database_name: str | None = None,
    dry_run: bool = False,
    include_superusers: bool = False,
    confirm: Confirm | None = None,
) -> TerminationReport:
    """Terminate client backends idle for longer than ``older_than`` seconds.

    Never the own backend, never a non-client backend, never a superuser's session unless
    ``include_superusers`` (which needs a superuser). State and age are re-checked in the
    statement that signals, so a session that became active after selection survives.

    Args:
        using: the Django database alias to connect through.
        older_than: seconds since the session's last state change; default
            ``DBCONNMGR["IDLE_TIMEOUT"]`` (300).
        states: exact ``pg_stat_activity.state`` values among ``idle``, ``idle in
            transaction``, ``idle in transaction (aborted)``.
        application: only sessions with this exact ``application_name``.
        user: only sessions of this role.
        database_name: only sessions on this database (default: every database).
        dry_run: select and predict, change nothing.
        include_superusers: also terminate superusers' idle sessions.
        confirm: called with the plan before anything is terminated; False cancels.

    Returns:
        The report: selected backends and, per backend, the outcome and its reason.

    Raises:
        ValueError: a state that is not idle, or a negative/non-finite ``older_than``.
        InvalidSetting: ``IDLE_TIMEOUT`` or ``TERMINATE_TIMEOUT`` is invalid (raised before
            anything is selected or terminated).
        InsufficientPrivilege: ``include_superusers`` without being a superuser.
        TerminationIncomplete: backends were signalled, then waiting for them failed; its
            ``report`` says what was done (the audit lines are logged).
        UnknownDatabaseAlias, UnsupportedDatabase, ServerUnavailable
    """
    wanted = tuple(dict.fromkeys(states))
    bad = [s for s in wanted if s not in IDLE_STATES]
    if bad or not wanted:
        raise ValueError(f"states must be among {', '.join(IDLE_STATES)}; got {bad or 'none'}")
    # Every setting the action uses is read (and validated) before anything changes.
    wait = _terminate_timeout()
    seconds = _seconds(get_setting("IDLE_TIMEOUT") if older_than is None else older_than)
    criteria = Criteria(
        action="close-idle",
        states=wanted,
        older_than=seconds,
        application_name=application,
        user=user,
        database_name=database_name,
        include_superusers=include_superusers,
    )
    return _run_on(using, criteria, wait=wait, dry_run=dry_run, confirm=confirm)


def cancel_long_queries(
    using: str = "default",
    *,
    older_than: float,
    application: str | None = None,
    user: str | None = None,
    database_name: str | None = None,
    dry_run: bool = False,
    include_superusers: bool = False,
    confirm: Confirm | None = None,
) -> TerminationReport:
    """Cancel the queries that have been running for longer than ``older_than`` seconds.

    The sessions stay open: only their running statement is cancelled
    (``pg_cancel_backend``). Selected are ``active`` client backends whose state began
    more than ``older_than`` seconds ago, with the same filters, protections and
    re-checking statement as :func:`close_idle_connections`: a query that ended (or was
    replaced by a newer one) between selection and signal is spared. A query counts as
    cancelled when its backend has left that ``active`` state within
    ``DBCONNMGR["TERMINATE_TIMEOUT"]``.

    Raises:
        ValueError: a negative or non-finite ``older_than``.
        ActionNotPossible: the alias's backend cannot cancel a query
            (``capabilities.can_cancel``).
        InvalidSetting, InsufficientPrivilege, TerminationIncomplete, UnknownDatabaseAlias,
        UnsupportedDatabase, ServerUnavailable: as for :func:`close_idle_connections`.
    """
    wait = _terminate_timeout()
    criteria = Criteria(
        action="cancel",
        signal="cancel",
        states=ACTIVE_STATES,
        older_than=_seconds(older_than),
        application_name=application,
        user=user,
        database_name=database_name,
        include_superusers=include_superusers,
    )
    return _run_on(using, criteria, wait=wait, dry_run=dry_run, confirm=confirm)


def signal_backends(
    using: str,
    pids: Iterable[int],
    *,
    signal: Signal,
    requested_by: str,
    dry_run: bool = False,
    include_superusers: bool = False,
    backend_starts: Mapping[int, datetime] | None = None,
) -> TerminationReport:
    """Terminate the sessions ``pids``, or cancel their running queries (the admin page).

    The same selection, re-checking statement, report and audit log as the command's
    actions: a cancel selects only sessions that are ``active`` (running a query); a
    terminate selects client backends in any state. The audit lines name
    ``requested_by`` (``Django user alice``) before the OS user and the role.

    Args:
        using: the Django database alias to act through.
        pids: the backends picked; pids that are not (or no longer) client backends of the
            server are simply not selected.
        signal: ``terminate`` or ``cancel``.
        requested_by: who asked, for the report and the audit log.
        dry_run: select and predict only (the confirmation page).
        include_superusers: also superusers' sessions (needs a superuser role).
        backend_starts: each pid's ``backend_start`` when it was shown (the confirmation
            page): a pid the server has since given to a new session is not selected.
            Pids missing from it are not selected either.

    Raises:
        ActionNotPossible: the backend cannot do it (``capabilities``).
        InvalidSetting, InsufficientPrivilege, TerminationIncomplete, UnknownDatabaseAlias,
        UnsupportedDatabase, ServerUnavailable: as for :func:`close_idle_connections`.
    """
    wait = _terminate_timeout()
    chosen = tuple(dict.fromkeys(int(p) for p in pids))
    starts = None
    if backend_starts is not None:
        chosen = tuple(p for p in chosen if p in backend_starts)
        starts = tuple(backend_starts[p] for p in chosen)
    criteria = Criteria(
        action=f"admin-{signal}",
        signal=signal,
        states=ACTIVE_STATES if signal == "cancel" else None,
        only_pids=chosen,
        only_backend_starts=starts,
        include_superusers=include_superusers,
    )
    with working_backend(using, separate=True) as backend:
        return _run(
            backend, using, criteria, wait=wait, dry_run=dry_run, confirm=None,
            requested_by=requested_by,
        )  # fmt: skip


def force_close_connections(
    using: str = "default",
    *,
    dry_run: bool = False,
    include_superusers: bool = False,
    confirm: Confirm | None = None,
) -> TerminationReport:
    """Close this process's connections for ``using``, then terminate the project's others.

    This process's side: this thread's Django connection for the alias and, on Django 5.1+
    with ``OPTIONS["pool"]``, the alias's pool are closed (other threads' connections are
    theirs to close). Then every client backend of this project on the alias's database,
    in any state, is terminated except the own one. The project's backends are those with
    the ``application_name`` of the alias's ``OPTIONS``, or else of the alias's ``USER``
    (see :func:`project_identity`).

    Args:
        using: the Django database alias.
        dry_run: select and predict, close and terminate nothing.
        include_superusers: also superusers' sessions (needs a superuser).
        confirm: called with the plan before anything is terminated; False cancels
            (this process's own connections are already closed by then).

    Raises:
        ActionNotPossible: called inside ``transaction.atomic()`` on that alias.
        InvalidSetting: ``TERMINATE_TIMEOUT`` is invalid (raised before anything is closed).
        InsufficientPrivilege: ``include_superusers`` without being a superuser.
        TerminationIncomplete: backends were signalled, then waiting for them failed; its
            ``report`` says what was done (the audit lines are logged).
        UnknownDatabaseAlias, UnsupportedDatabase, ServerUnavailable
    """
    wait = _terminate_timeout()  # validated before this process's connections are closed
    backend = get_backend(using)
    if not dry_run and backend.connection.in_atomic_block:
        raise ActionNotPossible(
            f"force-close cannot run inside transaction.atomic() on database {using!r}: "
            "it closes this connection"
        )
    # Closed first, so that the selection does not list this process's own backends:
    # they are closed, not terminated. Django reopens connections (and pools) on next use.
    local = None if dry_run else close_local_connections(using)
    application, user = project_identity(using)
    criteria = Criteria(
        action="force-close",
        application_name=application,
        user=user,
        current_user_only=application is None and user is None,
        current_database_only=True,
        include_superusers=include_superusers,
        exclude_pids=local.backend_pids if local is not None else _local_backend_pids(using),
    )
    with working_backend(using, separate=True) as worker:
        return _run(
            worker, using, criteria, wait=wait, dry_run=dry_run, confirm=confirm, local=local
        )


def project_identity(using: str = "default") -> tuple[str | None, str | None]:
    """How force-close recognises this project's sessions: (application_name, user).

    The alias's ``OPTIONS["application_name"]`` when set (user None); else its ``USER``
    (application None); else (None, None), meaning the role the alias connects as.
    """
    settings_dict = connections[using].settings_dict
    application = (settings_dict.get("OPTIONS") or {}).get("application_name")
    if application:
        return str(application), None
    user = settings_dict.get("USER")
    return None, (str(user) if user else None)


def close_local_connections(using: str = "default") -> LocalClose:
    """Close this thread's Django connection for ``using`` and the alias's native pool.

    Raises:
        ActionNotPossible: inside ``transaction.atomic()`` on that alias.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        raise ActionNotPossible(f"cannot close database {using!r} inside transaction.atomic()")
    pids = _local_backend_pids(using)
    was_open = connection.connection is not None
    connection.close()
    pool = _local_pool(connection)
    pool_size: int | None = None
    if pool is not None:
        pool_size = int(pool.get_stats().get("pool_size", 0))
        connection.close_pool()  # type: ignore[attr-defined]
    return LocalClose(
        connection_closed=was_open,
        pool_closed=pool is not None,
        pool_current_size=pool_size,
        backend_pids=pids,
    )


def _local_pool(connection: BaseDatabaseWrapper) -> Any:
    return open_pool(connection)


def _local_backend_pids(using: str) -> tuple[int, ...]:
    """Server pids of this process's open connections for ``using``: this thread's
    connection and the idle connections of the alias's pool."""
    connection = connections[using]
    raws: list[Any] = [connection.connection]
    pool = _local_pool(connection)
    if pool is not None:
        raws.extend(idle_pool_connections(pool))
    backend = backend_class_of(using)
    if backend is None:
        return ()
    pids = (backend.driver_pid(raw) for raw in raws if raw is not None)
    return tuple(pid for pid in pids if pid)


# -- the shared steps ------------------------------------------------------------------------
def _seconds(value: float) -> float:
    """An age threshold: a finite number of seconds >= 0 (ValueError otherwise)."""
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"older_than must be a finite number >= 0, got {value}")
    return seconds


def _run_on(
    using: str, criteria: Criteria, *, wait: float, dry_run: bool, confirm: Confirm | None
) -> TerminationReport:
    """:func:`_run` through the alias's own connection (a private one for a pooled alias)."""
    with working_backend(using, separate=False) as backend:
        return _run(backend, using, criteria, wait=wait, dry_run=dry_run, confirm=confirm)


def _terminate_timeout() -> float:
    """``DBCONNMGR["TERMINATE_TIMEOUT"]``, validated (InvalidSetting names the key)."""
    return float(get_setting("TERMINATE_TIMEOUT"))


def _run(
    backend: ConnectionBackend,
    using: str,
    criteria: Criteria,
    *,
    wait: float,
    dry_run: bool,
    confirm: Confirm | None,
    local: LocalClose | None = None,
    requested_by: str | None = None,
) -> TerminationReport:
    caps = backend.capabilities
    able = caps.can_cancel if criteria.signal == "cancel" else caps.can_terminate
    if not able:
        raise ActionNotPossible(
            f"{criteria.action}: {caps.display_name} cannot "
            f"{'cancel a query' if criteria.signal == 'cancel' else 'end a session'} "
            f"from another session (database {using!r})"
        )
    selection = backend.select_for_termination(criteria)
    actor = Actor(
        os_user=_os_user(),
        db_role=selection.db_role,
        is_superuser=selection.is_superuser,
        requested_by=requested_by,
    )
    if criteria.include_superusers and not actor.is_superuser:
        raise InsufficientPrivilege(
            f"--include-superusers needs a superuser: role {actor.db_role} is not one "
            "(superusers' sessions can only be terminated by a superuser)"
        )

    def report(**kwargs: Any) -> TerminationReport:
        return build_report(
            alias=using, criteria=criteria, actor=actor, selection=selection, local=local, **kwargs
        )

    plan = report(answers=None, dry_run=dry_run)
    if dry_run or not plan.would_act:
        return plan
    if confirm is not None and not confirm(plan):
        logger.info("%s on %r cancelled by %s", criteria.action, using, actor.describe())
        return report(answers=None, cancelled=True)
    _log_intent(plan, selection)
    answers = backend.terminate(criteria, selection.candidates)
    signalled = [c for c in selection.candidates if _outcome(answers, c.pid) == "signalled"]
    queries = criteria.signal == "cancel"
    try:
        running = backend.still_running(signalled, wait, queries=queries) if signalled else set()
    except Exception as exc:
        # The signals are sent: say so (report and audit lines) before failing.
        reason = f"signalled; exit not confirmed: {type(exc).__name__}: {_first_line(exc)}"
        done = _unconfirmed(
            report(answers=answers, still_running={c.pid for c in signalled}, exit_wait=wait),
            reason,
        )
        _log_results(done)
        what = "their queries ended" if queries else "they exited"
        raise TerminationIncomplete(
            f"{criteria.action} signalled {len(signalled)} backend(s) but could not confirm "
            f"{what}: {type(exc).__name__}: {_first_line(exc)}",
            report=done,
        ) from exc
    done = report(answers=answers, still_running=running, exit_wait=wait)
    _log_results(done)
    return done


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _unconfirmed(report: TerminationReport, reason: str) -> TerminationReport:
    """``report`` with every ``not_exited`` / ``query_still_running`` result's reason
    replaced by ``reason``."""
    unconfirmed = ("not_exited", "query_still_running")
    results = tuple(
        dataclasses.replace(r, reason=reason) if r.outcome in unconfirmed else r
        for r in report.results
    )
    return dataclasses.replace(report, results=results, findings=(*report.findings, reason))


def _outcome(answers: Any, pid: int) -> str | None:
    answer = answers.get(pid)
    return None if answer is None else str(answer.outcome)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return f"uid {os.getuid()}"


# -- audit log -------------------------------------------------------------------------------
def _log_intent(plan: TerminationReport, selection: Selection) -> None:
    logger.info(
        "%s on database %r (%s) by %s: signalling up to %d of %d selected backend(s) [%s]",
        plan.action,
        plan.alias,
        selection.database,
        plan.actor.describe(),
        len(plan.would_act),
        len(plan.selected),
        plan.criteria.describe(),
    )


def _log_results(report: TerminationReport) -> None:
    by_pid = {c.pid: c for c in report.selected}
    for result in report.results:
        c = by_pid[result.pid]
        failed = result.outcome in FAILED_OUTCOMES
        level = logging.WARNING if failed else logging.INFO
        cancel = report.signal == "cancel"
        if result.outcome == report.done_outcome:
            verb = "cancelled the query of" if cancel else "terminated"
        else:
            verb = "did not cancel the query of" if cancel else "did not terminate"
        age = "?" if c.state_seconds is None else f"{c.state_seconds:.1f}s"
        logger.log(
            level,
            "%s: %s backend pid=%d user=%s application=%r database=%s client=%s state=%r "
            "for %s (%s) [why: %s] [by: %s]",
            report.action,
            verb,
            c.pid,
            c.user,
            c.application_name,
            c.database,
            c.client,
            c.state,
            age,
            result.reason,
            report.criteria.describe(),
            report.actor.describe(),
            extra={
                "dbconnmgr": {
                    "action": report.action,
                    "alias": report.alias,
                    "pid": c.pid,
                    "outcome": result.outcome,
                    "user": c.user,
                    "application_name": c.application_name,
                    "database": c.database,
                    "state": c.state,
                    "state_seconds": c.state_seconds,
                    "os_user": report.actor.os_user,
                    "db_role": report.actor.db_role,
                }
            },
        )
