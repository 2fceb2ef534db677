"""Install the Debian packages a test server needs, when they are missing.

The project's own scripts and test fixtures call :func:`ensure_debian_packages` so that a
fresh machine and CI need nothing done by hand. As root it runs ``apt-get update`` (once per
process) and ``apt-get install``; as another user it installs nothing and raises
:class:`MissingPackages` with the exact command to run.

Usage::

    ensure_debian_packages({"pgbouncer": "pgbouncer"})   # binary name -> package name
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping

__all__ = ["MissingPackages", "ensure_debian_packages", "find_binary"]

#: Folders where Debian's packages put server binaries that are not on a user's PATH.
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

_updated = False


class MissingPackages(RuntimeError):
    """Debian packages a test server needs are missing and could not be installed."""


def find_binary(name: str, extra_dirs: Iterable[str] = SBIN_DIRS) -> str | None:
    """The path of executable ``name`` on PATH or in ``extra_dirs`` (None when absent)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_debian_packages(binaries: Mapping[str, str], *, quiet: bool = False) -> None:
    """Make sure every binary in ``binaries`` (binary name -> Debian package) exists.

    Raises:
        MissingPackages: some are missing and this process is not root, or apt-get failed;
            the message holds the command to run.
    """
    global _updated
    missing = sorted({package for binary, package in binaries.items() if not find_binary(binary)})
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    hint = "apt-get update && " + " ".join(command)
    if os.geteuid() != 0:
        raise MissingPackages(
            f"missing Debian packages {', '.join(missing)}: run as root: {hint} "
            "(or with sudo), then run this again"
        )
    if shutil.which("apt-get") is None:
        raise MissingPackages(f"missing packages {', '.join(missing)} and no apt-get here")
    if not quiet:
        print(f"==> installing Debian packages: {' '.join(missing)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (a parallel test run, unattended-upgrades) may hold the lock: wait.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    if not _updated:
        _run(["apt-get", *wait, "update", "-qq"], env, hint)
        _updated = True
    _run([command[0], *wait, *command[1:]], env, hint)
    still = sorted({p for b, p in binaries.items() if not find_binary(b)})
    if still:
        raise MissingPackages(f"installed {', '.join(missing)} but still missing: {still}")


def _run(command: list[str], env: Mapping[str, str], hint: str) -> None:
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise MissingPackages(f"{' '.join(command[:2])} failed ({tail}); try by hand: {hint}")


if __name__ == "__main__":  # python -m devtools.system_packages BINARY=PACKAGE ...
    try:
        ensure_debian_packages(dict(arg.split("=", 1) for arg in sys.argv[1:]))
    except MissingPackages as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
