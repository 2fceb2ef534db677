"""Settings for the test suite.

Without ``DATABASE_URL`` a throwaway PostgreSQL server is started here, once per test run,
and removed at exit (even when tests fail). With ``DATABASE_URL`` the tests use that server;
tests that need a server of their own (other max_connections) still start one.
"""

from __future__ import annotations

import os

import environ

from devtools.pgserver import session_database_url

DATABASE_URL = session_database_url()
os.environ["DATABASE_URL"] = DATABASE_URL  # subprocesses (manage.py) see the same server

SECRET_KEY = "tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "dbconnmgr",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {
    "default": {
        **environ.Env.db_url_config(DATABASE_URL),
        "OPTIONS": {"application_name": "dbconnmgr-tests"},
    },
    "legacy": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
