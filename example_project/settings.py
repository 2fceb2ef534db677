"""example_project settings: everything that varies comes from the environment.

``DATABASE_URL`` (django-environ syntax) selects the database, e.g.
``postgres://app:secret@127.0.0.1:5432/shop``; ``DB_APPLICATION_NAME``, ``DB_POOL``,
``DB_MAX_CONNS``, ``CONN_MAX_AGE`` and the other variables of docs/configuration.md tune
the connections. Behind PgBouncer: ``DB_PGBOUNCER`` (its pool_mode),
``DBCONNMGR_PGBOUNCER_CONSOLE`` (its admin console's URL) and ``DBCONNMGR_PGBOUNCER_SERVER``
(the PostgreSQL server's own URL).
"""

from __future__ import annotations

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from dbconnmgr.database_settings import PGBOUNCER_POOL_MODES, database_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY", default="example-project-insecure-key")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "dbconnmgr",
    "example_project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

try:
    DATABASES = {
        "default": database_config(
            "DATABASE_URL",
            default="postgres://localhost/example_project",
            service="example_project",
            # The example's management commands run against throwaway servers the tests
            # fill on purpose, where one plain connection reports errors best; its web
            # processes pool with DB_POOL=true (bench/bench_load.py does).
            pool=env.bool("DB_POOL", default=False),
        ),
    }
except ImproperlyConfigured as exc:
    # A bad DATABASE_URL or DB_* variable: one line naming it, not a traceback through
    # Django's settings import (it would print the same line under 20 frames). Exit 3:
    # bad configuration is UNKNOWN to a monitoring system running `--action=health`.
    sys.stderr.write(f"example_project settings: {exc}\n")
    raise SystemExit(3) from None

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

DBCONNMGR: dict[str, object] = {
    # Bearer tokens for /dbconnmgr/health/ (comma-separated in the environment).
    "HEALTH_TOKENS": env.list("DBCONNMGR_HEALTH_TOKENS", default=[]),
}
if env.str("DBCONNMGR_PGBOUNCER_CONSOLE", default=""):
    # DATABASE_URL points at PgBouncer: its admin console, the server behind it (optional)
    # and the pool_mode the settings above were made for (DB_PGBOUNCER); docs/pgbouncer.md.
    DBCONNMGR["PGBOUNCER"] = {
        "default": {
            "CONSOLE": env.str("DBCONNMGR_PGBOUNCER_CONSOLE"),
            **({"SERVER": url} if (url := env.str("DBCONNMGR_PGBOUNCER_SERVER", "")) else {}),
            **(
                {"POOL_MODE": mode}
                if (mode := env.str("DB_PGBOUNCER", "").lower()) in PGBOUNCER_POOL_MODES
                else {}
            ),
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"dbconnmgr": {"handlers": ["console"], "level": "INFO"}},
}
