"""The pure part of close-idle/force-close: predictions, outcomes and counts, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from dbconnmgr.core.termination import (
    Actor,
    Candidate,
    Criteria,
    Selection,
    ServerAnswer,
    build_report,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def cand(pid: int, *, superuser: bool = False, can_signal: bool = True) -> Candidate:
    return Candidate(
        pid=pid,
        backend_start=NOW,
        user="su" if superuser else "app",
        application_name="web",
        database="shop",
        client_addr=None,
        state="idle",
        state_seconds=400.0,
        is_superuser=superuser,
        can_signal=can_signal,
    )


def selection(*candidates: Candidate, superuser: bool = True, hidden: int = 0) -> Selection:
    return Selection(taken_at=NOW, own_pid=1, db_role="ops", is_superuser=superuser,
                     database="shop", candidates=candidates, hidden=hidden)  # fmt: skip


def test_plan_predicts_from_privileges() -> None:
    sel = selection(cand(10), cand(11, superuser=True), cand(12, can_signal=False),
                    superuser=False)  # fmt: skip
    actor = Actor("alice", "ops", False)
    report = build_report(
        alias="default", criteria=Criteria(action="close-idle"), actor=actor, selection=sel,
        answers=None,
    )  # fmt: skip
    assert {r.pid: r.outcome for r in report.results} == {
        10: "would_terminate",
        11: "protected",
        12: "permission_denied",
    }
    assert not report.executed
    assert report.failed  # a selected backend cannot be terminated by this role
    assert any("GRANT pg_signal_backend TO ops" in f for f in report.findings)


def test_counts_come_from_the_server_answers() -> None:
    sel = selection(cand(10), cand(11), cand(12), cand(13), hidden=2)
    answers = {
        10: ServerAnswer(10, "signalled"),
        11: ServerAnswer(11, "signalled"),
        12: ServerAnswer(12, "no_longer_matching", "active", 0.2),
        # 13: no row (cannot happen with the real statement, but must not count as done)
    }
    report = build_report(alias="default", criteria=Criteria(action="close-idle"),
                          actor=Actor("alice", "ops", True), selection=sel, answers=answers,
                          still_running={11}, exit_wait=5)  # fmt: skip
    counts = report.counts()
    assert counts["selected"] == 4
    assert counts["terminated"] == 1
    assert counts["not_exited"] == 1
    assert counts["no_longer_matching"] == 1
    assert counts["already_gone"] == 1
    assert report.terminated == (10,)
    assert report.failed
    assert "now active for 0.2 s" in {r.pid: r.reason for r in report.results}[12]
    assert any("pg_read_all_stats" in f for f in report.findings)
    data = report.as_dict()
    assert data["terminated"] == [10]
    assert {row["pid"] for row in data["not_terminated"]} == {11, 12, 13}
