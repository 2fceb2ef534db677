"""Amazon Redshift's settings step: ``redshift://`` URLs, the cluster's connection limit,
libpq options as for PostgreSQL, no startup-packet server settings.

Imported by :mod:`dbconnmgr.database_settings` from a project's ``settings.py``, before
Django is set up: no ``django.db``, no psycopg at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured

from dbconnmgr.backends.engine_settings import (
    EngineSettings,
    Sources,
    parse_whole,
)
from dbconnmgr.backends.postgresql import settings as postgresql
from dbconnmgr.backends.redshift.limits import MAX_CLUSTER_CONNECTIONS, LimitError, cluster_limit

__all__ = ["REDSHIFT_ENGINE", "REDSHIFT_OPTIONS", "SETTINGS", "configure", "normalize"]

#: Django's PostgreSQL backend with vendor ``redshift`` (dbconnmgr/db/redshift). PyPI's
#: django-redshift-backend 5.0.0 declares django<5.2 and psycopg2 only: it installs on
#: neither supported stack, so a ``redshift://`` URL is given this ENGINE instead.
REDSHIFT_ENGINE: Final = "dbconnmgr.db.redshift"
#: OPTIONS of a Redshift alias that are not libpq's: the cluster's connection limit and
#: ``statement_timeout`` (ms), which the ENGINE sets with SET once connected.
REDSHIFT_OPTIONS: Final = ("node_type", "max_connections", "statement_timeout")


def normalize(options: dict[str, Any], config: Mapping[str, Any]) -> None:
    """The URL's ``?max_connections=`` and ``?statement_timeout=`` as whole numbers."""
    for key, minimum in (("max_connections", 1), ("statement_timeout", 0)):
        if isinstance(options.get(key), str):
            options[key] = parse_whole(f"?{key}", options[key], minimum=minimum)


def configure(config: dict[str, Any], options: dict[str, Any], src: Sources) -> None:
    """dbconnmgr's Redshift ENGINE; the limit (``DB_REDSHIFT_NODE_TYPE`` /
    ``DB_REDSHIFT_MAX_CONNECTIONS`` over the URL's ``?node_type=`` / ``?max_connections=``);
    application_name (with the management command after it, ``web:migrate``),
    connect_timeout and keepalives as for PostgreSQL; ``statement_timeout``
    for the ENGINE to SET. PostgreSQL's ``idle_in_transaction_session_timeout`` does not
    exist on Redshift (an idle transaction ends its session after 6 hours, fixed) and is
    refused naming the key; so is ``OPTIONS["options"]``, whose startup-packet settings no
    AWS page documents.

    The limit is validated by the ``dbconnmgr.E030`` system check (:func:`setting_errors`).
    """
    config["ENGINE"] = REDSHIFT_ENGINE
    node_type = src.text("DB_REDSHIFT_NODE_TYPE")
    if node_type is not None:
        options["node_type"] = node_type
    limit = src.whole("DB_REDSHIFT_MAX_CONNECTIONS", maximum=MAX_CLUSTER_CONNECTIONS)
    if limit is not None:
        options["max_connections"] = limit
    postgresql.libpq_application_name(options, src)
    postgresql.libpq_connection_options(options, src)
    chosen = src.whole("DB_STATEMENT_TIMEOUT", "statement_timeout", minimum=0)
    if chosen is not None:
        options["statement_timeout"] = chosen
    read, value = src.pick("DB_IDLE_IN_TRANSACTION_TIMEOUT", "idle_in_transaction_session_timeout")
    if value is not None:
        raise ImproperlyConfigured(
            f"{read}={value}: Amazon Redshift has no idle_in_transaction_session_timeout "
            "(an idle transaction ends its session after 6 hours, a fixed limit); unset it"
        )
    if "options" in options:
        raise ImproperlyConfigured(
            "OPTIONS['options'] on a Redshift alias: no AWS page documents startup-packet "
            "settings; use DB_STATEMENT_TIMEOUT (statement_timeout) or SET in your code"
        )


def known_options() -> frozenset[str]:
    """libpq's and Django's OPTIONS, and the Redshift ENGINE's own (never sent to libpq)."""
    return postgresql.known_options() | frozenset(REDSHIFT_OPTIONS)


def setting_errors(alias: str, db: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """E030: a Redshift alias without a connection limit dbconnmgr can count against
    (Redshift does not show it): (check id, message, hint)."""
    options = db.get("OPTIONS")
    try:
        cluster_limit(options if isinstance(options, Mapping) else {}, alias)
    except LimitError as exc:
        yield (
            "dbconnmgr.E030",
            f"{exc}.",
            'AWS\'s published limits by node type: docs/redshift.md, "Slots".',
        )


SETTINGS: Final = EngineSettings(
    vendor="redshift",
    schemes=frozenset({"redshift"}),
    integer_options=postgresql.INTEGER_OPTIONS,
    normalize=normalize,
    configure=configure,
    native_pool=True,
    known_options=known_options,
    application_name=True,
    connect_timeout=True,
    setting_errors=setting_errors,
)
