"""Names chosen by clients are shown literally: no markup, no escape sequence, one log line.

Every rich surface runs as ``manage.py`` on a real pseudo-terminal with colours on, against
real sessions whose role, database and application names are hostile: rich markup, an
unbalanced ``[/]``, a trailing backslash, wide characters, raw ESC and OSC 8 sequences,
a newline. PostgreSQL keeps any character in role and database names; in
``application_name`` it keeps printable ASCII only (the rest becomes ``?``), so the
non-ASCII names reach the screen through the role and database columns.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from rich.cells import cell_len

from dbconnmgr.alerts import Alert, LoggingHandler
from dbconnmgr.core.findings import Finding
from dbconnmgr.core.health import Severity
from dbconnmgr.core.text import escape_controls
from devtools.pgbouncerserver import PgBouncerServer
from devtools.pgserver import PgServer
from tests.conftest import ROOT, database_alias, drain_terminal, wait_for_state

#: name -> the hostile text. Every one is a role and a database; the printable-ASCII ones
#: are also application names.
HOSTILE: dict[str, str] = {
    "link": "[link=http://evil.invalid]click[/link]",
    "markup": "[bold red]x[/]",
    "unbalanced": "tail[/]",
    "blink": "[blink]on",
    "backslash": "ends-with\\",
    "wide": "象🐘wide",
    "esc": "clear\x1b[2Jscreen",
    "osc8": "\x1b]8;;http://evil.invalid\x1b\\osc8link\x1b]8;;\x1b\\",
    "newline": "two\nlines",
}
ASCII_NAMES = {k: v for k, v in HOSTILE.items() if v.isascii() and v.isprintable()}

#: The escape sequences the program itself writes: SGR colours, cursor moves and line
#: erasing (the live view), hiding and showing the cursor. Nothing else may reach the
#: terminal: no OSC (hyperlinks, titles), no screen clearing (ESC[2J), no C1 controls.
OWN_SEQUENCES = re.compile(r"\x1b\[(?:[0-9;]*[mABCDGK]|\?25[lh])")
BOX = "╭│├╰┏┃┡└┌"


def visible(raw: str) -> str:
    """What a person reads: the program's own sequences removed, each line as last drawn."""
    text = OWN_SEQUENCES.sub("", raw).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def assert_clean(raw: str) -> str:
    """No escape sequence the program did not emit; returns the visible text."""
    shown = visible(raw)
    assert "\x1b" not in shown, f"foreign escape sequence: {shown[shown.index(chr(27)) - 40 :]!r}"
    assert not re.search("[\x80-\x9f\x07]", shown), "C1 control or BEL on the terminal"
    return shown


def assert_tables_intact(shown: str) -> None:
    """Every table's lines are as wide as each other (a name broke no border)."""
    block: list[str] = []
    for line in [*shown.split("\n"), ""]:
        stripped = line.rstrip()
        if stripped[:1] and stripped[0] in BOX:
            block.append(stripped)
            continue
        widths = {cell_len(b) for b in block}
        assert len(widths) <= 1, "a table's border moved:\n" + "\n".join(block)
        block = []


# -- the servers and the sessions ------------------------------------------------------------------
@dataclass
class Hostile:
    server: PgServer
    conns: list[psycopg.Connection]

    @property
    def url(self) -> str:
        return self.server.url

    def url_of(self, database: str, role: str | None = None) -> str:
        """DATABASE_URL of ``database`` on this server, as the superuser or ``role``."""
        url = self.server.url.rsplit("/", 1)[0] + "/" + quote(database, safe="")
        if role is None:
            return url
        return f"postgres://{quote(role, safe='')}:pw@127.0.0.1:{self.server.port}/" + quote(
            database, safe=""
        )


def _create_role_and_database(admin: psycopg.Connection, name: str) -> None:
    ident = sql.Identifier(name)
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(ident))
    admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident, ident))


def _connect(server: PgServer, name: str, app: str, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=server.port, user=name, password="pw", dbname=name,
        application_name=app, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    """A server of its own with, per hostile name: a role and a database of that name, an
    idle session of it (application named after it when the server keeps the name), a
    session idle in a transaction, one running a query; and a lock wait between two."""
    server = PgServer(max_connections=60).start()
    conns: list[psycopg.Connection] = []
    threads: list[threading.Thread] = []
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            for name in HOSTILE.values():
                _create_role_and_database(admin, name)
            admin.execute(
                sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 40").format(
                    sql.Identifier(HOSTILE["esc"])
                )
            )
            admin.execute("CREATE TABLE locked (id int)")
            admin.execute("GRANT ALL ON locked TO PUBLIC")
        for key, name in HOSTILE.items():
            app = ASCII_NAMES.get(key, f"app-{key}")
            idle = _connect(server, name, app, autocommit=True)
            idle.execute("SELECT 1")
            in_txn = _connect(server, name, app)
            in_txn.execute("SELECT 1")
            active = _connect(server, name, app, autocommit=True)
            conns += [idle, in_txn, active]

            def run(conn: psycopg.Connection = active) -> None:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_sleep(600)")

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            threads.append(thread)
            for conn, state in (
                (idle, "idle"),
                (in_txn, "idle in transaction"),
                (active, "active"),
            ):
                wait_for_state(server.dsn(), conn.info.backend_pid, state)
        holder = psycopg.connect(server.dsn(), application_name=HOSTILE["link"])
        holder.execute("LOCK TABLE locked")
        waiter = psycopg.connect(server.dsn(), application_name=HOSTILE["markup"], autocommit=True)
        conns += [holder, waiter]

        def wait() -> None:
            with contextlib.suppress(psycopg.Error):
                waiter.execute("SELECT * FROM locked")

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        threads.append(thread)
        wait_for_state(server.dsn(), waiter.info.backend_pid, "active")
        time.sleep(0.3)  # the lock wait is seen as one
        yield Hostile(server, conns)
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(server.dsn(), autocommit=True) as a,
        ):
            a.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        for thread in threads:
            thread.join(timeout=5)
        server.stop()


# -- running manage.py on a pseudo-terminal ------------------------------------------------------
def on_terminal(
    *args: str,
    database_url: str,
    columns: int = 160,
    answer: str | None = None,
    dbconnmgr: dict[str, Any] | None = None,
    until: bytes | None = None,
    timeout: float = 60,
) -> tuple[int, str]:
    """Run ``manage.py ARGS`` with stdin, stdout and stderr on a pseudo-terminal of
    ``columns`` columns, colours on; type ``answer`` when the ``[y/N]`` prompt shows.
    Returns the exit code and everything the terminal received."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings_cli", DATABASE_URL=database_url,
        DBCONNMGR_JSON=json.dumps(dbconnmgr or {}), COLUMNS=str(columns), LINES="200",
        TERM="xterm-256color",
    )  # fmt: skip
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 200, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + timeout
        answered = False
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    output += os.read(master, 65536)
            if answer is not None and not answered and b"[y/N]" in output:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if until is not None and until in output:
                proc.send_signal(signal.SIGINT)
                until = None
        code = proc.wait(timeout=30)
        output += drain_terminal(master)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, output.decode("utf-8", errors="replace")


LOW = {
    "STATUS_LIMIT": 50,
    "THRESHOLDS": {
        "IDLE_IN_TRANSACTION_WARNING": 0,
        "QUERY_AGE_WARNING": 0,
        "LOCK_WAIT_WARNING": 0,
    },
}

#: surface -> (arguments, the HOSTILE keys it must show, the database it connects to).
#: status and the plans show every session's role and database; the health findings and
#: the live view quote application names (health: the lock's blocker, ``link``); budget
#: names the database whose CONNECTION LIMIT binds.
SURFACES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    "status": (("--action=status",), tuple(HOSTILE), None),
    "health": (("--action=health",), ("link",), None),
    "close-idle plan": (("--action=close-idle", "--dry-run", "--idle-for=0"), tuple(HOSTILE), None),
    "close-idle confirmation": (("--action=close-idle", "--idle-for=0"), tuple(HOSTILE), None),
    "cancel plan": (("--action=cancel", "--dry-run", "--running-for=0"), tuple(HOSTILE), None),
    "force-close plan": (("--action=force-close", "--dry-run"), (), None),
    "monitor, one sample": (("--action=monitor",), tuple(ASCII_NAMES), None),
    "monitor, live view": (
        ("--action=monitor", "--watch", "--interval=0.3", "--count=3"),
        tuple(ASCII_NAMES),
        None,
    ),
    "budget": (("--action=budget", "--service=web=2x4"), ("esc",), HOSTILE["esc"]),
}


@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_surface_shows_hostile_names_literally(hostile: Hostile, surface: str) -> None:
    args, keys, database = SURFACES[surface]
    answer = "n" if surface == "close-idle confirmation" else None
    # budget reads as the database's owner: a superuser is exempt from CONNECTION LIMIT
    url = hostile.url if database is None else hostile.url_of(database, role=database)
    code, raw = on_terminal("db_connections", *args, database_url=url, answer=answer,
                            dbconnmgr=LOW)  # fmt: skip
    assert "Traceback" not in raw, raw
    assert code in (0, 1, 2), raw
    assert "\x1b[" in raw, "colours were on"
    shown = assert_clean(raw)
    for key in keys:
        name = HOSTILE[key]
        assert escape_controls(name) in shown, f"{key}: {name!r} not shown literally:\n{shown}"
    assert "click" not in shown.replace(HOSTILE["link"], ""), "the link's text was rendered"
    if surface.startswith("monitor"):  # the program's own line breaks are not escaped
        assert re.search(r"dbconnmgr monitor: default[^\n]*\n\s*sample 1", shown), shown
    assert_tables_intact(shown)


def test_close_idle_report_after_terminating_hostile_sessions(hostile: Hostile) -> None:
    """The report of a real close-idle (not a dry run) of the sessions with wide and escape
    names, then the audit lines it logged: one line each."""
    with psycopg.connect(hostile.server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier("x\ny")))
    victim = psycopg.connect(
        host="127.0.0.1", port=hostile.server.port, user="x\ny", password="pw",
        dbname=HOSTILE["esc"], application_name="victim", autocommit=True,
    )  # fmt: skip
    try:
        code, raw = on_terminal(
            "db_connections", "--action=close-idle", "--idle-for=0", "--user=x\ny", "--noinput",
            database_url=hostile.url,
        )  # fmt: skip
        shown = assert_clean(raw)
        assert code == 0, shown
        assert (
            "terminated" in shown and "x\\ny" in shown and escape_controls(HOSTILE["esc"]) in shown
        )
        assert_tables_intact(shown)
    finally:
        victim.close()


def test_error_lines_quote_hostile_names_on_one_line(hostile: Hostile) -> None:
    """The server's error names the database it could not find: one line, escaped."""
    missing = "gone\x1b[2J\n[link=http://evil.invalid]db[/link]"
    code, raw = on_terminal(
        "db_connections", "--action=status", database_url=hostile.url_of(missing)
    )
    shown = assert_clean(raw)
    assert code == 3, shown  # the database does not exist: a setup error
    lines = [line for line in shown.split("\n") if line.strip()]
    assert len(lines) == 1, shown
    assert 'database "gone\\x1b[2J' in lines[0], shown


# -- JSON: verbatim ---------------------------------------------------------------------------
def _json(*args: str, database_url: str) -> Any:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="example_project.settings",
               DATABASE_URL=database_url)  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "db_connections", *args, "--format=json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_json_documents_keep_names_verbatim(hostile: Hostile) -> None:
    status = _json("--action=status", "--limit=100", database_url=hostile.url)
    users = {g["name"] for g in status["by_user"]}
    databases = {g["name"] for g in status["by_database"]}
    apps = {g["name"] for g in status["by_application"]}
    assert set(HOSTILE.values()) <= users
    assert set(HOSTILE.values()) <= databases
    assert set(ASCII_NAMES.values()) <= apps

    plan = _json("--action=close-idle", "--dry-run", "--idle-for=0", database_url=hostile.url)
    selected = plan["selected"]
    assert {s["user"] for s in selected} >= set(HOSTILE.values())
    assert {s["database"] for s in selected} >= set(HOSTILE.values())
    assert {s["application_name"] for s in selected} >= set(ASCII_NAMES.values())

    sample = _json("--action=monitor", database_url=hostile.url)
    assert set(ASCII_NAMES.values()) <= set(sample["by_application"])


# -- audit lines: one per event ---------------------------------------------------------------
def test_audit_lines_are_one_line_per_terminated_session(hostile: Hostile) -> None:
    from dbconnmgr.actions import close_idle_connections

    victims = [
        _connect(hostile.server, name, ASCII_NAMES.get(key, "v"), autocommit=True)
        for key, name in HOSTILE.items()
        if key in ("newline", "link")
    ]
    for conn in victims:
        wait_for_state(hostile.server.dsn(), conn.info.backend_pid, "idle")
    pids = {conn.info.backend_pid for conn in victims}
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("dbconnmgr")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        with database_alias("hostile", hostile.url) as alias:
            report = close_idle_connections(
                alias, older_than=0, application=HOSTILE["link"], dry_run=False
            )
            report2 = close_idle_connections(alias, older_than=0, user="two\nlines")
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
        for conn in victims:
            conn.close()
    done = {r.pid for r in (*report.results, *report2.results) if r.outcome == "terminated"}
    assert pids <= done
    lines = out.getvalue().splitlines()
    events = [line for line in lines if line.startswith(("INFO ", "WARNING "))]
    assert len(events) == len(lines), out.getvalue()  # no line without its own event
    terminated = [line for line in lines if ": terminated backend pid=" in line]
    assert len(terminated) == len(report.results) + len(report2.results)
    assert any("user=two\\nlines" in line for line in terminated), out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_alert_log_line_is_one_line_whatever_the_finding_quotes() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    log = logging.getLogger("test.alerts.oneline")
    log.addHandler(handler)
    log.propagate = False
    finding = Finding(
        code="idle_in_transaction", severity=Severity.WARNING,
        message=f"1 session idle in transaction (pid 7, {HOSTILE['newline']}\x1b[2J)",
    )  # fmt: skip
    try:
        LoggingHandler("test.alerts.oneline")(Alert(alias="default", finding=finding))
    finally:
        log.removeHandler(handler)
    assert out.getvalue().count("\n") == 1
    assert "two\\nlines\\x1b[2J" in out.getvalue()
    assert Alert(alias="default", finding=finding).as_dict()["message"] == finding.message


# -- an 80-column terminal -----------------------------------------------------------------------
LONG = {
    "application": "shop_web_worker_background",
    "user": "shop_service_account",
    "database": "shop_production_eu",
}


@pytest.fixture(scope="module")
def shop(hostile: Hostile) -> Iterator[list[psycopg.Connection]]:
    with psycopg.connect(hostile.server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {LONG['user']} LOGIN PASSWORD 'pw'")
        admin.execute(f"CREATE DATABASE {LONG['database']} OWNER {LONG['user']}")
    conns = [
        psycopg.connect(
            host="127.0.0.1",
            port=hostile.server.port,
            user=LONG["user"],
            password="pw",
            dbname=LONG["database"],
            application_name=LONG["application"],
            autocommit=True,
        )
        for _ in range(2)
    ]
    for conn in conns:
        conn.execute("SELECT 1")
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("answer", [None, "n"], ids=["dry-run", "confirmation"])
def test_close_idle_plan_at_80_columns_shows_every_identifier_whole(
    hostile: Hostile, shop: list[psycopg.Connection], answer: str | None
) -> None:
    args = ["--action=close-idle", "--idle-for=0", f"--user={LONG['user']}"]
    code, raw = on_terminal(
        "db_connections", *args, *([] if answer else ["--dry-run"]),
        database_url=hostile.url, columns=80, answer=answer,
    )  # fmt: skip
    shown = assert_clean(raw)
    assert code == 0, shown
    assert "…" not in shown, shown
    assert max(cell_len(line) for line in shown.split("\n")) <= 80, shown
    for conn in shop:
        assert re.search(rf"pid\s+{conn.info.backend_pid}\b", shown), shown
    for value in (*LONG.values(), "127.0.0.1"):
        assert shown.count(value) >= len(shop), f"{value} not whole:\n{shown}"


def test_pgbouncer_tables_at_80_columns_keep_their_headers(
    bouncer: PgBouncerServer, bouncer_upstream: PgServer
) -> None:
    """Through PgBouncer, with a hostile application name: every header readable, whole,
    and the pool and client names literal."""
    setting = {"CONSOLE": bouncer.console_url(), "SERVER": bouncer_upstream.url}
    with psycopg.connect(
        bouncer.url(), application_name=HOSTILE["link"], autocommit=True
    ) as client:
        client.execute("SELECT 1")
        code, raw = on_terminal(
            "db_connections", "--action=status", database_url=bouncer.url(), columns=80,
            dbconnmgr={"PGBOUNCER": {"default": setting}},
        )  # fmt: skip
    shown = assert_clean(raw)
    assert code == 0, shown
    assert "…" not in shown, shown
    for header in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait"):
        assert header in shown, f"{header}:\n{shown}"
    assert "postgres/postgres" in shown and HOSTILE["link"] in shown, shown
    assert_tables_intact(shown)
