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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the live server serves the admin's CSS (browser tests)
    "dbconnmgr",
]
STATIC_URL = "/static/"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
ROOT_URLCONF = "tests.urls"
DATABASES = {
    "default": {
        **environ.Env.db_url_config(DATABASE_URL),
        "OPTIONS": {"application_name": "dbconnmgr-tests"},
    },
    "legacy": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The audit lines are kept (system check dbconnmgr.W016 would say they are lost); tests read
# them with caplog, which the records still reach through the root logger.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"dbconnmgr": {"handlers": ["null"], "level": "INFO"}},
}
