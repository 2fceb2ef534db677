"""The docs say what the program does: their JSON examples, command lines and Python names are
checked against the code.

- Every JSON example in a fenced block parses. One that names its schema (``"schema":
  "dbconnmgr.status/1"``) carries exactly the keys of that document (core/documents.py),
  recursively. An example that names no schema may declare its document in an HTML comment
  on the line before the fence: ``<!-- json: PeakDoc -->``, or ``<!-- json: StatusDoc
  excerpt -->`` for an excerpt (no key the document lacks; some may be left out).
- Every ``manage.py db_connections`` command line (fenced, or inline in backticks) parses
  with the command's real parser (cli/options.py composes it), and one whose output shows a
  usage error (``db_connections: error:``) is refused by it.
- Every name of dbconnmgr a Python snippet imports or uses (``from dbconnmgr import X``,
  ``dbconnmgr.core.budget.parse_service``) exists.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from django.core.management.base import CommandError

from dbconnmgr.cli import registry
from dbconnmgr.cli.options import action_named_in
from dbconnmgr.core import documents
from dbconnmgr.core.documents import DOCUMENTS, SCHEMAS
from dbconnmgr.management.commands.db_connections import Command
from tests.test_documents import check, typeddicts

pytestmark = pytest.mark.engine_neutral

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Fenced blocks in these languages hold no JSON example.
NOT_JSON = {"python", "bash", "sh", "yaml", "yml", "toml", "ini", "html", "sql", "promql"}
SHELL_OPERATORS = {";", "|", "||", "&&", ">", ">>", "2>&1", "2>/dev/null", "&"}


@dataclass(frozen=True)
class Block:
    """One fenced block of a docs page."""

    page: str
    line: int  # of the opening fence
    lang: str
    body: str
    marker: str | None  # the ``<!-- json: ... -->`` on the line before

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def blocks() -> Iterator[Block]:
    for path in sorted(DOCS.glob("*.md")):
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            fence = re.match(r"^(\s*)```(\w*)", lines[i])
            if not fence:
                i += 1
                continue
            start, lang = i, fence[2].lower()
            i += 1
            body = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            i += 1
            before = lines[start - 1].strip() if start else ""
            marker = re.fullmatch(r"<!--\s*json:\s*(.+?)\s*-->", before)
            yield Block(path.name, start + 1, lang, "\n".join(body), marker[1] if marker else None)


# -- JSON ----------------------------------------------------------------------------------------
def json_values(block: Block) -> Iterator[tuple[int, Any]]:
    """Each JSON object of the block, with its line, from lines that start one."""
    text = block.body
    decoder = json.JSONDecoder()
    offset = 0
    lines = text.splitlines(keepends=True)
    position = 0
    starts = []
    for number, line in enumerate(lines):
        if line.lstrip().startswith("{"):
            starts.append((number, position + len(line) - len(line.lstrip())))
        position += len(line)
    for number, start in starts:
        if start < offset:
            continue  # inside the previous object
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"{block.where}+{number + 1}: a JSON example that does not parse ({exc})"
            ) from None
        offset = end
        yield number, value


def json_examples() -> list[tuple[Block, int, Any]]:
    found = []
    for block in blocks():
        if block.lang in NOT_JSON:
            continue
        for number, value in json_values(block):
            found.append((block, number, value))
    return found


def declared(block: Block, value: Any) -> tuple[type, bool] | None:
    """The TypedDict an example shows and whether it is an excerpt; None: none declared."""
    by_schema = {schema: DOCUMENTS[name] for name, schema in SCHEMAS.items()}
    every = {}
    for root in DOCUMENTS.values():
        every.update(typeddicts(root))
    if block.marker is not None:
        name, _, rest = block.marker.partition(" ")
        assert name in every, f"{block.where}: <!-- json: {name} --> names no document"
        return every[name], rest.strip() == "excerpt"
    schema = value.get("schema") if isinstance(value, dict) else None
    if schema is None:
        return None
    assert schema in by_schema, f"{block.where}: unknown schema {schema!r}"
    return by_schema[schema], False


def check_excerpt(value: Any, tp: Any, where: str) -> None:
    """No key ``tp`` does not declare, recursively (keys may be left out, lists cut)."""
    origin = get_origin(tp)
    if origin is NotRequired:
        check_excerpt(value, get_args(tp)[0], where)
    elif is_typeddict(tp):
        assert isinstance(value, dict), f"{where}: expected an object"
        hints = get_type_hints(tp, vars(documents), include_extras=True)
        assert set(value) - set(hints) == set(), f"{where}: keys the document does not have"
        for key, item in value.items():
            check_excerpt(item, hints[key], f"{where}.{key}")
    elif origin is not None and get_args(tp) and value is not None:
        options = [a for a in get_args(tp) if a is not type(None)]
        if origin is list:
            for i, item in enumerate(value):
                check_excerpt(item, options[0], f"{where}[{i}]")
        elif origin is not dict:
            check_excerpt(value, options[0], where)


def test_every_json_example_parses_and_has_the_keys_of_its_document() -> None:
    examples = json_examples()
    assert len(examples) >= 10  # the extraction finds them
    checked = 0
    for block, number, value in examples:
        document = declared(block, value)
        if document is None:
            continue
        tp, excerpt = document
        where = f"{block.where}+{number + 1}"
        (check_excerpt if excerpt else check)(value, tp, where)
        checked += 1
    assert checked >= 8


def test_an_example_with_a_wrong_key_is_caught() -> None:
    """The check can fail: json.md's old ``database_limit`` in a status document."""
    block = Block("x.md", 1, "json", "", "StatusDoc excerpt")
    check_excerpt({"alias": "default"}, DOCUMENTS["status"], "ok")
    with pytest.raises(AssertionError, match="keys the document does not have"):
        check_excerpt({"database_limit": 3}, DOCUMENTS["status"], block.where)


# -- command lines -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandLine:
    where: str
    argv: list[str]
    refused: bool  # the docs show a usage error for it


def _argv(text: str) -> list[str] | None:
    """The arguments after ``db_connections``, up to the first shell operator."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # --service=web=4x8:25 stays one word
    try:
        words = list(lexer)  # "# exit 3" comments and "; echo" are left out or split off
    except ValueError:
        return None
    if "db_connections" not in words:
        return None
    args = []
    for word in words[words.index("db_connections") + 1 :]:
        if word in SHELL_OPERATORS or word.startswith(("2>", ">", "|")):
            break
        args.append(word)
    return args


def command_lines() -> list[CommandLine]:
    found = []
    for block in blocks():
        if block.lang == "python":
            continue
        lines = block.body.splitlines()
        for i, line in enumerate(lines):
            text = line.strip()
            if "manage.py db_connections" not in text:
                continue
            if not text.startswith(("$", "python ", "./manage.py")):
                continue  # output (a benchmark's table), a comment, a pasted log line
            j = i
            while text.endswith("\\") and j + 1 < len(lines):
                j += 1
                text = text[:-1] + " " + lines[j].strip()
            if re.search(r"\s\[--|\.\.\.|=[A-Z]{3,}\b", text) or (
                j + 1 < len(lines) and lines[j + 1].lstrip().startswith("[")
            ):
                continue  # a synopsis (``[--headroom N]``, ``=SECONDS``), not a command line
            argv = _argv(text.lstrip("$ "))
            if argv is None:
                continue
            output = []
            for after in lines[j + 1 :]:
                if after.strip().startswith(("$", "python ")):
                    break
                output.append(after)
            refused = any("db_connections: error:" in o for o in output)
            found.append(CommandLine(f"docs/{block.page}:{block.line + i + 1}", argv, refused))
    for path in sorted(DOCS.glob("*.md")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for span in re.findall(r"`([^`]*manage\.py db_connections[^`]*)`", line):
                if re.search(r"\[--|\.\.\.|=[A-Z]{3,}\b|<", span):
                    continue
                argv = _argv(span)
                if argv is not None:
                    found.append(CommandLine(f"docs/{path.name}:{number}", argv, False))
    return found


def parses(argv: list[str]) -> str | None:
    """None when the real parser accepts ``argv``, else its message."""
    command = Command()
    command._action = action_named_in(argv, registry())  # what run_from_argv() does
    parser = command.create_parser("manage.py", "db_connections")
    try:
        parser.parse_args(argv)
    except CommandError as exc:
        return str(exc)
    return None


def test_every_command_line_in_the_docs_parses_with_the_real_parser() -> None:
    found = command_lines()
    assert len(found) >= 40  # the extraction finds them
    wrong = []
    for line in found:
        error = parses(line.argv)
        if line.refused and error is None:
            wrong.append(f"{line.where}: shown refused, but parses: {shlex.join(line.argv)}")
        elif not line.refused and error is not None:
            wrong.append(f"{line.where}: {error}: {shlex.join(line.argv)}")
    assert wrong == []


def test_a_command_line_with_an_unknown_option_is_caught() -> None:
    assert parses(["--action=status", "--limit=3"]) is None
    assert parses(["--action=status", "--watch"]) is not None  # monitor's option
    assert parses(["--action=budget", "--service=web=4by8"]) is not None


# -- Python names --------------------------------------------------------------------------------
def _resolve(dotted: str) -> bool:
    """True when ``dotted`` (``dbconnmgr.core.budget.parse_service``) names something."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def python_names(source: str) -> Iterator[str]:
    """The dotted dbconnmgr names a snippet imports or uses."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dbconnmgr":
            for name in node.names:
                yield f"{node.module}.{name.name}"
                aliases[name.asname or name.name] = f"{node.module}.{name.name}"
        elif isinstance(node, ast.Import):
            for name in node.names:
                if name.name.split(".")[0] == "dbconnmgr":
                    yield name.name
                    aliases[name.asname or name.name.split(".")[0]] = (
                        name.name if name.asname else "dbconnmgr"
                    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in aliases:
                base = aliases[current.id]
                if base.split(".")[0] == "dbconnmgr" and _is_module(base):
                    yield ".".join([base, *reversed(chain)])


def _is_module(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def test_every_dbconnmgr_name_in_a_python_snippet_exists() -> None:
    missing = []
    snippets = 0
    for block in blocks():
        if block.lang != "python":
            continue
        snippets += 1
        try:
            names = list(python_names(block.body))
        except SyntaxError as exc:
            missing.append(f"{block.where}: the snippet is not Python ({exc.msg})")
            continue
        missing += [f"{block.where}: {name}" for name in names if not _resolve(name)]
    for path in sorted(DOCS.glob("*.md")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(r"`(dbconnmgr(?:\.\w+)+)\(", line):
                if not _resolve(name):
                    missing.append(f"docs/{path.name}:{number}: {name}")
    assert snippets >= 10
    assert missing == []


def test_a_name_that_does_not_exist_is_caught() -> None:
    names = list(python_names("from dbconnmgr import take_snapshot\nimport dbconnmgr\n"
                              "dbconnmgr.core.budget.no_such_thing()"))  # fmt: skip
    assert "dbconnmgr.take_snapshot" in names
    assert [n for n in names if not _resolve(n)] == ["dbconnmgr.core.budget.no_such_thing"]
