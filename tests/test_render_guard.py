"""Data reaches rich only through render.literal(): checked in the source of every surface.

The hostile-name tests (tests/test_literal_names.py) run each surface; this guard makes the
rule hold for code those runs do not reach: a new column or panel that hands rich a ``str``
built from data fails here, before a name ever reaches a terminal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rich.text import Text

import dbconnmgr
from dbconnmgr.render import DataTable, literal

pytestmark = pytest.mark.engine_neutral

PACKAGE = Path(dbconnmgr.__file__).parent
#: Every module that prints rich renderables.
SURFACES = sorted(
    [
        PACKAGE / "render.py",
        PACKAGE / "live_view.py",
        PACKAGE / "load_view.py",
        *(PACKAGE / "cli").glob("*.py"),
    ]
)

#: Calls that make a ``str``: not a cell.
_STR_MAKERS = {"str", "repr", "format", "join", "describe", "summary", "format_seconds"}


def _is_str_expression(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _is_str_expression(node.left) or _is_str_expression(node.right)
    if isinstance(node, ast.IfExp):
        return _is_str_expression(node.body) or _is_str_expression(node.orelse)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in _STR_MAKERS
    return False


def _function_of(tree: ast.Module) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.ClassDef):
            for node in ast.walk(fn):
                owner.setdefault(node, fn.name)  # the outermost definition
    return owner


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    owner = _function_of(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.name}:{node.lineno}"
        func = node.func
        dotted = ast.unparse(func)
        inside = owner.get(node, "")
        if dotted in {"Table", "Table.grid", "Console"}:
            found.append(f"{where}: {dotted}(): build tables with Renderer.table/grid, DataTable")
        elif dotted == "Text.assemble" and inside != "DataTable":
            found.append(f"{where}: Text.assemble(): use render.assemble (escapes each part)")
        elif dotted == "Text" and inside not in {"literal", "assemble"}:
            if node.args and not (
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            ):
                found.append(f"{where}: Text({ast.unparse(node.args[0])}): use render.literal()")
        elif isinstance(func, ast.Attribute) and func.attr == "add_row":
            for arg in node.args:
                if _is_str_expression(arg):
                    found.append(f"{where}: add_row({ast.unparse(arg)}): a str cell, use literal()")
        elif dotted.endswith("console.print"):
            for arg in node.args:
                if _is_str_expression(arg):
                    found.append(f"{where}: console.print({ast.unparse(arg)}): use literal()")
    return found


def test_surfaces_hand_rich_no_str_built_from_data() -> None:
    assert len(SURFACES) > 5
    problems = [problem for path in SURFACES for problem in _violations(path)]
    assert problems == []


def test_the_guard_catches_a_raw_cell(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def render(table, conn, console):\n"
        "    table.add_row(conn.user, f'{conn.application_name}', str(conn.pid))\n"
        "    console.print(f'[bold]{conn.user}')\n"
        "    return Text(conn.user)\n"
    )
    assert len(_violations(bad)) == 4


def test_a_data_table_refuses_str_cells_and_literal_escapes() -> None:
    table = DataTable("name")
    with pytest.raises(TypeError, match="literal"):
        table.add_row("[bold]x")
    cell = literal("[link=http://evil.invalid]x[/link]\x1b[2J\n")
    assert isinstance(cell, Text)
    assert cell.plain == "[link=http://evil.invalid]x[/link]\\x1b[2J\\n"
    assert cell.spans == []
