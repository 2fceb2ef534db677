"""MariaDB: processlist users with hostile names are shown literally on a real terminal."""

from __future__ import annotations

from collections.abc import Iterator

import MySQLdb
import pytest

from dbconnmgr.core.text import escape_controls
from devtools.mariadbserver import MariaDBServer
from tests.test_literal_names import assert_clean, assert_tables_intact, on_terminal

pytestmark = pytest.mark.mysql

#: MariaDB account names take any character but NUL (at most 80 of them).
NAMES = ("[link=http://evil.invalid]click[/link]", "clear\x1b[2Jscreen", "[bold red]x[/]")


@pytest.fixture
def hostile_accounts(mariadb: MariaDBServer) -> Iterator[list[MySQLdb.Connection]]:
    conns: list[MySQLdb.Connection] = []
    created: list[str] = []
    admin = MySQLdb.connect(**mariadb.connect_kwargs())
    try:
        with admin.cursor() as cur:
            for name in NAMES:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'pw'", (name,))
                created.append(name)
                cur.execute("GRANT SELECT ON dbconnmgr.* TO %s@'%%'", (name,))
        for name in NAMES:
            conns.append(MySQLdb.connect(**mariadb.connect_kwargs(user=name, password="pw")))
        yield conns
    finally:
        for conn in conns:
            conn.close()
        with admin.cursor() as cur:
            for name in created:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
        admin.close()


@pytest.mark.parametrize(
    "args",
    [("--action=status",), ("--action=close-idle", "--idle-for=0", "--dry-run")],
    ids=["status", "close-idle plan"],
)
def test_processlist_users_are_shown_literally(
    mariadb: MariaDBServer, hostile_accounts: list[MySQLdb.Connection], args: tuple[str, ...]
) -> None:
    code, raw = on_terminal("db_connections", *args, database_url=mariadb.url)
    shown = assert_clean(raw)
    assert code == 0, shown
    for name in NAMES:
        assert escape_controls(name) in shown, f"{name!r}:\n{shown}"
    assert_tables_intact(shown)
