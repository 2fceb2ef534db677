"""The pure core imports without Django's settings, django.db or django-environ."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

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
