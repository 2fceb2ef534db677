"""The interface every vendor backend implements. Vendor differences stay behind it."""

from __future__ import annotations

import gc
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.snapshot import ClientCount, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import ServerUnavailable

if TYPE_CHECKING:  # Django stays unimported until a backend is used (registry lookups)
    from django.db.backends.base.base import BaseDatabaseWrapper

#: The first and the longest pause between two reads of :meth:`ConnectionBackend.still_running`.
_FIRST_PAUSE, _LONGEST_PAUSE = 0.005, 0.02


class ConnectionBackend(ABC):
    """Reads connection snapshots from one Django database alias.

    An engine's backend writes its reads (SQL, row builders) and declares its driver's
    facts (:meth:`classify_error`, :meth:`driver_pid`, :meth:`is_driver_error`); this class
    maps every error met on the way (:meth:`_cursor`, :meth:`_errors_classified`) and owns
    the poll of :meth:`still_running`.

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

    def still_running(
        self, candidates: Sequence[Candidate], timeout: float, *, queries: bool = False
    ) -> set[int]:
        """Wait up to ``timeout`` seconds for ``candidates`` to exit (with ``queries``: for
        the query each ran when selected to end); return the pids left.

        Reads :meth:`_running` on one cursor, pausing 5 ms, then twice as long each time
        up to 20 ms: a signalled session usually exits within milliseconds.
        """
        if not candidates:
            return set()
        deadline = time.monotonic() + timeout
        pause = _FIRST_PAUSE
        with self._cursor() as cursor:
            while True:
                running = self._running(cursor, candidates, queries=queries)
                if not running or time.monotonic() >= deadline:
                    return running
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, _LONGEST_PAUSE)

    @abstractmethod
    def _running(self, cursor: Any, candidates: Sequence[Candidate], *, queries: bool) -> set[int]:
        """One read for :meth:`still_running`: the pids of ``candidates`` still there (with
        ``queries``: still running the query they ran when selected)."""

    # -- the driver: what the engine declares, what this class does with it ---------------
    @staticmethod
    def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
        """``exc`` (a driver error met connecting or reading) as :class:`ServerUnavailable`
        when it is about reaching the server, else ``exc`` itself (it keeps its traceback).
        The default classifies nothing."""
        return exc

    @classmethod
    def is_driver_error(cls, exc: BaseException) -> bool:
        """``exc`` is the driver's own error, raised past Django's wrappers (classified like
        Django's ``DatabaseError``). The default: none is."""
        return False

    @classmethod
    def driver_pid(cls, raw: Any) -> int | None:
        """The server's pid (connection id) of ``raw``, a driver connection of this engine
        (Django's ``connection.connection``, a pooled one), without a round trip."""
        return None

    @contextmanager
    def _errors_classified(self) -> Iterator[None]:
        """Raise every error of the block as :func:`setup_error` (configuration) or
        :meth:`classify_error` (the driver's), chained to the original."""
        from django.core.exceptions import ImproperlyConfigured
        from django.db import DatabaseError, InterfaceError

        try:
            yield
        except ImproperlyConfigured as exc:  # missing NAME, unknown ENGINE, missing driver
            raise setup_error(exc, self.alias) from None
        except (DatabaseError, InterfaceError) as exc:
            raise self.classify_error(exc, self.alias) from exc
        except Exception as exc:
            if self.is_driver_error(exc):
                raise self.classify_error(exc, self.alias) from exc
            raise

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor of Django's connection (counted by execute wrappers; connecting, or
        taking a pooled connection, on first use), errors classified. What is yielded is
        :meth:`_driver_cursor` of it."""
        with self._errors_classified(), self.connection.cursor() as cursor:
            yield self._driver_cursor(cursor)

    def _driver_cursor(self, cursor: Any) -> Any:
        """The cursor the engine's statements run on; the default: Django's own."""
        return cursor


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
