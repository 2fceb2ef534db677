"""MySQL's and MariaDB's settings step: timeouts, charset, strict mode, wait_timeout.

Imported by :mod:`dbconnmgr.database_settings` from a project's ``settings.py``, before
Django is set up: no ``django.db``, no driver at import time.
"""

from __future__ import annotations

from typing import Any, Final

from dbconnmgr.backends import registry
from dbconnmgr.backends.engine_settings import (
    DEFAULT_CONNECT_TIMEOUT,
    EngineSettings,
    Sources,
    first,
    parse_whole,
    set_option,
)

__all__ = ["DEFAULT_WAIT_TIMEOUT", "MYSQL_ENGINES", "SETTINGS", "WAIT_TIMEOUT_MARGIN", "configure"]

#: Django's and GIS's MySQL ENGINE (listed once, in the registry).
MYSQL_ENGINES: Final = registry.engine("mysql").engines
#: MySQL's and MariaDB's default ``wait_timeout``: the server closes a connection idle longer.
DEFAULT_WAIT_TIMEOUT: Final = 28_800
#: A persistent MySQL connection is retired this many seconds before the server's
#: ``wait_timeout`` would close it under Django ("MySQL server has gone away").
WAIT_TIMEOUT_MARGIN: Final = 60


def configure(config: dict[str, Any], options: dict[str, Any], src: Sources) -> None:
    """MySQL / MariaDB (mysqlclient): timeouts, charset, strict mode, and a CONN_MAX_AGE
    below the server's ``wait_timeout``.

    Django has no MySQL pool: every thread holds its own connection (docs/mysql.md). A
    persistent connection older than the server's ``wait_timeout`` (``$DB_WAIT_TIMEOUT``,
    default 28800) has been closed by the server, and Django's next query on it fails with
    "MySQL server has gone away": CONN_MAX_AGE (forever included) is capped below it.
    """
    wait = first(src.whole("DB_WAIT_TIMEOUT"), DEFAULT_WAIT_TIMEOUT)
    ceiling = max(0, wait - WAIT_TIMEOUT_MARGIN)
    age = config.get("CONN_MAX_AGE")
    if age is None or age > ceiling:
        config["CONN_MAX_AGE"] = ceiling
    set_option(
        options,
        "connect_timeout",
        src.whole("DB_CONNECT_TIMEOUT", "connect_timeout"),
        DEFAULT_CONNECT_TIMEOUT,
    )
    for key, var in (("read_timeout", "DB_READ_TIMEOUT"), ("write_timeout", "DB_WRITE_TIMEOUT")):
        chosen = src.whole(var)
        if chosen is not None:
            options[key] = chosen
        elif isinstance(options.get(key), str):
            options[key] = parse_whole(f"OPTIONS[{key!r}]", options[key])
    options.setdefault("charset", "utf8mb4")
    existing = str(options.get("init_command") or "")
    assignments = [] if "sql_mode" in existing else ["sql_mode='STRICT_TRANS_TABLES'"]
    limit_ms = src.whole("DB_STATEMENT_TIMEOUT", "statement_timeout", minimum=0)
    if limit_ms:  # MariaDB's max_statement_time is in seconds
        assignments.append(f"SESSION max_statement_time={limit_ms / 1000:g}")
    ours = "SET " + ", ".join(assignments) if assignments else ""
    options["init_command"] = "; ".join(c for c in (existing, ours) if c)


SETTINGS: Final = EngineSettings(
    vendor="mysql",
    schemes=frozenset({"mysql", "mysql2", "mysqlgis", "mysql-connector"}),
    configure=configure,
    connect_timeout=True,
    wait_timeout=DEFAULT_WAIT_TIMEOUT,
)
