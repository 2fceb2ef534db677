"""mysqlclient (MySQLdb), as dbconnmgr needs it: what a driver error means, the thread id
of a connection and the ``init_command`` that bounds a statement's time. Imports no
driver."""

from __future__ import annotations

from typing import Any

from dbconnmgr.exceptions import ProblemKind, ServerUnavailable

#: MySQL's ER_SPECIFIC_ACCESS_DENIED_ERROR ("you need the PROCESS privilege").
NEEDS_PRIVILEGE = 1227


# Client and server error numbers (MySQL's errmsg), as mysqlclient gives them in args[0].
_CODES: dict[int, tuple[ProblemKind, str]] = {
    1040: ("full", "the server is full (max_connections reached: error 1040)"),
    1203: ("full", "the account's connection limit is reached (max_user_connections)"),
    1226: ("full", "the account's connection limit is reached (MAX_USER_CONNECTIONS)"),
    1045: ("auth", "authentication failed (wrong user or password)"),
    1698: ("auth", "authentication failed (access denied for this user)"),
    1044: ("setup", "the account may not use the database"),
    1049: ("auth", "the database does not exist"),
    1130: ("auth", "this host may not connect to the server"),
    2002: ("unreachable", "cannot connect: no server on that socket or port"),
    2003: ("unreachable", "cannot connect: connection refused"),
    2005: ("unreachable", "cannot connect: unknown host name"),
    2006: ("unreachable", "the server has gone away"),
    2013: ("unreachable", "the connection to the server was lost"),
    1969: ("other", "the read took longer than its max_statement_time"),
    1205: ("other", "another session holds a lock the read needs (lock wait timeout)"),
}


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """Turn a driver error met while connecting or reading into :class:`ServerUnavailable`.

    Errors that are not about reaching the server are returned as they are.
    """
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else None
    text = str(args[1]) if len(args) > 1 else str(exc)
    first_line = (text.strip().splitlines() or [type(exc).__name__])[0]
    if code is not None and code in _CODES:
        kind, message = _CODES[code]
        if code in (2002, 2003) and "timed out" in text.lower():
            kind, message = "timeout", "timed out connecting to the server"
        return ServerUnavailable(
            f"database {alias!r}: {message} ({first_line})",
            kind=kind,
            alias=alias,
            detail=first_line,
        )
    return exc


def time_limit_options(options: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``options`` with an ``init_command`` that ends any statement after ``seconds``
    (MariaDB's ``max_statement_time``) and a lock wait a little earlier."""
    lock = max(1, int(seconds * 0.9))
    bound = (
        f"SET SESSION max_statement_time={seconds:g}, lock_wait_timeout={lock}, "
        f"innodb_lock_wait_timeout={lock}"
    )
    existing = options.get("init_command")
    return {**options, "init_command": f"{existing}; {bound}" if existing else bound}


def is_driver_error(exc: BaseException) -> bool:
    """A MySQLdb error raised past Django's wrapper (by ``nextset()``, say)."""
    return type(exc).__module__.startswith("MySQLdb")


def needs_privilege(exc: BaseException) -> bool:
    """``exc`` is error 1227: the statement needs a privilege the account lacks (PROCESS)."""
    return bool(getattr(exc, "args", None)) and exc.args[0] == NEEDS_PRIVILEGE


def driver_pid(raw: Any) -> int | None:
    """The server's thread id of a MySQLdb connection (``thread_id()``)."""
    thread_id = getattr(raw, "thread_id", None)
    pid = thread_id() if callable(thread_id) else None
    return int(pid) if pid else None
