"""Errors dbconnmgr raises. Each message is one line a person can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dbconnmgr.core.termination import TerminationReport

ProblemKind = Literal["unreachable", "full", "reserved", "auth", "timeout", "setup", "other"]

#: The exit code of every action (docs/index.md, "Exit codes").
EXIT_OK = 0  # ok / done
EXIT_WARNING = 1  # warning / over budget / partly done
EXIT_CRITICAL = 2  # critical: the server is full or unreachable
EXIT_UNKNOWN = 3  # unknown: usage errors, bad settings or configuration, no permission


class DbConnMgrError(Exception):
    """Base class of every error dbconnmgr raises on purpose."""


class UnknownDatabaseAlias(DbConnMgrError):
    """The alias is not in ``settings.DATABASES``."""


class UnsupportedDatabase(DbConnMgrError):
    """The alias points at a database engine dbconnmgr has no backend for."""


class ServerUnavailable(DbConnMgrError):
    """The server could not be reached or refused the connection.

    Attributes:
        kind: ``unreachable`` (nothing listens, DNS, network), ``full`` (``too many clients
            already``), ``reserved`` (only reserved slots left), ``auth`` (wrong password or
            role), ``timeout`` (connect timeout), ``setup`` (the alias's configuration or the
            role's privileges: no CONNECT privilege, NOLOGIN role, bad ``options``, bad
            sslmode, unknown connection option, missing NAME, unknown ENGINE, missing
            driver) or ``other``. ``full``, ``reserved``, ``unreachable`` and ``timeout``
            are critical; the others are unknown: they say nothing about the server.
        alias: the Django database alias.
        detail: the driver's first line, for logs.
    """

    def __init__(self, message: str, *, kind: ProblemKind, alias: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind: ProblemKind = kind
        self.alias = alias
        self.detail = detail

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_CRITICAL` when the application cannot connect either, else
        :data:`EXIT_UNKNOWN` (the check's own setup failed)."""
        critical = ("full", "reserved", "unreachable", "timeout")
        return EXIT_CRITICAL if self.kind in critical else EXIT_UNKNOWN


class InsufficientPrivilege(DbConnMgrError):
    """The role lacks a privilege the request needs (e.g. superuser for
    ``include_superusers``)."""


class ActionNotPossible(DbConnMgrError):
    """The action cannot run in this context (e.g. force-close inside ``atomic()``)."""


class InvalidSetting(DbConnMgrError, ValueError):
    """A ``settings.DBCONNMGR`` value is invalid where it is read.

    ``manage.py check`` reports the same problem with a check id at startup; readers raise
    this so a bad value is one line naming the key, never a traceback later on.

    Attributes:
        key: the ``DBCONNMGR`` key (``"TERMINATE_TIMEOUT"``), or ``""`` for the dict itself.
    """

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class TerminationIncomplete(DbConnMgrError):
    """close-idle/force-close failed after signalling backends.

    The backends were signalled (the audit lines are logged); whether they exited could not
    be confirmed. ``report`` says what was done: the signalled backends are ``not_exited``
    with the reason.

    Attributes:
        report: the :class:`~dbconnmgr.core.termination.TerminationReport` of what was done.
    """

    def __init__(self, message: str, *, report: TerminationReport) -> None:
        super().__init__(message)
        self.report = report
