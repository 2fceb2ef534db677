"""``ENGINE = "dbconnmgr.db.postgresql"``: Django's backend, gated and counted.

Everything is Django's PostgreSQL backend (vendor, features, operations); these methods
change:

- ``get_new_connection``: the pool opens its connections through a ``psycopg.Connection``
  subclass that counts failures by cause for this alias (the pool connects in its own
  threads, where Django never sees the error); unpooled connections and their failures
  are counted here.
- ``get_new_connection`` and ``close``: the connector gate, which counts the pooled
  connections Django has checked out in this process. With ``POOL_ON_FULL = "reject"`` a request
  that finds every connection of the process in use fails at once; with ``"queue"`` (the
  default) it waits up to the pool's timeout. Either way a pool that cannot serve raises
  an error naming the alias, the pool's size, the waiting requests and the setting to
  change, instead of psycopg_pool's bare "couldn't get a connection after 10.00 sec".
  Unpooled connection failures are counted by cause.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import PoolTimeout, TooManyRequests

from dbconnmgr import internals, process_stats
from dbconnmgr.database_settings import POOL_ON_FULL_KEY

__all__ = ["DatabaseWrapper", "PoolExhausted", "PoolRejected"]

_ADVICE = (
    "raise the pool (DB_MAX_CONNS, or DB_POOL_SIZE + DB_MAX_OVERFLOW; within "
    "manage.py db_connections --action=budget)"
)


class PoolExhausted(PoolTimeout):
    """No pooled connection within the pool's timeout, or the waiting queue was full.

    A ``psycopg_pool.PoolTimeout``: Django re-raises it as ``django.db.OperationalError``
    with the same message, and code that catches ``PoolTimeout`` still does.
    """


class PoolRejected(PoolExhausted):
    """Every connection of the process was in use and ``DB_POOL_ON_FULL=reject``."""


def _counting_connection_class(alias: str, parent: type[Any]) -> type[Any]:
    class CountingConnection(parent):  # type: ignore[misc]
        dbconnmgr_alias = alias

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                return super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                process_stats.count_failure(alias, exc)
                raise

    CountingConnection.__qualname__ = f"CountingConnection[{alias}]"
    return CountingConnection


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL ``DatabaseWrapper`` with the connector gate and counted failures."""

    #: Counts its own connections: the ``connection_created`` receiver leaves it alone.
    dbconnmgr_counts = True

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self.pool
        if pool is None:
            try:
                connection = super().get_new_connection(conn_params)
            except psycopg.Error as exc:
                process_stats.count_failure(self.alias, exc)
                raise
            process_stats.count_opened(self.alias, connection)
            return connection
        if getattr(pool.connection_class, "dbconnmgr_alias", None) is None:
            # Before the pool's first connection (Django builds it unopened, opens it in
            # super().get_new_connection()): its own threads connect through this class.
            internals.set_pool_connection_class(
                pool, lambda parent: _counting_connection_class(self.alias, parent)
            )
        reject = self.settings_dict.get(POOL_ON_FULL_KEY) == "reject"
        if not process_stats.reserve_checkout(self.alias, pool.max_size if reject else None):
            raise PoolRejected(
                f"database {self.alias!r}: all {pool.max_size} pooled connections of this "
                f"process are in use and DB_POOL_ON_FULL=reject refuses to queue: {_ADVICE}, "
                "or set DB_POOL_ON_FULL=queue"
            )
        got = False
        try:
            connection = super().get_new_connection(conn_params)
            got = True
            return connection
        except TooManyRequests as exc:
            stats = pool.get_stats()
            raise PoolExhausted(
                f"database {self.alias!r}: all {stats.get('pool_size', '?')} of "
                f"{pool.max_size} pooled connections of this process are in use and "
                f"{stats.get('requests_waiting', '?')} requests already wait, the most "
                f"DB_POOL_MAX_WAITING={pool.max_waiting} allows: {_ADVICE} or "
                "DB_POOL_MAX_WAITING"
            ) from exc
        except PoolTimeout as exc:
            stats = pool.get_stats()
            raise PoolExhausted(
                f"database {self.alias!r}: no pooled connection within {pool.timeout:g} s: "
                f"{stats.get('pool_size', '?')} of {pool.max_size} connections of this process, "
                f"{stats.get('pool_available', '?')} free, "
                f"{stats.get('requests_waiting', '?')} requests queued (this one included): "
                f"{_ADVICE} or "
                "DB_POOL_TIMEOUT, and look for long transactions "
                "(manage.py db_connections --action=status)"
            ) from exc
        finally:
            if not got:
                process_stats.release_checkout(self.alias)

    def close(self) -> None:
        """Django's ``close()``; a pooled connection it returns ends its checkout."""
        # The same test as Django's close() before it hands the connection to _close(),
        # which returns a pooled one to the pool (released even if that fails).
        returning = (
            self.connection is not None
            and not self.closed_in_transaction
            and bool(self.settings_dict["OPTIONS"].get("pool"))
        )
        try:
            super().close()
        finally:
            if returning:
                process_stats.release_checkout(self.alias)
