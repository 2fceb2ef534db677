"""tests.settings plus an alias with Django's native pool (5.1+), for force-close's tests."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES = {
    **DATABASES,
    "pooled": {
        **DATABASES["default"],
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"application_name": "t-ci-pooled", "pool": {"min_size": 3, "max_size": 4}},
    },
}
