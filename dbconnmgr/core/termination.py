"""What close-idle, force-close and cancel select, and what the server did with it. Pure data,
no I/O.

A backend reads a :class:`Selection` (the candidates and who is asking), then runs one
terminating statement that re-checks every condition and answers per pid with a
:class:`ServerAnswer`. :func:`build_report` turns both into a :class:`TerminationReport`,
which the command renders as a table or JSON.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, get_args

from dbconnmgr.core.builders import criteria_payload, local_close_payload, termination_payload
from dbconnmgr.core.documents import CriteriaDoc, LocalCloseDoc, TerminationDoc

#: Per-backend outcomes, in display order.
Outcome = Literal[
    "terminated",
    "would_terminate",
    "not_exited",
    "already_gone",
    "no_longer_matching",
    "permission_denied",
    "protected",
    "query_cancelled",
    "would_cancel",
    "query_still_running",
]
#: What a selected backend is sent: ``terminate`` ends the session, ``cancel`` its query.
Signal = Literal["terminate", "cancel"]
#: Outcomes of a terminating action, in display order.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)[:7]
#: Outcomes of a cancelling action (``--action=cancel``), in display order.
CANCEL_OUTCOMES: tuple[Outcome, ...] = (
    "query_cancelled",
    "would_cancel",
    "query_still_running",
    "already_gone",
    "no_longer_matching",
    "permission_denied",
    "protected",
)
#: Per signal: the outcome that means done, and the one a preview predicts.
DONE: dict[Signal, Outcome] = {"terminate": "terminated", "cancel": "query_cancelled"}
WOULD: dict[Signal, Outcome] = {"terminate": "would_terminate", "cancel": "would_cancel"}
#: Outcomes that mean "we meant to act on it and could not": the run is partly done.
FAILED_OUTCOMES: frozenset[Outcome] = frozenset(
    {"permission_denied", "not_exited", "query_still_running"}
)

#: The idle states close-idle may act on; ``active`` and the rest are never idle.
IDLE_STATES: tuple[str, ...] = ("idle", "idle in transaction", "idle in transaction (aborted)")
#: The state ``--action=cancel`` acts on: a query is running.
ACTIVE_STATES: tuple[str, ...] = ("active",)
#: ``--state`` choices and the server states they stand for.
STATE_CHOICES: dict[str, tuple[str, ...]] = {
    "idle": ("idle",),
    "idle-in-transaction": ("idle in transaction", "idle in transaction (aborted)"),
    "all": IDLE_STATES,
}


@dataclass(frozen=True, slots=True)
class Criteria:
    """Which client backends an action selects. None means "any".

    The own backend, non-client backends and rows the role may not inspect are never
    selected, whatever the criteria.

    Attributes:
        action: ``close-idle``, ``force-close``, ``cancel`` or ``admin-terminate``... (for
            reports and the audit log).
        signal: ``terminate`` ends the sessions, ``cancel`` only their running query.
        states: exact ``pg_stat_activity.state`` values.
        older_than: seconds since the last state change, at least.
        application_name, user, database_name: exact matches.
        current_database_only: only sessions on the database the alias connects to.
        current_user_only: only sessions of the role the alias connects as.
        include_superusers: also superusers' sessions (needs a superuser).
        exclude_pids: backends never to select (this process's own connections).
        only_pids: select only these backends (rows picked on the admin page); None: any.
        only_backend_starts: with ``only_pids``, each one's ``backend_start`` as shown to
            the person who picked it: a pid the server reused since is another session and
            is not selected.
    """

    action: str
    signal: Signal = "terminate"
    states: tuple[str, ...] | None = None
    older_than: float | None = None
    application_name: str | None = None
    user: str | None = None
    database_name: str | None = None
    current_database_only: bool = False
    current_user_only: bool = False
    include_superusers: bool = False
    exclude_pids: tuple[int, ...] = ()
    only_pids: tuple[int, ...] | None = None
    only_backend_starts: tuple[datetime, ...] | None = None

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        """The outcomes a run with this signal can have, in display order."""
        return CANCEL_OUTCOMES if self.signal == "cancel" else OUTCOMES

    def describe(self) -> str:
        """One line for reports and the audit log."""
        parts: list[str] = []
        if self.only_pids is not None:
            parts.append("pid " + ", ".join(str(p) for p in self.only_pids))
        if self.states is not None:
            parts.append("state " + " or ".join(repr(s) for s in self.states))
        else:
            parts.append("any state")
        if self.older_than is not None:
            parts.append(f"unchanged for at least {self.older_than:g} s")
        if self.application_name is not None:
            parts.append(f"application {self.application_name!r}")
        if self.user is not None:
            parts.append(f"user {self.user!r}")
        if self.current_user_only:
            parts.append("the alias's own role")
        if self.database_name is not None:
            parts.append(f"database {self.database_name!r}")
        if self.current_database_only:
            parts.append("the alias's database")
        parts.append("superusers included" if self.include_superusers else "superusers spared")
        return ", ".join(parts)

    def as_dict(self) -> CriteriaDoc:
        """JSON-ready form (``database`` is :attr:`database_name`): the ``criteria`` object
        that :func:`dbconnmgr.core.builders.criteria_payload` builds."""
        return criteria_payload(self)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A client backend that matched the criteria when it was selected.

    ``backend_start`` identifies the backend together with the pid: a pid the server
    reuses for a new backend is not the same candidate.
    """

    pid: int
    backend_start: datetime
    user: str | None
    application_name: str
    database: str | None
    client_addr: str | None
    state: str
    state_seconds: float | None
    is_superuser: bool
    can_signal: bool
    #: when the state began (for an active session: its query started); a cancelled query
    #: is gone when the session left that state.
    state_change: datetime | None = None

    @property
    def client(self) -> str:
        """The client address, or ``local`` for a Unix-socket connection."""
        return self.client_addr or "local"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the operating-system user and the database role."""

    os_user: str
    db_role: str
    is_superuser: bool
    #: the person who asked through a page (``Django user alice``); None on the command line.
    requested_by: str | None = None

    def describe(self) -> str:
        """``OS user alice, role app`` (with ``(superuser)`` when it is one), after
        ``Django user bob via`` when a person asked through the admin page."""
        su = " (superuser)" if self.is_superuser else ""
        via = f"{self.requested_by} via " if self.requested_by else ""
        return f"{via}OS user {self.os_user}, role {self.db_role}{su}"


@dataclass(frozen=True, slots=True)
class Selection:
    """What a backend read before terminating: candidates and the context.

    Attributes:
        taken_at: the server's clock.
        own_pid: the backend that read it (never a candidate).
        db_role: ``current_user``; ``is_superuser`` whether it is a superuser.
        database: ``current_database()``.
        candidates: oldest state change first.
        hidden: sessions matching the name filters whose state the role may not see.
    """

    taken_at: datetime
    own_pid: int
    db_role: str
    is_superuser: bool
    database: str
    candidates: tuple[Candidate, ...]
    hidden: int = 0


@dataclass(frozen=True, slots=True)
class ServerAnswer:
    """The terminating statement's answer for one pid.

    ``outcome`` is ``signalled`` (pg_terminate_backend or pg_cancel_backend returned true)
    or one of
    ``already_gone``, ``no_longer_matching``, ``permission_denied``, ``protected``.
    ``state`` and ``state_seconds`` are what the server saw at that moment.
    """

    pid: int
    outcome: str
    state: str | None = None
    state_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class LocalClose:
    """What force-close closed in this process before terminating.

    Attributes:
        connection_closed: this thread's Django connection for the alias was open and closed.
        pool_closed: the alias's native pool (Django 5.1+) existed and was closed.
        pool_current_size: connections the pool held when closed (None without a pool).
        backend_pids: server pids of the connections closed (never selected).
    """

    connection_closed: bool = False
    pool_closed: bool = False
    pool_current_size: int | None = None
    backend_pids: tuple[int, ...] = ()

    def as_dict(self) -> LocalCloseDoc:
        """JSON-ready form (:func:`dbconnmgr.core.builders.local_close_payload`)."""
        return local_close_payload(self)


@dataclass(frozen=True, slots=True)
class TerminationResult:
    """The outcome for one selected backend, with a reason a person can read."""

    pid: int
    outcome: Outcome
    reason: str


@dataclass(frozen=True, slots=True)
class TerminationReport:
    """What an action selected, and what happened to each selected backend.

    Attributes:
        action: ``close-idle`` or ``force-close``.
        alias: the Django database alias.
        database: the server database the alias connects to.
        criteria: what was selected.
        actor: who acted.
        taken_at: the server's clock at selection.
        selected: every candidate.
        results: one per candidate, same order.
        executed: the terminating statement ran (False for a dry run, a preview or a
            cancelled run: then outcomes are predictions, ``would_terminate``...).
        dry_run: ``--dry-run`` / ``dry_run=True``.
        cancelled: the confirmation was declined.
        findings: sentences for the operator (missing privileges, hidden sessions...).
        local: what force-close closed in this process (None for close-idle).
        exit_wait_seconds: how long terminated backends were given to exit.
    """

    action: str
    alias: str
    database: str
    criteria: Criteria
    actor: Actor
    taken_at: datetime
    selected: tuple[Candidate, ...]
    results: tuple[TerminationResult, ...]
    executed: bool
    dry_run: bool = False
    cancelled: bool = False
    findings: tuple[str, ...] = ()
    local: LocalClose | None = None
    exit_wait_seconds: float = 0.0
    hidden: int = 0

    @property
    def signal(self) -> Signal:
        """``terminate`` or ``cancel``."""
        return self.criteria.signal

    @property
    def done_outcome(self) -> Outcome:
        """``terminated``, or ``query_cancelled`` for a cancelling action."""
        return DONE[self.signal]

    @property
    def would_act(self) -> tuple[int, ...]:
        """Pids a preview predicts the action would signal."""
        return self.pids(WOULD[self.signal])

    @property
    def done(self) -> tuple[int, ...]:
        """Pids the action did what it meant to (terminated, or their query cancelled)."""
        return self.pids(self.done_outcome)

    def pids(self, *outcomes: Outcome) -> tuple[int, ...]:
        """Pids whose outcome is one of ``outcomes``."""
        return tuple(r.pid for r in self.results if r.outcome in outcomes)

    @property
    def terminated(self) -> tuple[int, ...]:
        """Pids the server terminated and that are gone."""
        return self.pids("terminated")

    @property
    def not_terminated(self) -> tuple[TerminationResult, ...]:
        """Results of every selected backend the action did not do what it meant to (not
        terminated; for cancel, query not cancelled), with the reason."""
        return tuple(r for r in self.results if r.outcome != self.done_outcome)

    def counts(self) -> dict[str, int]:
        """``selected`` plus one count per outcome of the action's signal (zeros included)."""
        counter = Counter(r.outcome for r in self.results)
        outcomes = self.criteria.outcomes
        return {"selected": len(self.selected), **{o: counter.get(o, 0) for o in outcomes}}

    @property
    def failed(self) -> bool:
        """Some selected backend cannot be or was not terminated (permission denied, did not
        exit). Protected superusers' sessions and sessions that changed do not count."""
        return any(r.outcome in FAILED_OUTCOMES for r in self.results)

    def summary(self) -> str:
        """``3 terminated, 1 no longer matching`` (non-zero counts only)."""
        counts = self.counts()
        selected = counts.pop("selected")
        if not selected:
            return "nothing matched"
        parts = [f"{n} {o.replace('_', ' ')}" for o, n in counts.items() if n]
        nothing = "nothing was cancelled" if self.signal == "cancel" else "nothing was terminated"
        prefix = f"cancelled, {nothing}: " if self.cancelled else ""
        if self.dry_run:
            prefix = f"dry run, {nothing}: "
        return f"{prefix}{selected} selected; " + ", ".join(parts)

    def as_dict(self) -> TerminationDoc:
        """The JSON document of ``--format json`` (see docs/json.md), built by
        :func:`dbconnmgr.core.builders.termination_payload`."""
        return termination_payload(self)


# -- pure decisions --------------------------------------------------------------------------
def predict(candidate: Candidate, criteria: Criteria, actor: Actor) -> tuple[Outcome, str]:
    """The outcome a signalling statement would give now (for dry runs and previews)."""
    if candidate.is_superuser and not criteria.include_superusers:
        return "protected", _PROTECTED
    if candidate.is_superuser and not actor.is_superuser:
        return "permission_denied", _SUPERUSER_ONLY
    if not candidate.can_signal:
        return "permission_denied", _not_member(candidate, actor)
    return WOULD[criteria.signal], "matches"


def split_signallable(
    candidates: Sequence[Candidate], criteria: Criteria
) -> tuple[dict[int, ServerAnswer], list[Candidate]]:
    """For a backend that re-checks and signals in separate statements: the answers for the
    candidates it must leave alone (a superuser's session while ``include_superusers`` is
    off: ``protected``; one the role may not signal: ``permission_denied``) and the others,
    in order, to re-check and signal."""
    answers: dict[int, ServerAnswer] = {}
    eligible: list[Candidate] = []
    for c in candidates:
        if c.is_superuser and not criteria.include_superusers:
            answers[c.pid] = ServerAnswer(c.pid, "protected", c.state, c.state_seconds)
        elif not c.can_signal:
            answers[c.pid] = ServerAnswer(c.pid, "permission_denied", c.state, c.state_seconds)
        else:
            eligible.append(c)
    return answers, eligible


def result_from_answer(
    candidate: Candidate,
    answer: ServerAnswer | None,
    actor: Actor,
    *,
    still_running: bool,
    exit_wait: float,
    signal: Signal = "terminate",
) -> TerminationResult:
    """Turn the server's answer for one candidate into a :class:`TerminationResult`.

    ``still_running``: after the wait the backend was still there (terminate) or still
    running the same query (cancel).
    """
    pid = candidate.pid
    if answer is None or answer.outcome == "already_gone":
        return TerminationResult(pid, "already_gone", "exited before the signal")
    if answer.outcome == "signalled" and signal == "cancel":
        if still_running:
            return TerminationResult(
                pid,
                "query_still_running",
                f"cancel sent, same query still running after {exit_wait:g} s",
            )
        return TerminationResult(pid, "query_cancelled", "cancel sent, query ended")
    if answer.outcome == "signalled":
        if still_running:
            return TerminationResult(
                pid, "not_exited", f"signalled, still running after {exit_wait:g} s"
            )
        return TerminationResult(pid, "terminated", "signalled, exited")
    if answer.outcome == "no_longer_matching":
        now = answer.state or "unknown"
        age = "" if answer.state_seconds is None else f" for {answer.state_seconds:.1f} s"
        return TerminationResult(pid, "no_longer_matching", f"now {now}{age}")
    if answer.outcome == "protected":
        return TerminationResult(pid, "protected", _PROTECTED)
    if answer.outcome == "permission_denied":
        if candidate.is_superuser:
            return TerminationResult(pid, "permission_denied", _SUPERUSER_ONLY)
        return TerminationResult(pid, "permission_denied", _not_member(candidate, actor))
    raise ValueError(f"unknown server answer {answer.outcome!r} for pid {pid}")


def build_report(
    *,
    alias: str,
    criteria: Criteria,
    actor: Actor,
    selection: Selection,
    answers: Mapping[int, ServerAnswer] | None,
    still_running: Iterable[int] = (),
    exit_wait: float = 0.0,
    dry_run: bool = False,
    cancelled: bool = False,
    local: LocalClose | None = None,
) -> TerminationReport:
    """A report from a selection and, when it ran, the terminating statement's answers."""
    running = set(still_running)
    if answers is None:
        results = tuple(
            TerminationResult(c.pid, *predict(c, criteria, actor)) for c in selection.candidates
        )
    else:
        results = tuple(
            result_from_answer(
                c,
                answers.get(c.pid),
                actor,
                still_running=c.pid in running,
                exit_wait=exit_wait,
                signal=criteria.signal,
            )
            for c in selection.candidates
        )
    report = TerminationReport(
        action=criteria.action,
        alias=alias,
        database=selection.database,
        criteria=criteria,
        actor=actor,
        taken_at=selection.taken_at,
        selected=selection.candidates,
        results=results,
        executed=answers is not None,
        dry_run=dry_run,
        cancelled=cancelled,
        local=local,
        exit_wait_seconds=exit_wait,
        hidden=selection.hidden,
    )
    return _with_findings(report)


def _with_findings(report: TerminationReport) -> TerminationReport:
    findings: list[str] = []
    role = report.actor.db_role
    verb = "cancel the queries of" if report.signal == "cancel" else "terminate"
    done_verb = "cancelled" if report.signal == "cancel" else "terminated"
    by_pid = {c.pid: c for c in report.selected}
    denied = [by_pid[p] for p in report.pids("permission_denied")]
    denied_super = [c for c in denied if c.is_superuser]
    denied_other = [c for c in denied if not c.is_superuser]
    if denied_other:
        users = ", ".join(sorted({c.user or "?" for c in denied_other}))
        findings.append(
            f"role {role} may not {verb} {len(denied_other)} session(s) of {users}: it is "
            f"neither a member of their role nor of pg_signal_backend "
            f"(GRANT pg_signal_backend TO {role} to allow it)"
        )
    if denied_super:
        findings.append(
            f"{len(denied_super)} superuser session(s) can only be {done_verb} by a superuser"
        )
    protected = report.pids("protected")
    if protected:
        findings.append(
            f"{len(protected)} superuser session(s) were spared "
            "(run as a superuser with --include-superusers to include them)"
        )
    if report.hidden:
        findings.append(
            f"{report.hidden} session(s) of other roles matching the filters were not considered: "
            f"role {role} may not see their state (GRANT pg_read_all_stats TO {role})"
        )
    running = report.pids("query_still_running")
    if running:
        findings.append(
            f"{len(running)} query(ies) were sent a cancel but were still running after "
            f"{report.exit_wait_seconds:g} s (DBCONNMGR['TERMINATE_TIMEOUT']); check again"
        )
    changed = report.pids("no_longer_matching")
    if changed:
        findings.append(
            f"{len(changed)} session(s) changed between selection and signal and were spared"
        )
    stuck = report.pids("not_exited")
    if stuck:
        findings.append(
            f"{len(stuck)} backend(s) were signalled but had not exited after "
            f"{report.exit_wait_seconds:g} s (DBCONNMGR['TERMINATE_TIMEOUT']); check again"
        )
    return replace(report, findings=tuple(findings))


_PROTECTED = "superuser session"
_SUPERUSER_ONLY = "superuser session, needs a superuser"


def _not_member(candidate: Candidate, actor: Actor) -> str:
    return f"{actor.db_role} is not in role {candidate.user or '?'} nor pg_signal_backend"
