"""A new user's first hour: README's snippet in a fresh project, what database_config()
returns (the docs' dict is the real one), which variables it reads, and packaging."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from dbconnmgr.database_settings import (
    INSTRUMENTED_ENGINE,
    POOL_ON_FULL_KEY,
    DatabaseSettingsWarning,
    database_config,
)
from tests.conftest import ROOT

URL = "postgres://app:secret@db.internal:5432/shop"
DJANGO_ENGINE = "django.db.backends.postgresql"
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def fenced(text: str, after: str, lang: str) -> str:
    """The first ``lang`` fenced block after the text ``after``."""
    start = text.index(after)
    match = re.compile(rf"```{lang}\n(.*?)```", re.DOTALL).search(text, start)
    assert match, f"no ```{lang} block after {after!r}"
    return match.group(1)


# -- the docs' dict is what the helper returns ----------------------------------------------
def test_configuration_md_shows_exactly_what_database_config_returns() -> None:
    section = "## What it returns, exactly"
    env = dict(
        shlex.split(line)[0].split("=", 1)
        for line in fenced(CONFIGURATION, section, "bash").splitlines()
        if line.strip()
    )
    call = ast.parse(fenced(CONFIGURATION, section, "python").strip(), mode="eval").body
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "database_config"
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    documented = json.loads(fenced(CONFIGURATION, "<!-- database_config result -->", "json"))
    assert database_config(env=env, **keywords) == documented
    assert documented["ENGINE"] == DJANGO_ENGINE


# -- ENGINE: Django's unless asked --------------------------------------------------------
def test_django_engine_stays_unless_the_engine_is_asked_for() -> None:
    plain = database_config(env={"DATABASE_URL": URL})
    assert plain["ENGINE"] == DJANGO_ENGINE and POOL_ON_FULL_KEY not in plain
    asked = database_config(env={"DATABASE_URL": URL}, instrumented=True)
    assert (asked["ENGINE"], asked[POOL_ON_FULL_KEY]) == (INSTRUMENTED_ENGINE, "queue")
    by_variable = database_config(env={"DATABASE_URL": URL, "DB_INSTRUMENTED": "true"})
    assert by_variable["ENGINE"] == INSTRUMENTED_ENGINE
    gate = database_config(env={"DATABASE_URL": URL}, pool_on_full="reject")
    assert (gate["ENGINE"], gate[POOL_ON_FULL_KEY]) == (INSTRUMENTED_ENGINE, "reject")
    queue = database_config(env={"DATABASE_URL": URL}, pool_on_full="queue")
    assert queue["ENGINE"] == DJANGO_ENGINE and POOL_ON_FULL_KEY not in queue
    # an explicit ENGINE= is set last, as every upper-case keyword
    kept = database_config(env={"DATABASE_URL": URL}, instrumented=True, ENGINE=DJANGO_ENGINE)
    assert kept["ENGINE"] == DJANGO_ENGINE


@pytest.mark.parametrize(
    ("env", "keywords", "fragment"),
    [
        ({"DB_POOL_ON_FULL": "reject"}, {"instrumented": False}, "DB_POOL_ON_FULL=reject needs"),
        ({"DB_INSTRUMENTED": "maybe"}, {}, "DB_INSTRUMENTED must be true or false"),
        (
            {"DATABASE_URL": "mysql://u:p@h/db", "DB_INSTRUMENTED": "1"},
            {},
            "dbconnmgr's engine is for PostgreSQL",
        ),
    ],
)
def test_engine_requests_that_cannot_hold_are_refused(
    env: dict[str, str], keywords: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(fragment)):
        database_config(env={"DATABASE_URL": URL, **env}, **keywords)


# -- which variables are read: env_prefix -------------------------------------------------
def test_a_prefix_reads_its_own_names_and_ignores_the_generic_ones() -> None:
    env = {
        "DATABASE_URL": URL,
        "DB_MAX_CONNS": "99",
        "DB_POOL_MODE": "transaction",
        "DB_PROFILE": "prod",
        "CONN_MAX_AGE": "1",
        "DBCONNMGR_MAX_CONNS": "7",
        "DBCONNMGR_CONN_MAX_AGE": "120",
        "DBCONNMGR_APPLICATION_NAME": "web-eu",
        "DBCONNMGR_STATEMENT_TIMEOUT": "500",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing generic is even looked at
        db = database_config(env=env, service="web", env_prefix="DBCONNMGR_")
    assert db["OPTIONS"]["pool"]["max_size"] == 7
    assert db["OPTIONS"]["pool"]["max_lifetime"] == 120.0
    assert db["OPTIONS"]["application_name"] == "web-eu"
    assert "statement_timeout=500" in db["OPTIONS"]["options"]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DBCONNMGR_PROFILE": "prod"}, "unknown database profile 'prod' in DBCONNMGR_PROFILE"),
        ({"DBCONNMGR_POOL_SIZ": "3"}, "unknown pool setting DBCONNMGR_POOL_SIZ"),
        ({"DBCONNMGR_MAX_CONNS": "many"}, "DBCONNMGR_MAX_CONNS must be a whole number"),
        ({"DBCONNMGR_POOL": "false", "DBCONNMGR_POOL_ON_FULL": "reject"}, "DBCONNMGR_POOL is off"),
        ({"DBCONNMGR_MAX_OVERFLOW": "2"}, "needs DBCONNMGR_POOL_SIZE"),
    ],
)
def test_under_a_prefix_every_mistake_is_an_error_naming_the_variable(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(fragment)):
        database_config(env={"DATABASE_URL": URL, **env}, env_prefix="DBCONNMGR_")


def test_other_tools_generic_names_warn_and_never_break_settings_import() -> None:
    env = {"DATABASE_URL": URL, "DB_POOL_MODE": "transaction", "DB_PROFILE": "prod"}
    with pytest.warns(DatabaseSettingsWarning) as caught:
        db = database_config(env=env)
    messages = [str(w.message) for w in caught]
    assert any("ignored DB_POOL_MODE" in m for m in messages), messages
    assert any("DB_PROFILE='prod'" in m and "using 'production'" in m for m in messages)
    assert all('env_prefix="DBCONNMGR_"' in m for m in messages)
    assert caught[0].filename == __file__  # points at the settings.py line, not at dbconnmgr
    assert db["OPTIONS"]["pool"]["max_size"] == 25  # the default profile
    # a keyword is the project's own word: still an error
    with pytest.raises(ImproperlyConfigured, match="unknown database profile 'prod'"):
        database_config(env={"DATABASE_URL": URL}, profile="prod")


# -- README's snippet in a fresh startproject, through manage.py -------------------------
def readme_block(name: str) -> str:
    match = re.search(rf"<!-- newcomer: {re.escape(name)} -->\s*```python\n(.*?)```", README, re.S)
    assert match, f"README.md has no block marked newcomer: {name}"
    return match.group(1)


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``django-admin startproject`` with README's marked blocks appended as written."""
    where = tmp_path_factory.mktemp("fresh")
    admin = Path(sys.executable).with_name("django-admin")
    subprocess.run([str(admin), "startproject", "mysite", str(where)], check=True, timeout=60)
    for name in ("settings.py", "urls.py"):
        with (where / "mysite" / name).open("a") as target:
            target.write("\n" + readme_block(name))
    return where


def manage(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DBCONNMGR_", "CONN_", "DJANGO_")) and k != "DATABASE_URL"
    } | env
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=project, capture_output=True, text=True,
        env=environment, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "DATABASE_URL is not set"),
        ({"DATABASE_URL": "postgres://app:pw@db:port/shop"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": URL, "DBCONNMGR_MAX_CONNS": "many"}, "DBCONNMGR_MAX_CONNS must be"),
    ],
)
@pytest.mark.parametrize("command", [("check",), ("db_connections", "--action=health")])
def test_a_bad_setting_ends_any_command_in_one_line(
    fresh_project: Path, env: dict[str, str], fragment: str, command: tuple[str, ...]
) -> None:
    done = manage(fresh_project, *command, **env)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and fragment in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_readme_snippet_checks_clean_beside_other_tools_variables(fresh_project: Path) -> None:
    """As pasted, with the variables other tools set: no error, no warning, Django's ENGINE,
    the pool of 25 the README announces, the URLs and the audit logger in place."""
    done = manage(
        fresh_project, "shell", "-c",
        "from django.conf import settings; from django.urls import reverse; import json; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps([db['ENGINE'], db['OPTIONS']['pool']['max_size'], "
        "reverse('dbconnmgr:health'), settings.LOGGING['loggers']['dbconnmgr']['level']]))",
        DATABASE_URL=os.environ["DATABASE_URL"], DB_POOL_MODE="transaction", DB_PROFILE="prod",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout.strip().splitlines()[-1]), done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        DJANGO_ENGINE,
        25,
        "/dbconnmgr/health/",
        "INFO",
    ]
    assert "25 connections *per process*" in readme_block("settings.py")
    check = manage(fresh_project, "check", DATABASE_URL=os.environ["DATABASE_URL"])
    assert check.returncode == 0, check.stderr


# -- packaging ----------------------------------------------------------------------------
def test_readme_links_work_on_a_package_index_page() -> None:
    """PyPI renders README.md without the repository: a relative link there is dead."""
    links = re.findall(r"\]\(([^)]+)\)", README)
    assert all(link.startswith(("https://", "http://", "#")) for link in links), links


NO_POSTGRESQL = """
import importlib, pkgutil, sys
BLOCKED = ("psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c")
class Absent:
    # every finder as it is, except that the PostgreSQL packages are not installed
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, attr):
        return getattr(self.finder, attr)
sys.meta_path[:] = [Absent(f) for f in sys.meta_path]
import django
from django.conf import settings
from django.core.management import call_command
from dbconnmgr.database_settings import database_config
settings.configure(
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages", "dbconnmgr"],
    # the MariaDB alias's settings come from database_config(); the default alias is
    # sqlite so that `check` runs without mysqlclient on every stack
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
               "mariadb": database_config(env={"DATABASE_URL": "mysql://u:p@db/app"})},
    USE_TZ=True, SECRET_KEY="x",
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                "OPTIONS": {"context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages"]}}],
)
django.setup()
import dbconnmgr
failed = []
for m in pkgutil.walk_packages(dbconnmgr.__path__, "dbconnmgr."):
    try:
        importlib.import_module(m.name)
    except ModuleNotFoundError as exc:
        assert exc.name.partition(".")[0].startswith("psycopg"), exc
        failed.append(m.name)
import dbconnmgr.management.commands.db_connections, dbconnmgr.admin, dbconnmgr.urls
call_command("check", databases=[])
print(" ".join(sorted(failed)))
"""


def test_a_mysql_only_project_needs_no_postgresql_package() -> None:
    """Without psycopg: settings, the app, the command and every module but the
    PostgreSQL ones import (so the driver can be the user's choice of extra)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", NO_POSTGRESQL], capture_output=True, text=True, env=env, timeout=120,
        cwd=ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].split() == [
        "dbconnmgr.backends.pgbouncer",
        "dbconnmgr.backends.postgresql.reader",
        "dbconnmgr.db.postgresql.base",
        "dbconnmgr.db.redshift.base",  # Redshift speaks PostgreSQL's protocol: psycopg too
    ]


def test_one_version_source() -> None:
    import dbconnmgr
    from dbconnmgr._version import VERSION

    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool.")[0]
    assert dbconnmgr.__version__ == VERSION
    assert re.search(r'VERSION = "', (ROOT / "dbconnmgr" / "__init__.py").read_text()) is None
