"""The newcomer's path, as README.md tells it, from a built wheel (CI's last step).

1. Build the sdist and the wheel (``python -m build``); the wheel and the sdist carry
   LICENSE, the sdist no test suite.
2. Install the wheel (not editable) into a fresh virtualenv, with the ``postgresql-binary``
   extra.
3. ``django-admin startproject``, then append README.md's blocks marked
   ``<!-- newcomer: settings.py -->`` and ``<!-- newcomer: urls.py -->`` as written: a README
   whose snippet stops working fails here.
4. With ``DATABASE_URL`` unset, ``manage.py check`` ends in one line naming it (exit != 0).
5. Against a throwaway PostgreSQL server (devtools/pgserver.py): ``check``, ``migrate``,
   ``db_connections --action=status --format=json``, ``--action=health``, then a
   ``runserver``: a superuser logs in, ``/dbconnmgr/health/`` and the admin page answer.

Run by the stack's python (it needs ``build`` and the devtools):
``.venv-py311-dj52-pg15/bin/python scripts/newcomer.py``. Exits non-zero naming the step
that failed.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.pgserver import PgServer, free_port  # noqa: E402

MARKER = re.compile(r"<!-- newcomer: (\S+) -->\s*```python\n(.*?)```", re.DOTALL)
PASSWORD = "newcomer-password-1"


class StepFailed(RuntimeError):
    """One step of the path failed; the message says which and why."""


def step(title: str) -> None:
    print(f"==> newcomer: {title}", flush=True)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command; a non-zero exit is a StepFailed with its output."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=900, cwd=cwd,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode != 0:
        raise StepFailed(
            f"{' '.join(map(str, args))} exited {done.returncode}\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def readme_snippets() -> dict[str, str]:
    """README.md's marked python blocks, by the file they go to."""
    found = {name: code for name, code in MARKER.findall((ROOT / "README.md").read_text())}
    if set(found) != {"settings.py", "urls.py"}:
        raise StepFailed(f"README.md: marked blocks for settings.py and urls.py, got {found}")
    return found


def build(dist: Path) -> tuple[Path, Path]:
    step("python -m build (sdist and wheel)")
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("dbconnmgr-*.whl")
    (sdist,) = dist.glob("dbconnmgr-*.tar.gz")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise StepFailed(f"{wheel.name} carries no LICENSE")
    for data in ("dbconnmgr/py.typed", "dbconnmgr/templates/admin/dbconnmgr/connections.html"):
        if data not in names:
            raise StepFailed(f"{wheel.name} lacks {data}")
    with tarfile.open(sdist) as tf:
        members = [m.split("/", 1)[-1] for m in tf.getnames()]
    if "LICENSE" not in members:
        raise StepFailed(f"{sdist.name} carries no LICENSE")
    if any(m.startswith("tests/") for m in members):
        raise StepFailed(f"{sdist.name} ships tests/ without what runs them")
    print(f"    {wheel.name}, {sdist.name}", flush=True)
    return wheel, sdist


def fresh_project(work: Path, wheel: Path) -> tuple[Path, Path]:
    step("fresh virtualenv, the wheel installed (not editable), django-admin startproject")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[postgresql-binary]")
    # outside the clone: the installed package, not the checkout's, is what imports
    where = run(python, "-c", "import dbconnmgr; print(dbconnmgr.__file__)", cwd=work).strip()
    if not where.startswith(str(venv)):
        raise StepFailed(f"dbconnmgr imported from {where}, not from the fresh virtualenv")
    project = work / "project"
    project.mkdir()
    run(venv / "bin" / "django-admin", "startproject", "mysite", project)
    for name, code in readme_snippets().items():
        with (project / "mysite" / name).open("a") as target:
            target.write("\n# --- pasted from README.md ---\n" + code)
    return python, project


def manage(
    python: Path, project: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    print(f"    $ python manage.py {' '.join(args)}", flush=True)
    done = subprocess.run(
        [str(python), "manage.py", *args], cwd=project, capture_output=True, text=True,
        env=env, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if ok and done.returncode != 0:
        raise StepFailed(f"manage.py {' '.join(args)} exited {done.returncode}\n{done.stderr}")
    return done


def clean_env() -> dict[str, str]:
    """The machine's environment without this repository's own variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DBCONNMGR_", "CONN_", "DJANGO_", "PYTHON", "VIRTUAL_ENV"))
        and k != "DATABASE_URL"
    }


def unset_url(python: Path, project: Path) -> None:
    step("DATABASE_URL unset: one line naming it, exit != 0")
    for args in (("check",), ("db_connections", "--action=status")):
        done = manage(python, project, clean_env(), *args, ok=False)
        lines = done.stderr.strip().splitlines()
        if done.returncode == 0 or len(lines) != 1 or "DATABASE_URL" not in lines[0]:
            raise StepFailed(
                f"manage.py {' '.join(args)} without DATABASE_URL: exit {done.returncode}, "
                f"stderr:\n{done.stderr}"
            )
        print(f"    exit {done.returncode}: {lines[0]}", flush=True)


def against_server(python: Path, project: Path, url: str) -> None:
    env = clean_env() | {"DATABASE_URL": url}
    step("check, migrate, status --format=json, health")
    checked = manage(python, project, env, "check")
    if "dbconnmgr." in checked.stdout + checked.stderr:  # W016: no handler for the audit...
        raise StepFailed(f"README's settings draw dbconnmgr's checks:\n{checked.stderr}")
    manage(python, project, env, "migrate", "--noinput")
    status = json.loads(
        manage(python, project, env, "db_connections", "--action=status", "--format=json").stdout
    )
    if not isinstance(status, dict) or "total_connections" not in json.dumps(status):
        raise StepFailed(f"status --format=json: unexpected document {status!r:.300}")
    health = manage(python, project, env, "db_connections", "--action=health", ok=False)
    if health.returncode not in (0, 1):  # a fresh throwaway server: ok (a warning at worst)
        raise StepFailed(f"--action=health exited {health.returncode}\n{health.stdout}")
    print(f"    health exit {health.returncode}", flush=True)

    step("runserver: superuser login, /dbconnmgr/health/, the admin page")
    manage(
        python, project,
        env | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        "createsuperuser", "--noinput", "--username=admin", "--email=admin@example.invalid",
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [str(python), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        web(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def web(base: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    deadline = time.monotonic() + 60
    while True:
        try:
            login_page = opener.open(f"{base}/admin/login/", timeout=10).read().decode()
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise StepFailed("runserver did not answer within 60 s") from None
            time.sleep(0.5)
    try:
        opener.open(f"{base}/dbconnmgr/health/", timeout=30)
        raise StepFailed("/dbconnmgr/health/ answered an anonymous client")
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise StepFailed(f"/dbconnmgr/health/ anonymous: {exc.code}, expected 401") from None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
    if token is None:
        raise StepFailed("the admin login page has no CSRF token")
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": "admin",
            "password": PASSWORD,
            "next": "/admin/",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"}
    )
    opener.open(request, timeout=30)
    if not any(c.name == "sessionid" for c in jar):
        raise StepFailed("the superuser could not log in to the admin")
    try:
        with opener.open(f"{base}/dbconnmgr/health/", timeout=60) as answer:
            code, document = answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503: critical, still a health document
        code, document = exc.code, json.loads(exc.read())
    if code not in (200, 503) or "status" not in document:
        raise StepFailed(f"/dbconnmgr/health/: {code} {document!r:.300}")
    print(f"    /dbconnmgr/health/: {code}, status {document['status']}", flush=True)
    with opener.open(f"{base}/admin/dbconnmgr/connections/", timeout=60) as answer:
        page = answer.read().decode()
        if answer.status != 200 or "Connections" not in page:
            raise StepFailed(f"/admin/dbconnmgr/connections/: {answer.status}")
    print("    /admin/dbconnmgr/connections/: 200", flush=True)


def main() -> int:
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="dbconnmgr-newcomer-"))
    try:
        wheel, _ = build(work / "dist")
        python, project = fresh_project(work, wheel)
        unset_url(python, project)
        step("a throwaway PostgreSQL server")
        server = PgServer(max_connections=40).start()
        try:
            against_server(python, project, server.url)
        finally:
            server.stop()
    except StepFailed as exc:
        print(f"newcomer path FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"==> newcomer path passed in {time.monotonic() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
