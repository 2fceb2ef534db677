"""The PgBouncer part of status and health: read the console configured for an alias.

``DBCONNMGR["PGBOUNCER"][alias]`` names the console (app_settings.pgbouncer_setting); the
console is read by :mod:`dbconnmgr.backends.pgbouncer` and judged by the pure
:mod:`dbconnmgr.core.pooler`. A console that cannot be read is a finding (UNKNOWN), never an
exception: the server part still reports.
"""

from __future__ import annotations

from dbconnmgr.app_settings import pgbouncer_setting
from dbconnmgr.core.pooler import (
    PoolerSnapshot,
    PoolerUnavailable,
)

__all__ = ["read_pooler"]


def read_pooler(alias: str) -> PoolerSnapshot | PoolerUnavailable | None:
    """What the console in front of ``alias`` says, why it could not be read, or None when
    no PgBouncer is configured for ``alias``.

    Raises:
        InvalidSetting: ``DBCONNMGR["PGBOUNCER"]`` is malformed.
    """
    setting = pgbouncer_setting(alias)
    if setting is None:
        return None
    from dbconnmgr.backends.pgbouncer import read_console

    return read_console(alias, setting.console)
