"""Settings with a MariaDB alias ``maria`` (from DATABASE_URL) beside an SQLite default:
for runs where the MySQL driver is missing, which Django only notices when ``maria`` is
used."""

from __future__ import annotations

import os

import environ

SECRET_KEY = "tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "dbconnmgr"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "maria": environ.Env.db_url_config(os.environ["DATABASE_URL"]),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
