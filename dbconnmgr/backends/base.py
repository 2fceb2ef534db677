"""The interface every vendor backend implements. Vendor differences stay behind it."""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import tzinfo
from typing import Any, ClassVar

from django.db.backends.base.base import BaseDatabaseWrapper

from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.retained import RetainedPeaks
from dbconnmgr.core.snapshot import ClientCount, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import ServerUnavailable


class ConnectionBackend(ABC):
    """Reads connection snapshots from one Django database alias.

    Args:
        alias: the Django database alias.
        connection: Django's wrapper for that alias (``django.db.connections[alias]``).
    """

    #: Django's ``connection.vendor`` this backend serves.
    vendor: ClassVar[str]
    #: What this engine can do and report; callers ask these, never ``vendor``.
    capabilities: ClassVar[Capabilities]

    def __init__(self, alias: str, connection: BaseDatabaseWrapper) -> None:
        self.alias = alias
        self.connection = connection

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """Read every client connection and the server's limits in one round trip.

        Raises:
            dbconnmgr.exceptions.ServerUnavailable: the server could not be reached,
                is full, or refused the credentials.
        """

    @abstractmethod
    def count_client_connections(self) -> ClientCount:
        """Count the server's client connections and read its limits, cheaply.

        The reading connection itself is not counted (like every count of dbconnmgr). One
        short statement (no per-connection rows), fresh even inside a transaction.
        """

    @abstractmethod
    def select_for_termination(self, criteria: Criteria) -> Selection:
        """Read the client backends that match ``criteria`` (never the own backend).

        Raises:
            dbconnmgr.exceptions.ServerUnavailable: the server could not be reached.
        """

    @abstractmethod
    def terminate(
        self, criteria: Criteria, candidates: Sequence[Candidate]
    ) -> dict[int, ServerAnswer]:
        """Signal ``candidates`` in one statement that re-checks ``criteria`` per backend:
        end the session, or with ``criteria.signal == "cancel"`` only its running query
        (asked only of a backend whose ``capabilities.can_cancel``).

        A candidate that no longer matches, has gone, belongs to a superuser while
        ``criteria.include_superusers`` is off, or may not be signalled by this role is left
        alone and answered as such; only the others are signalled.
        """

    @classmethod
    def time_limited_options(cls, options: dict[str, Any], seconds: float) -> dict[str, Any]:
        """``OPTIONS`` for a private connection whose statements end after ``seconds``
        (a lock wait a little earlier). The default sets no limit."""
        return options

    @classmethod
    def limit_transaction(cls, cursor: Any, seconds: float) -> None:
        """Bound the statements of the transaction open on ``cursor`` to ``seconds``.
        The default sets no limit."""
        return

    def retained_peaks(self, days: int, tz: tzinfo) -> RetainedPeaks | None:
        """The busiest hours from the server's own retained history, over ``days`` days,
        in ``tz``'s hours; None where the engine keeps none
        (``capabilities.reports_retained_history``)."""
        return None

    @abstractmethod
    def still_running(
        self, candidates: Sequence[Candidate], timeout: float, *, queries: bool = False
    ) -> set[int]:
        """Wait up to ``timeout`` seconds for ``candidates`` to exit (with ``queries``: for
        the query each ran when selected to end); return the pids left."""


def setup_error(exc: BaseException, alias: str) -> ServerUnavailable:
    """A configuration problem of ``alias`` (ImproperlyConfigured: missing NAME, unknown
    ENGINE, missing driver) as a ``setup`` :class:`ServerUnavailable`: UNKNOWN, one line."""
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    # Django's "Error loading MySQLdb module." says what to install on its second line.
    said = " ".join(line.strip() for line in text.splitlines()[:2]) or first_line
    return ServerUnavailable(
        f"database {alias!r}: bad configuration ({said})",
        kind="setup",
        alias=alias,
        detail=first_line,
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one snapshot read (its round trip, a few
    milliseconds, included).

    A snapshot of 1,000 sessions allocates a few thousand tuples that can hold no cycle;
    every 700 allocations would otherwise start a collection that walks the young objects
    (and now and then every object of a Django process) for nothing: about 0.1x of a
    MariaDB snapshot at 1,000 connections (docs/benchmarks.md). Objects freed meanwhile go
    by reference counting as always; only cycles wait. The collector is turned back on
    only if it was on: a process that disabled it keeps it off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
