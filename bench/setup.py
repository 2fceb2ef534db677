"""The benchmarks' own environments: ``python -m bench --setup`` (and on first need).

Some benchmarks need packages the project's extras do not install, and two of those cannot
share an environment: pg-activity (the terminal tool) and django-pgactivity both install a
top-level package named ``pgactivity``, so whichever is installed second replaces the
other. Each environment below is therefore a virtualenv of its own under ``.venv-bench/``
(git-ignored, like every ``.venv*``), built from the interpreter that runs the bench, with
the running Django version pinned so that a benchmark measures the stack it was started on:

- ``bench``: the project (editable, extras ``dev`` and ``prometheus``), gunicorn (``load``,
  ``load_pgbouncer``, ``scrape``) and django-pgactivity (``close_idle``'s baseline).
- ``pg_activity``: pg-activity alone, for a benchmark that runs the tool.

An environment is rebuilt when what it should hold changed (``pyproject.toml``, the list
below or the pinned Django): a stamp file in it records what was installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".venv-bench"


def _django_pin() -> list[str]:
    """``django==X.Y.Z`` of the running interpreter (nothing when Django is absent)."""
    try:
        import django
    except ImportError:
        return []
    return [f"django=={django.__version__}"]


def requirements(name: str) -> list[str]:
    """What pip installs into environment ``name``.

    Raises:
        KeyError: no environment of that name.
    """
    if name == "bench":
        return ["-e", f"{ROOT}[dev,prometheus]", *_django_pin(), "gunicorn", "django-pgactivity"]
    if name == "pg_activity":
        return ["pg-activity", "psycopg[binary]"]
    raise KeyError(f"no bench environment {name!r} (have: bench, pg_activity)")


ENVIRONMENTS = ("bench", "pg_activity")


def python_of(name: str) -> Path:
    """The interpreter of environment ``name`` (it may not be built yet)."""
    return HOME / name / "bin" / "python"


def _stamp(name: str) -> str:
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    what = "\n".join([sys.version.split()[0], *requirements(name)]).encode() + pyproject
    return hashlib.sha1(what, usedforsecurity=False).hexdigest()[:16]


def is_current(name: str) -> bool:
    """True when environment ``name`` holds what it should."""
    stamp = HOME / name / ".installed"
    return python_of(name).exists() and stamp.exists() and stamp.read_text() == _stamp(name)


def ensure(name: str) -> Path:
    """Build or update environment ``name`` when needed; return its interpreter.

    Raises:
        SystemExit: pip failed (the log's tail is printed, the whole log kept in the
            environment's ``pip.log``).
    """
    target = HOME / name
    if is_current(name):
        return python_of(name)
    print(f"==> bench environment {target.relative_to(ROOT)}: installing (about a minute)")
    sys.stdout.flush()
    if not python_of(name).exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
    log = target / "pip.log"
    with log.open("w") as out:
        code = subprocess.call(
            [str(python_of(name)), "-m", "pip", "install", "--upgrade", *requirements(name)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    if code:
        tail = log.read_text().splitlines()[-20:]
        print("\n".join(tail))
        raise SystemExit(f"pip install into {target.relative_to(ROOT)} failed (log: {log})")
    (target / ".installed").write_text(_stamp(name))
    return python_of(name)


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` this interpreter cannot import (``a.b``: a missing ``a``
    counts as missing too)."""

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except ModuleNotFoundError:
            return True

    return [m for m in modules if absent(m)]


def running_in(name: str) -> bool:
    """True when this process runs in environment ``name``."""
    return Path(sys.prefix).resolve() == (HOME / name).resolve()


def main() -> int:
    """``python -m bench --setup``: build every environment; say how to use them."""
    for name in ENVIRONMENTS:
        ensure(name)
    print(f"bench environments ready under {HOME.relative_to(ROOT)}/: {', '.join(ENVIRONMENTS)}")
    print(
        "python -m bench runs a benchmark whose packages are missing here in "
        f"{(HOME / 'bench').relative_to(ROOT)} by itself"
    )
    return 0


__all__ = ["ENVIRONMENTS", "HOME", "ensure", "missing_modules", "python_of", "requirements"]

if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
