"""The pure core imports without Django's settings, django.db or django-environ."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dbconnmgr.core

pytestmark = pytest.mark.engine_neutral

#: Every module under dbconnmgr/core/ (subpackages included): a new one is checked at once.
CORE = (
    "dbconnmgr.core",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(dbconnmgr.core.__path__, prefix="dbconnmgr.core.")
    ),
)


def test_every_core_module_is_checked():
    assert {"dbconnmgr.core.pooler", "dbconnmgr.core.documents", "dbconnmgr.core.snapshot"} <= set(
        CORE
    )


def test_core_modules_import_without_django_or_environ():
    code = (
        "import sys\n"
        f"for name in {CORE!r}: __import__(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'environ')"
        " or m == 'dbconnmgr.database_settings' or m == 'dbconnmgr.app_settings')\n"
        "print(','.join(loaded))\n"
    )
    env = {"PATH": "", "PYTHONPATH": "."}  # no DJANGO_SETTINGS_MODULE either
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


#: What a core module may import from the package: the core itself and the exceptions.
CORE_MAY_IMPORT = ("dbconnmgr.core", "dbconnmgr.exceptions")


def _imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module ``source`` imports, at any depth (function-local imports included), with
    relative imports resolved against ``package``, the module's own package."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # "from dbconnmgr import payloads" imports dbconnmgr.payloads
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _reaches_out_of_core(module: str) -> bool:
    if module != "dbconnmgr" and not module.startswith("dbconnmgr."):
        return False
    return not any(module == ok or module.startswith(f"{ok}.") for ok in CORE_MAY_IMPORT)


def test_core_imports_nothing_of_the_package_outside_core_not_even_lazily():
    """The core may not reach up to the shell (payloads, backends, settings...), not even
    inside a function body where the import-time check above cannot see it."""
    root = Path(dbconnmgr.core.__path__[0])
    sources = sorted(root.rglob("*.py"))
    assert root / "termination.py" in sources
    offenders = [
        f"{path.relative_to(root.parents[1])}:{line}: {module}"
        for path in sources
        for line, module in _imported_modules(
            path.read_text(encoding="utf-8"),
            ".".join(path.relative_to(root.parents[1]).parts[:-1]),
        )
        if _reaches_out_of_core(module)
    ]
    assert offenders == []


def test_the_core_import_scan_sees_function_local_and_relative_imports():
    source = (
        "from dbconnmgr.core.figures import Figures\n"
        "from . import snapshot\n"
        "from dbconnmgr.exceptions import ServerUnavailable\n"
        "def as_dict():\n"
        "    from dbconnmgr.payloads import status_payload\n"
        "    from .. import backends\n"
        "    import dbconnmgr.health\n"
        "    importlib.import_module('dbconnmgr.metrics')\n"
    )
    reached = {m for _, m in _imported_modules(source, "dbconnmgr.core") if _reaches_out_of_core(m)}
    assert reached == {
        "dbconnmgr.payloads.status_payload",
        "dbconnmgr.backends",
        "dbconnmgr.health",
        "dbconnmgr.metrics",
    }


def test_evaluate_uses_only_the_thresholds_it_is_given(settings):
    from dbconnmgr.core.health import DEFAULT_THRESHOLDS, resolve_thresholds

    settings.DBCONNMGR = {"THRESHOLDS": {"UTILIZATION_WARNING": 5, "UTILIZATION_CRITICAL": 6}}
    assert resolve_thresholds(None).as_dict() == DEFAULT_THRESHOLDS
    assert resolve_thresholds({"UTILIZATION_WARNING": 50}).utilization_warning == 50


def test_backends_declare_capabilities():
    from dbconnmgr.backends import BACKENDS
    from dbconnmgr.core.capabilities import Capabilities

    for vendor, backend in BACKENDS.items():
        assert isinstance(backend.capabilities, Capabilities), vendor
        assert backend.capabilities.display_name
    postgresql = BACKENDS["postgresql"].capabilities
    assert postgresql.can_terminate_atomically and postgresql.can_cancel
