"""Every JSON document is declared once (dbconnmgr.core.documents) and listed in docs/json.md.

Fails when a declared key is missing from the docs, the docs list a key that is not declared,
or a document built by a real run against the test server carries an undeclared key or
lacks a declared one.
"""

from __future__ import annotations

import contextlib
import json
import re
import types
import typing
from io import StringIO
from pathlib import Path
from typing import Any, NotRequired, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from django.core.management import call_command

from dbconnmgr import check_connection_health
from dbconnmgr.core import documents
from dbconnmgr.core.documents import DOCUMENTS, SCHEMAS
from devtools.pgserver import free_port
from tests.conftest import Sessions, database_alias

DOCS = Path(__file__).resolve().parent.parent / "docs" / "json.md"


def typeddicts(root: type) -> dict[str, type]:
    """``root`` and every TypedDict reachable from its keys, by class name."""
    found: dict[str, type] = {}

    def walk(tp: Any) -> None:
        if is_typeddict(tp):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for hint in get_type_hints(tp, vars(documents)).values():
                walk(hint)
        for arg in get_args(tp):
            walk(arg)

    walk(root)
    return found


def documented() -> dict[str, set[str]]:
    """Keys listed in docs/json.md, by the TypedDict named in each section's heading."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in DOCS.read_text().splitlines():
        if line.startswith("#"):
            match = re.search(r"\(`(\w+Doc)`\)\s*$", line)
            current = sections.setdefault(match[1], set()) if match else None
        elif current is not None and (cell := re.match(r"\|\s*`([\w.]+)`\s*\|", line)):
            current.add(cell[1])
    return sections


def all_declared() -> dict[str, type]:
    result: dict[str, type] = {}
    for root in DOCUMENTS.values():
        result.update(typeddicts(root))
    return result


def test_every_declared_key_is_documented_and_nothing_else() -> None:
    docs = documented()
    for name, cls in all_declared().items():
        assert name in docs, f"docs/json.md has no section for {name}"
        declared = set(cls.__annotations__)
        assert declared - docs[name] == set(), f"{name}: undocumented keys"
        assert docs[name] - declared == set(), f"{name}: documented keys that do not exist"
    assert set(docs) <= set(all_declared()), "docs/json.md documents an unknown TypedDict"


def check(value: Any, tp: Any, where: str) -> None:
    """Fail unless ``value`` has exactly the keys its TypedDict declares, recursively."""
    origin = get_origin(tp)
    if origin is NotRequired:
        check(value, get_args(tp)[0], where)
    elif is_typeddict(tp):
        assert isinstance(value, dict), f"{where}: expected an object"
        hints = get_type_hints(tp, vars(documents), include_extras=True)
        required = {k for k, h in hints.items() if get_origin(h) is not NotRequired}
        assert set(value) - set(hints) == set(), f"{where}: undeclared keys"
        assert required - set(value) == set(), f"{where}: missing keys"
        for key, hint in hints.items():
            if key in value:
                check(value[key], hint, f"{where}.{key}")
    elif origin in (types.UnionType, typing.Union):
        if value is not None:
            options = [a for a in get_args(tp) if a is not type(None)]
            check(value, options[0], where)
    elif origin is list:
        assert isinstance(value, list), f"{where}: expected a list"
        for i, item in enumerate(value):
            check(item, get_args(tp)[0], f"{where}[{i}]")


def run(*args: str) -> Any:
    out = StringIO()
    with contextlib.suppress(SystemExit):
        call_command("db_connections", *args, "--format=json", stdout=out)
    return json.loads(out.getvalue().splitlines()[0] if "monitor" in args[0] else out.getvalue())


@pytest.mark.django_db
def test_documents_of_real_runs_match_their_declaration(sessions: Sessions) -> None:
    sessions.open("t-doc", "idle in transaction")
    sessions.open("t-doc", "active")
    built = {
        "status": run("--action=status"),
        "health": check_connection_health("default"),
        "monitor": run("--action=monitor", "--count=1"),
        "peak": run("--action=peak"),
        "budget": run("--action=budget", "--service=web=2x4"),
        "termination": run("--action=close-idle", "--idle-for=0", "--application=t-doc",
                           "--state=idle-in-transaction", "--dry-run", "--noinput"),
    }  # fmt: skip
    assert set(built) == set(DOCUMENTS)
    for name, document in built.items():
        assert document["schema"] == SCHEMAS[name]
        check(json.loads(json.dumps(document, default=str)), DOCUMENTS[name], name)
    health = built["health"]
    assert health["postgresql_info"] == health["server_info"]
    # budget/2: reserved_connections means the setting everywhere; the budget's sum of both
    # reserved settings is reserved_slots
    status_server, budget_server = built["status"]["server"], built["budget"]["server"]
    assert built["budget"]["schema"] == "dbconnmgr.budget/2"
    assert "reserved_connections" not in budget_server
    assert budget_server["reserved_slots"] == (
        status_server["superuser_reserved_connections"] + status_server["reserved_connections"]
    )
    assert built["termination"]["selected"], "the dry run selected the idle transaction"


def test_unreachable_health_document_matches_its_declaration() -> None:
    with database_alias("gone", f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"):
        health = check_connection_health("gone")
    check(health, DOCUMENTS["health"], "health")
    assert health["server_info"]["reachable"] is False
    assert health["postgresql_info"] == health["server_info"]
