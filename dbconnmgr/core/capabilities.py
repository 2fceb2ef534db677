"""What a database engine can do and report, declared once per backend.

Callers ask a capability (``backend.capabilities.can_cancel``), never the engine's name:
where one engine cannot do what another does, its backend says so here and the command,
the health checks and the pages offer only what it declares. Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbconnmgr.core.snapshot import STATES

__all__ = ["Capabilities"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The features of one engine's backend (like Django's ``DatabaseFeatures``).

    Attributes:
        display_name: the engine as people name it ("PostgreSQL", "MariaDB").
        can_terminate: sessions can be ended from another session.
        can_terminate_atomically: the re-check of a session's state and the signal that
            ends it are one statement (no window in which a session that turned active
            can be ended).
        can_cancel: a running query can be cancelled without ending its session.
        has_reserved_slots: the server keeps slots that ordinary roles cannot use
            (PostgreSQL's superuser_reserved_connections, MySQL's extra admin slot).
        reports_lock_waits: sessions waiting for a lock, and who blocks them, are visible.
        reports_visibility: the reading role may see other roles' sessions only partly
            (restricted rows are counted, not hidden).
        counts_refused_connections: the server counts connections it refused (full,
            aborted), so "refused since the last sample" can be reported.
        reports_application_name: sessions carry an application name (PostgreSQL's
            ``application_name``); where they do not, filtering by it is refused.
        reports_session_start: each session's start time is known (ages since connect,
            and a reused id told apart from the session that had it before).
        full_visibility_grant: what to grant the reading role so it sees every session.
        role_limit_name: how the engine names a role's (account's) connection limit.
        states: the common-model states this engine's sessions can be in; tables leave
            out the others while they count nothing (the JSON documents keep every key).
        postgresql_info: the health document repeats ``server_info`` as
            ``postgresql_info`` (its name from before other engines, kept for PostgreSQL).
    """

    display_name: str
    can_terminate: bool = True
    can_terminate_atomically: bool = False
    can_cancel: bool = False
    has_reserved_slots: bool = False
    reports_lock_waits: bool = False
    reports_visibility: bool = False
    counts_refused_connections: bool = False
    reports_application_name: bool = True
    reports_session_start: bool = True
    full_visibility_grant: str = ""
    role_limit_name: str = "CONNECTION LIMIT of role"
    states: tuple[str, ...] = STATES
    postgresql_info: bool = False
