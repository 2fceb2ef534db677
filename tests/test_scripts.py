"""scripts/test and scripts/demo when a supported Python is missing (no virtualenv is built)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NO_PYTHON = {"DBCONNMGR_PYTHON_3_11": "", "DBCONNMGR_PYTHON_3_12": ""}


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip


def test_a_missing_python_is_skipped_and_named_and_nothing_ran_fails() -> None:
    out = run(["scripts/test", "--stack", "py312-dj6-pg18"], CI="", **NO_PYTHON)
    assert out.returncode == 1
    assert "==> skipping py312-dj6-pg18: no Python 3.12 found" in out.stderr
    assert "skipped (Python not installed): py312-dj6-pg18" in out.stderr
    assert "FAILED: no stack ran" in out.stderr
    assert "Traceback" not in out.stderr


def test_under_ci_a_skipped_stack_is_a_failure() -> None:
    out = run(["scripts/test"], CI="true", **NO_PYTHON)
    assert out.returncode == 1
    assert "FAILED: CI=true and stacks were skipped: py311-dj52-pg15 py312-dj6-pg18" in out.stderr


def test_unknown_stack_is_one_line() -> None:
    out = run(["scripts/test", "--stack", "py39-dj32-pg9"])
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: unknown stack 'py39-dj32-pg9' "
        "(known: py311-dj52-pg15 py312-dj6-pg18 py312-dj6-mariadb)"
    )


def test_demo_without_any_supported_python_is_one_line() -> None:
    out = run(["scripts/demo"], **NO_PYTHON)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: no supported Python found "
        "(stacks: py311-dj52-pg15 py312-dj6-pg18 py312-dj6-mariadb); "
        "install Python 3.11 or 3.12"
    )
