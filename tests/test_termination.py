"""The pure part of close-idle/force-close (dbconnmgr.core.termination), without a database.

Which backends are selected (states, ages, name filters, own and non-client backends) is
decided by the SQL in backends/postgresql/ and tested against the real server in
test_actions.py. This module decides everything after that: what a dry run predicts, what
each server answer means, how the report counts it, the findings shown to the operator,
whether the run failed (the exit code) and what the audit log says. Inputs are built with
the factories of tests/factories.py.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.management.base import BaseCommand

from dbconnmgr.actions import _log_intent, _log_results
from dbconnmgr.cli.terminate import EXIT_NOT_ALL_TERMINATED, CloseIdleAction
from dbconnmgr.core.termination import (
    FAILED_OUTCOMES,
    IDLE_STATES,
    OUTCOMES,
    STATE_CHOICES,
    Actor,
    Candidate,
    Criteria,
    LocalClose,
    Outcome,
    ServerAnswer,
    TerminationReport,
    build_report,
    predict,
    result_from_answer,
)
from tests.factories import SELECTED_AT, ActorFactory, CandidateFactory, SelectionFactory

CLOSE_IDLE = Criteria(action="close-idle", states=("idle",), older_than=300.0)
SUPERUSERS_TOO = dataclasses.replace(CLOSE_IDLE, include_superusers=True)


def make_report(
    *candidates: Candidate,
    answers: Mapping[int, ServerAnswer] | None = None,
    actor: Actor | None = None,
    criteria: Criteria = CLOSE_IDLE,
    hidden: int = 0,
    **kwargs: Any,
) -> TerminationReport:
    """build_report() as actions._run() calls it: the actor is the role that selected."""
    actor = actor or ActorFactory.build()
    selection = SelectionFactory.build(
        candidates=candidates,
        hidden=hidden,
        db_role=actor.db_role,
        is_superuser=actor.is_superuser,
    )
    return build_report(
        alias="default",
        criteria=criteria,
        actor=actor,
        selection=selection,
        answers=answers,
        **kwargs,
    )


def signalled(*pids: int) -> dict[int, ServerAnswer]:
    return {pid: ServerAnswer(pid, "signalled") for pid in pids}


def outcomes(report: TerminationReport) -> dict[int, str]:
    return {r.pid: r.outcome for r in report.results}


def reasons(report: TerminationReport) -> dict[int, str]:
    return {r.pid: r.reason for r in report.results}


# -- vocabulary -----------------------------------------------------------------------------
def test_state_choices_map_to_exact_idle_server_states() -> None:
    assert STATE_CHOICES["idle"] == ("idle",)
    assert STATE_CHOICES["idle-in-transaction"] == (
        "idle in transaction",
        "idle in transaction (aborted)",
    )
    assert STATE_CHOICES["all"] == IDLE_STATES
    # close-idle never offers a state in which a session is doing work
    for busy in ("active", "fastpath function call", "disabled"):
        assert busy not in IDLE_STATES


def test_outcomes_in_display_order_and_which_ones_fail() -> None:
    assert OUTCOMES == (
        "terminated", "would_terminate", "not_exited", "already_gone", "no_longer_matching",
        "permission_denied", "protected",
    )  # fmt: skip
    assert set(FAILED_OUTCOMES) == {"permission_denied", "not_exited", "query_still_running"}


# -- predictions (dry run, preview, cancelled run) ------------------------------------------
@pytest.mark.parametrize(
    ("candidate", "criteria", "actor", "expected"),
    [
        pytest.param({}, CLOSE_IDLE, {}, ("would_terminate", "matches"), id="ordinary"),
        pytest.param({"superuser": True}, CLOSE_IDLE, {"superuser": True},
                     ("protected", "superuser session"), id="superuser-spared-by-default"),
        pytest.param({"superuser": True, "can_signal": False}, CLOSE_IDLE, {},
                     ("protected", "superuser session"), id="spared-before-permission"),
        pytest.param({"superuser": True}, SUPERUSERS_TOO, {},
                     ("permission_denied", "superuser session, needs a superuser"),
                     id="superuser-needs-superuser"),
        pytest.param({"superuser": True}, SUPERUSERS_TOO, {"superuser": True},
                     ("would_terminate", "matches"), id="superuser-by-superuser"),
        pytest.param({"can_signal": False}, CLOSE_IDLE, {},
                     ("permission_denied", "ops is not in role app nor pg_signal_backend"),
                     id="not-a-member"),
        pytest.param({"can_signal": False, "user": None}, CLOSE_IDLE, {},
                     ("permission_denied", "ops is not in role ? nor pg_signal_backend"),
                     id="role-dropped"),
    ],
)  # fmt: skip
def test_predict(
    candidate: dict[str, Any], criteria: Criteria, actor: dict[str, Any], expected: tuple[str, str]
) -> None:
    """Mirrors the CASE of the terminating statement: protection, then privileges."""
    prediction = predict(CandidateFactory.build(**candidate), criteria, ActorFactory.build(**actor))
    assert prediction == expected


def test_plan_predicts_every_candidate_and_runs_nothing() -> None:
    ok = CandidateFactory.build()
    su = CandidateFactory.build(superuser=True)
    denied = CandidateFactory.build(can_signal=False)
    plan = make_report(ok, su, denied, answers=None, dry_run=True)
    assert outcomes(plan) == {
        ok.pid: "would_terminate",
        su.pid: "protected",
        denied.pid: "permission_denied",
    }
    assert not plan.executed and plan.dry_run
    assert plan.terminated == ()
    assert plan.pids("would_terminate") == (ok.pid,)
    assert plan.failed  # a selected backend cannot be terminated by this role


def test_empty_answers_are_an_executed_run_not_a_plan() -> None:
    """answers={} means the statement ran and returned no row: the backend was gone."""
    candidate = CandidateFactory.build()
    report = make_report(candidate, answers={})
    assert report.executed
    assert outcomes(report) == {candidate.pid: "already_gone"}
    assert not report.failed


# -- the server's answers -------------------------------------------------------------------
def answer(
    candidate: Candidate,
    outcome: str | None,
    *,
    still_running: bool = False,
    actor: Actor | None = None,
    **fields: Any,
) -> tuple[str, str]:
    reply = None if outcome is None else ServerAnswer(candidate.pid, outcome, **fields)
    result = result_from_answer(
        candidate, reply, actor or ActorFactory.build(), still_running=still_running, exit_wait=2.5
    )
    assert result.pid == candidate.pid
    return result.outcome, result.reason


def test_signalled_backend_that_exited_is_terminated() -> None:
    assert answer(CandidateFactory.build(), "signalled") == ("terminated", "signalled, exited")


def test_signalled_backend_still_running_after_the_wait_is_not_exited() -> None:
    assert answer(CandidateFactory.build(), "signalled", still_running=True) == (
        "not_exited",
        "signalled, still running after 2.5 s",
    )


@pytest.mark.parametrize("outcome", [None, "already_gone"])
def test_missing_row_or_gone_backend_is_already_gone(outcome: str | None) -> None:
    # still_running is about signalled backends only: it cannot turn this into a failure
    result = answer(CandidateFactory.build(), outcome, still_running=True)
    assert result == ("already_gone", "exited before the signal")


def test_no_longer_matching_says_what_the_session_does_now() -> None:
    candidate = CandidateFactory.build()
    result = answer(candidate, "no_longer_matching", state="active", state_seconds=0.24)
    assert result == ("no_longer_matching", "now active for 0.2 s")
    assert answer(candidate, "no_longer_matching") == ("no_longer_matching", "now unknown")


def test_protected_and_permission_denied_answers() -> None:
    su = CandidateFactory.build(superuser=True)
    other = CandidateFactory.build(user="batch")
    assert answer(su, "protected") == ("protected", "superuser session")
    assert answer(su, "permission_denied") == (
        "permission_denied",
        "superuser session, needs a superuser",
    )
    assert answer(other, "permission_denied") == (
        "permission_denied",
        "ops is not in role batch nor pg_signal_backend",
    )


def test_unknown_answer_is_an_error_naming_the_pid() -> None:
    candidate = CandidateFactory.build(pid=4242)
    with pytest.raises(ValueError, match=r"unknown server answer 'signaled' for pid 4242"):
        answer(candidate, "signaled")


def test_results_follow_the_selection_order_and_ignore_strangers() -> None:
    first, second, third = CandidateFactory.build_batch(3)
    answers = {
        third.pid: ServerAnswer(third.pid, "signalled"),
        99999: ServerAnswer(99999, "signalled"),  # not selected: never reported
        first.pid: ServerAnswer(first.pid, "no_longer_matching", "active", 0.1),
    }
    report = make_report(first, second, third, answers=answers, still_running={second.pid})
    assert [r.pid for r in report.results] == [first.pid, second.pid, third.pid]
    assert outcomes(report) == {
        first.pid: "no_longer_matching",
        second.pid: "already_gone",  # no row; "still running" without a signal means nothing
        third.pid: "terminated",
    }
    assert report.counts()["selected"] == 3


# -- counts, summary, failure ---------------------------------------------------------------
def test_counts_have_every_outcome_and_add_up_to_selected() -> None:
    a, b, c, d, su = (*CandidateFactory.build_batch(4), CandidateFactory.build(superuser=True))
    answers = {
        **signalled(a.pid, b.pid),
        c.pid: ServerAnswer(c.pid, "no_longer_matching", "active", 0.2),
        su.pid: ServerAnswer(su.pid, "protected"),
    }
    report = make_report(a, b, c, d, su, answers=answers, still_running={b.pid}, exit_wait=5)
    counts = report.counts()
    assert list(counts) == ["selected", *OUTCOMES]
    assert counts == {
        "selected": 5, "terminated": 1, "would_terminate": 0, "not_exited": 1,
        "already_gone": 1, "no_longer_matching": 1, "permission_denied": 0, "protected": 1,
    }  # fmt: skip
    assert sum(counts.values()) == 2 * counts["selected"]
    assert report.terminated == (a.pid,)
    assert [r.pid for r in report.not_terminated] == [b.pid, c.pid, d.pid, su.pid]
    assert report.summary() == (
        "5 selected; 1 terminated, 1 not exited, 1 already gone, 1 no longer matching, 1 protected"
    )


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_only_denied_and_not_exited_make_a_run_fail(outcome: Outcome) -> None:
    report = make_report(CandidateFactory.build(), answers={})
    report = dataclasses.replace(
        report, results=(dataclasses.replace(report.results[0], outcome=outcome),)
    )
    assert report.failed is (outcome in ("permission_denied", "not_exited"))


def test_nothing_matched() -> None:
    report = make_report(answers=None)
    assert report.summary() == "nothing matched"
    zeros: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    assert report.counts() == {"selected": 0, **zeros}
    assert not report.failed and report.findings == ()
    assert report.as_dict()["selected"] == [] and report.as_dict()["terminated"] == []


def test_summary_says_when_nothing_was_terminated() -> None:
    candidates = CandidateFactory.build_batch(2)
    assert make_report(*candidates, dry_run=True).summary() == (
        "dry run, nothing was terminated: 2 selected; 2 would terminate"
    )
    assert make_report(*candidates, cancelled=True).summary() == (
        "cancelled, nothing was terminated: 2 selected; 2 would terminate"
    )
    assert make_report(*candidates, answers=signalled(*(c.pid for c in candidates))).summary() == (
        "2 selected; 2 terminated"
    )


# -- findings: what the operator is told ----------------------------------------------------
def test_no_findings_when_everything_was_terminated() -> None:
    candidates = CandidateFactory.build_batch(3)
    report = make_report(*candidates, answers=signalled(*(c.pid for c in candidates)))
    assert report.findings == ()
    assert not report.failed


def test_denied_sessions_name_their_roles_and_the_grant() -> None:
    denied = [
        CandidateFactory.build(user="batch", can_signal=False),
        CandidateFactory.build(user="app", can_signal=False),
        CandidateFactory.build(user="batch", can_signal=False),
        CandidateFactory.build(user=None, can_signal=False),
    ]
    report = make_report(*denied)
    assert report.findings == (
        "role ops may not terminate 4 session(s) of ?, app, batch: it is neither a member of "
        "their role nor of pg_signal_backend (GRANT pg_signal_backend TO ops to allow it)",
    )


def test_every_finding_in_order() -> None:
    denied, su_denied, spared, changed, stuck = (
        CandidateFactory.build(can_signal=False),
        CandidateFactory.build(superuser=True),
        CandidateFactory.build(superuser=True),
        CandidateFactory.build(),
        CandidateFactory.build(),
    )
    answers = {
        denied.pid: ServerAnswer(denied.pid, "permission_denied"),
        su_denied.pid: ServerAnswer(su_denied.pid, "permission_denied"),
        spared.pid: ServerAnswer(spared.pid, "protected"),
        changed.pid: ServerAnswer(changed.pid, "no_longer_matching", "active", 1.0),
        stuck.pid: ServerAnswer(stuck.pid, "signalled"),
    }
    report = make_report(
        denied,
        su_denied,
        spared,
        changed,
        stuck,
        answers=answers,
        still_running={stuck.pid},
        exit_wait=5.0,
        hidden=2,
    )
    assert report.findings == (
        "role ops may not terminate 1 session(s) of app: it is neither a member of their role "
        "nor of pg_signal_backend (GRANT pg_signal_backend TO ops to allow it)",
        "1 superuser session(s) can only be terminated by a superuser",
        "1 superuser session(s) were spared (run as a superuser with --include-superusers to "
        "include them)",
        "2 session(s) of other roles matching the filters were not considered: role ops may not "
        "see their state (GRANT pg_read_all_stats TO ops)",
        "1 session(s) changed between selection and signal and were spared",
        "1 backend(s) were signalled but had not exited after 5 s "
        "(DBCONNMGR['TERMINATE_TIMEOUT']); check again",
    )


def test_hidden_sessions_are_reported_even_when_nothing_matched() -> None:
    """Never "nothing to do" on rows the role could not see."""
    report = make_report(answers=None, hidden=3)
    assert report.summary() == "nothing matched"
    assert report.hidden == 3 and report.as_dict()["hidden_connections"] == 3
    assert len(report.findings) == 1 and "3 session(s) of other roles" in report.findings[0]
    assert not report.failed  # hidden rows were never meant to be terminated


# -- JSON -----------------------------------------------------------------------------------
def test_json_document_lists_each_selected_backend_with_its_outcome() -> None:
    local = CandidateFactory.build(state_seconds=412.345)
    remote = CandidateFactory.build(client_addr="10.0.0.7", state_seconds=None)
    answers = {**signalled(local.pid), remote.pid: ServerAnswer(remote.pid, "already_gone")}
    report = make_report(
        local, remote, answers=answers, local=LocalClose(connection_closed=True, backend_pids=(7,))
    )
    data = json.loads(json.dumps(report.as_dict()))  # JSON-ready without a default=
    rows = {row["pid"]: row for row in data["selected"]}
    assert rows[local.pid]["client"] == "local"
    assert rows[local.pid]["state_seconds"] == 412.3
    assert rows[local.pid]["outcome"] == "terminated"
    assert rows[remote.pid]["client"] == "10.0.0.7"
    assert rows[remote.pid]["state_seconds"] is None
    assert rows[remote.pid]["reason"] == "exited before the signal"
    assert data["terminated"] == [local.pid]
    assert data["not_terminated"] == [
        {"pid": remote.pid, "outcome": "already_gone", "reason": "exited before the signal"}
    ]
    assert data["counts"]["terminated"] == 1 and data["counts"]["already_gone"] == 1
    assert data["executed"] is True and data["dry_run"] is False and data["cancelled"] is False
    assert data["taken_at"] == SELECTED_AT.isoformat()
    assert data["performed_by"] == {
        "os_user": "alice", "db_role": "ops", "superuser": False, "requested_by": None,
    }  # fmt: skip
    assert data["criteria"]["states"] == ["idle"]
    assert data["criteria"]["older_than_seconds"] == 300.0
    assert data["local"] == {
        "connection_closed": True,
        "pool_closed": False,
        "pool_current_size": None,
        "backend_pids": [7],
    }


# -- criteria and actor, as the report and the audit log describe them ----------------------
def test_default_criteria_describe_any_state_and_spared_superusers() -> None:
    assert Criteria(action="force-close").describe() == "any state, superusers spared"


def test_criteria_describe_every_filter() -> None:
    criteria = Criteria(
        action="close-idle", states=STATE_CHOICES["idle-in-transaction"], older_than=0.5,
        application_name="web", user="app", database_name="shop", include_superusers=True,
    )  # fmt: skip
    assert criteria.describe() == (
        "state 'idle in transaction' or 'idle in transaction (aborted)', unchanged for at "
        "least 0.5 s, application 'web', user 'app', database 'shop', superusers included"
    )
    force = Criteria(action="force-close", current_user_only=True, current_database_only=True)
    assert force.describe() == (
        "any state, the alias's own role, the alias's database, superusers spared"
    )


def test_zero_age_is_a_filter_not_any_age() -> None:
    """--idle-for=0 is given, so it is described and sent (0 is not None)."""
    criteria = Criteria(action="close-idle", states=("idle",), older_than=0.0)
    assert "unchanged for at least 0 s" in criteria.describe()
    assert criteria.as_dict()["older_than_seconds"] == 0.0
    assert "unchanged" not in Criteria(action="close-idle").describe()


def test_criteria_as_dict_keeps_none_for_any() -> None:
    assert Criteria(action="force-close", exclude_pids=(5, 6)).as_dict() == {
        "states": None, "older_than_seconds": None, "application_name": None, "user": None,
        "database": None, "current_database_only": False, "current_user_only": False,
        "include_superusers": False, "signal": "terminate", "pids": None,
    }  # fmt: skip


def test_actor_and_client_descriptions() -> None:
    assert ActorFactory.build().describe() == "OS user alice, role ops"
    assert ActorFactory.build(superuser=True).describe() == "OS user alice, role ops (superuser)"
    assert CandidateFactory.build(client_addr=None).client == "local"
    assert CandidateFactory.build(client_addr="::1").client == "::1"


# -- what the command makes of it: exit code ------------------------------------------------
def exit_code(report: TerminationReport) -> int:
    """The exit code close-idle gives for ``report`` (the JSON goes to a throwaway buffer)."""
    opts = {"database": "default", "format": "json"}
    return CloseIdleAction(BaseCommand(stdout=io.StringIO()), opts).finish(report)


def test_exit_code_says_whether_everything_meant_to_go_went() -> None:
    ok = CandidateFactory.build()
    denied = CandidateFactory.build(can_signal=False)
    su = CandidateFactory.build(superuser=True)
    spared = {su.pid: ServerAnswer(su.pid, "protected")}
    refused = {denied.pid: ServerAnswer(denied.pid, "permission_denied")}

    # a spared superuser session is no failure
    assert exit_code(make_report(ok, su, answers={**signalled(ok.pid), **spared})) == 0
    stuck = make_report(ok, answers=signalled(ok.pid), still_running={ok.pid})
    assert exit_code(stuck) == EXIT_NOT_ALL_TERMINATED
    partly = make_report(ok, denied, answers={**signalled(ok.pid), **refused})
    assert exit_code(partly) == EXIT_NOT_ALL_TERMINATED
    # nothing this role may terminate: actions return the plan as is, and it failed
    assert exit_code(make_report(denied, answers=None)) == EXIT_NOT_ALL_TERMINATED
    # a dry run or a cancelled run did not try: the prediction is no failure
    assert exit_code(make_report(denied, answers=None, dry_run=True)) == 0
    assert exit_code(make_report(denied, answers=None, cancelled=True)) == 0
    assert exit_code(make_report(answers=None)) == 0


# -- the audit log --------------------------------------------------------------------------
def audit(report: TerminationReport, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        _log_results(report)
    return [r for r in caplog.records if r.name == "dbconnmgr"]


def test_audit_line_per_selected_backend_says_what_why_and_who(
    caplog: pytest.LogCaptureFixture,
) -> None:
    victim = CandidateFactory.build(user="app", application_name="web", client_addr="10.0.0.7")
    report = make_report(victim, answers=signalled(victim.pid))
    (record,) = audit(report, caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"close-idle: terminated backend pid={victim.pid} user=app application='web' "
        "database=shop client=10.0.0.7 state='idle' for 400.0s (signalled, exited) "
        "[why: state 'idle', unchanged for at least 300 s, superusers spared] "
        "[by: OS user alice, role ops]"
    )
    assert record.dbconnmgr == {  # type: ignore[attr-defined]
        "action": "close-idle", "alias": "default", "pid": victim.pid, "outcome": "terminated",
        "user": "app", "application_name": "web", "database": "shop", "state": "idle",
        "state_seconds": 400.0, "os_user": "alice", "db_role": "ops",
    }  # fmt: skip


def test_audit_warns_for_failures_only(caplog: pytest.LogCaptureFixture) -> None:
    done, stuck, denied, gone, spared = (
        *CandidateFactory.build_batch(4, state_seconds=None),
        CandidateFactory.build(superuser=True),
    )
    answers = {
        **signalled(done.pid, stuck.pid),
        denied.pid: ServerAnswer(denied.pid, "permission_denied"),
        spared.pid: ServerAnswer(spared.pid, "protected"),
    }
    report = make_report(
        done, stuck, denied, gone, spared, answers=answers, still_running={stuck.pid}
    )
    records = audit(report, caplog)
    levels = {r.dbconnmgr["pid"]: r.levelno for r in records}  # type: ignore[attr-defined]
    assert levels == {
        done.pid: logging.INFO, stuck.pid: logging.WARNING, denied.pid: logging.WARNING,
        gone.pid: logging.INFO, spared.pid: logging.INFO,
    }  # fmt: skip
    failed = {r.dbconnmgr["pid"] for r in records if r.levelno == logging.WARNING}  # type: ignore[attr-defined]
    assert failed == {r.pid for r in report.results if r.outcome in FAILED_OUTCOMES}
    messages = {r.dbconnmgr["pid"]: r.getMessage() for r in records}  # type: ignore[attr-defined]
    assert "did not terminate" in messages[denied.pid] and "for ?" in messages[denied.pid]


def test_audit_intent_line_before_signalling(caplog: pytest.LogCaptureFixture) -> None:
    ok, spared = CandidateFactory.build(), CandidateFactory.build(superuser=True)
    plan = make_report(ok, spared, answers=None)
    selection = SelectionFactory.build(candidates=(ok, spared))
    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        _log_intent(plan, selection)
    assert [r.getMessage() for r in caplog.records] == [
        "close-idle on database 'default' (shop) by OS user alice, role ops: signalling up to "
        "1 of 2 selected backend(s) [state 'idle', unchanged for at least 300 s, superusers "
        "spared]"
    ]
