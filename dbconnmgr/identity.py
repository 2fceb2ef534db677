"""Process identity in ``application_name``: service, command, host and pid.

``database_config(process_identity=True)`` makes every connection of a process say which
process opened it, so a server row maps to one process on one host::

    web@app-7f9c:48213               a web worker
    web:db_connections@app-7f9c:48290   a management command of the same service

PostgreSQL keeps ``application_name`` to ``NAMEDATALEN - 1`` = 63 bytes, cut bytewise, and
replaces characters outside printable ASCII: the name is made ASCII here and shortened
from the host and the name, never the pid. A process forked after settings were read
(gunicorn ``--preload``, Celery's prefork pool) gets its own pid in the name: an at-fork
hook rewrites the ``OPTIONS`` entry. Import-light: read from ``settings.py``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "MAX_APPLICATION_NAME_BYTES",
    "command_name",
    "process_application_name",
    "with_command",
]

#: PostgreSQL's NAMEDATALEN - 1: the bytes of ``application_name`` the server keeps.
MAX_APPLICATION_NAME_BYTES = 63
_COMMAND_RUNNERS = frozenset({"manage.py", "django-admin", "django-admin.py"})


def command_name(argv: Sequence[str] | None = None) -> str | None:
    """The management command this process runs (``manage.py db_connections`` ->
    ``db_connections``), or None when it is no command (a web worker, a Celery worker)."""
    args = sys.argv if argv is None else argv
    if len(args) < 2:
        return None
    runner = os.path.basename(args[0])
    is_runner = runner in _COMMAND_RUNNERS or args[0].replace("\\", "/").endswith(
        "django/__main__.py"
    )
    if not is_runner or args[1].startswith("-"):
        return None
    return args[1]


def with_command(name: str, argv: Sequence[str] | None = None) -> str:
    """``name:command`` in a management command's process (``web:migrate``), else ``name``."""
    command = command_name(argv)
    return f"{name}:{command}" if command else name


def _ascii(text: str) -> str:
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def process_application_name(
    name: str, *, command: str | None = None, host: str | None = None, pid: int | None = None
) -> str:
    """``name[:command]@host:pid`` within :data:`MAX_APPLICATION_NAME_BYTES`.

    The pid is always kept whole; the host is shortened first (to its first label, then
    cut), then the name. Defaults: this host and this process.
    """
    host = socket.gethostname() if host is None else host
    pid = os.getpid() if pid is None else pid
    head = _ascii(f"{name}:{command}" if command else name)
    tail = f":{pid}"
    host = _ascii(host)
    room = MAX_APPLICATION_NAME_BYTES - len(tail)
    if len(head) + 1 + len(host) > room:
        host = host.split(".", 1)[0]
    if len(head) + 1 + len(host) > room:
        host = host[: max(8, room - len(head) - 1)]
    head = head[: room - 1 - len(host)]
    return f"{head}@{host}{tail}"


def follow_forks(options: dict[str, Any], name: str, command: str | None) -> None:
    """Rewrite ``options["application_name"]`` with the child's pid after every fork."""

    def renamed() -> None:
        options["application_name"] = process_application_name(name, command=command)

    os.register_at_fork(after_in_child=renamed)
