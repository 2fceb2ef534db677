"""Snapshots of several database aliases at once: ``--database a,b,...`` and ``all``.

::

    from dbconnmgr.readers import read_snapshots

    for alias, result in read_snapshots(["default", "replica", "analytics"]).items():
        print(alias, result if isinstance(result, Exception) else result.total_connections)

The aliases are read concurrently, by at most ``max_readers`` threads, each through a
private, unpooled connection that is closed as soon as its snapshot is taken: the command
never holds more than ``max_readers`` slots, and never one per alias, of a server that may
be nearly full. Aliases that connect the same way (same engine, host, port, database, user
and password, after PgBouncer's direct server URL is applied; a pooled and an unpooled
alias of the same account, say) share one reader: one snapshot serves them all. Aliases
that connect as another role or to another database get a reader of their own: what a
snapshot sees and the limits it reports are those of the reading role and database.
Where readers of one command run on the same server (the same engine, ``HOST`` and
``PORT`` in the settings) at the same time, no snapshot counts another's reader: their
backends are left out of every snapshot of that server, as each snapshot already leaves
out its own. (Pids are matched per server: the same server written two ways, a name and
an address, is taken for two.)
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.exceptions import DbConnMgrError

__all__ = ["DEFAULT_MAX_READERS", "LazyReads", "SnapshotBatch", "read_snapshots"]

#: Reader connections open at once, at most, when no bound is given.
DEFAULT_MAX_READERS = 4

Result = Snapshot | DbConnMgrError


def _target(alias: str) -> tuple[Any, ...]:
    """What a connection of ``alias`` connects to, as a reader would connect: the engine,
    host, port, database, user and password (``OPTIONS`` left out: a pool, an
    ``application_name`` or a time limit change nothing in what the reader sees).

    Raises:
        DbConnMgrError: the alias is unknown or of an engine dbconnmgr does not read.
    """
    from dbconnmgr.backends import direct_server_url, get_backend, server_settings

    backend = get_backend(alias)
    settings = dict(backend.connection.settings_dict)
    server_url = direct_server_url(alias)
    if server_url is not None:
        settings.update(server_settings(server_url))
    return (
        backend.vendor,
        settings.get("HOST") or "",
        str(settings.get("PORT") or ""),
        settings.get("NAME") or "",
        settings.get("USER") or "",
        settings.get("PASSWORD") or "",
    )


def _server(target: tuple[Any, ...]) -> tuple[Any, ...]:
    """The server part of a target: engine, host and port."""
    return target[:3]


def read_snapshots(
    aliases: Sequence[str],
    *,
    max_readers: int = DEFAULT_MAX_READERS,
    time_limit: float | None = None,
) -> dict[str, Result]:
    """A snapshot of each alias, or the error that kept it from being read, in ``aliases``'
    order.

    Args:
        aliases: Django database aliases (duplicates are read once).
        max_readers: reader connections open at once, at most (>= 1).
        time_limit: seconds each reader's statements may take, lock waits included (see
            :func:`dbconnmgr.backends.private_backend`); None: no limit of ours.

    Raises:
        ValueError: ``max_readers`` is less than 1.
    """
    if max_readers < 1:
        raise ValueError(f"max_readers must be >= 1, got {max_readers}")
    results: dict[str, Result] = {}
    groups: dict[tuple[Any, ...], list[str]] = {}
    for alias in dict.fromkeys(aliases):
        try:
            groups.setdefault(_target(alias), []).append(alias)
        except DbConnMgrError as exc:
            results[alias] = exc
    readers: dict[tuple[Any, ...], set[int]] = {}
    lock = threading.Lock()

    def read(target: tuple[Any, ...], alias: str) -> Result:
        from django.db import DatabaseError

        from dbconnmgr.backends import classify_error, private_backend

        try:
            backend = private_backend(alias, time_limit=time_limit)
        except DbConnMgrError as exc:
            return exc
        try:
            snapshot = backend.snapshot()
        except DbConnMgrError as exc:
            return exc
        except DatabaseError as exc:  # as the engine classifies it: unreachable, full...
            classified = classify_error(exc, alias)
            if isinstance(classified, DbConnMgrError):
                return classified
            raise
        finally:
            _close(backend)
        with lock:
            readers.setdefault(_server(target), set()).add(snapshot.own_pid)
        return snapshot

    with ThreadPoolExecutor(
        max_workers=min(max_readers, max(1, len(groups))), thread_name_prefix="dbconnmgr-reader"
    ) as pool:
        futures = {target: pool.submit(read, target, names[0]) for target, names in groups.items()}
    for target, future in futures.items():
        result = future.result()
        for alias in groups[target]:
            if isinstance(result, Snapshot):
                siblings = readers.get(_server(target), set()) - {result.own_pid}
                results[alias] = _relabel(result, alias, siblings)
            else:
                results[alias] = result
    return {alias: results[alias] for alias in dict.fromkeys(aliases)}


def _relabel(snapshot: Snapshot, alias: str, siblings: set[int]) -> Snapshot:
    """``snapshot`` as read through ``alias``, without the backends of ``siblings``."""
    connections = snapshot.connections
    if siblings:
        connections = tuple(c for c in connections if c.pid not in siblings)
    if alias == snapshot.alias and connections is snapshot.connections:
        return snapshot
    return dataclasses.replace(snapshot, alias=alias, connections=connections)


def _close(backend: Any) -> None:
    import contextlib

    from django.db import DatabaseError, InterfaceError

    with contextlib.suppress(DatabaseError, InterfaceError):
        backend.connection.close()


class LazyReads:
    """The snapshots of several aliases, read together the first time one is asked for.

    What ``--database a,b,...`` gives each action run: the first run that needs its
    snapshot reads every alias's (after its own checks, so that an invalid option costs
    no I/O); the others take theirs from the same read.
    """

    def __init__(self, aliases: Sequence[str], *, max_readers: int = DEFAULT_MAX_READERS) -> None:
        self.aliases = list(aliases)
        self.max_readers = max_readers
        self._results: dict[str, Result] | None = None

    def get(self, alias: str) -> Result:
        """The snapshot of ``alias``, or the error that kept it from being read."""
        if self._results is None:
            self._results = read_snapshots(self.aliases, max_readers=self.max_readers)
        return self._results[alias]


class SnapshotBatch:
    """Reads several aliases at once per tick, for monitors that sample them together.

    ``read()`` takes every alias's snapshot concurrently (:func:`read_snapshots`); the
    batch is then the ``snapshot`` reader of each :class:`~dbconnmgr.monitor_loop.Monitor`:
    ``batch(alias)`` returns that alias's snapshot of the tick, or raises what kept it
    from being read (a :class:`~dbconnmgr.exceptions.ServerUnavailable` becomes the
    monitor's unreachable sample). No reader stays open between ticks.
    """

    def __init__(
        self,
        aliases: Sequence[str],
        *,
        max_readers: int = DEFAULT_MAX_READERS,
        time_limit: float | None = None,
    ) -> None:
        self.aliases = list(aliases)
        self.max_readers = max_readers
        self.time_limit = time_limit
        self._results: dict[str, Result] = {}

    def read(self) -> None:
        """Read every alias now."""
        self._results = read_snapshots(
            self.aliases, max_readers=self.max_readers, time_limit=self.time_limit
        )

    def __call__(self, alias: str) -> Snapshot:
        """The snapshot of ``alias`` read by the last :meth:`read`.

        Raises:
            DbConnMgrError: what kept it from being read.
        """
        result = self._results[alias]
        if isinstance(result, DbConnMgrError):
            raise result
        return result
