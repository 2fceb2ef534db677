"""The engines dbconnmgr reads: which package serves which vendor and Django ENGINE.

Adding an engine is one :class:`Engine` line in :data:`ENGINES` (and its package,
``backends/<engine>/``). This module imports neither Django nor any engine's modules:
``database_settings`` (imported from settings.py, before Django is set up) may ask it
which engine an ``ENGINE`` path is, and an engine's reader (its driver with it) is
imported only when a backend is first asked for (:meth:`Engine.backend`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbconnmgr.backends.base import ConnectionBackend

__all__ = ["ENGINES", "Engine", "by_engine", "by_vendor", "engine"]


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine: its Django vendor, its package and the ENGINE paths that reach it.

    Attributes:
        vendor: Django's ``connection.vendor`` of the engine (``postgresql``).
        package: the engine's package, ``dbconnmgr.backends.<engine>``.
        backend_class: the name of its :class:`ConnectionBackend` in ``<package>.reader``.
        engines: Django ``ENGINE`` dotted paths served by it (Django's own, GIS, wrappers).
    """

    vendor: str
    package: str
    backend_class: str
    engines: frozenset[str]

    def module(self, name: str) -> ModuleType:
        """``<package>.<name>`` (``reader``, ``driver``, ``settings``...), imported now."""
        return importlib.import_module(f"{self.package}.{name}")

    def backend(self) -> type[ConnectionBackend]:
        """The backend class, its reader (and driver) imported on first use."""
        return _load(self.package, self.backend_class)


ENGINES: tuple[Engine, ...] = (
    Engine("postgresql", "dbconnmgr.backends.postgresql", "PostgreSQLBackend", frozenset({
        "django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis",
        "dbconnmgr.db.postgresql",  # database_settings.INSTRUMENTED_ENGINE
    })),
    Engine("mysql", "dbconnmgr.backends.mysql", "MySQLBackend", frozenset({
        "django.db.backends.mysql", "django.contrib.gis.db.backends.mysql",
    })),
)  # fmt: skip

_BY_VENDOR = {engine.vendor: engine for engine in ENGINES}
_BY_ENGINE = {path: engine for engine in ENGINES for path in engine.engines}


def by_vendor(vendor: str | None) -> Engine | None:
    """The engine whose Django ``vendor`` is ``vendor``, or None."""
    return _BY_VENDOR.get(vendor or "")


def engine(vendor: str) -> Engine:
    """The engine listed for ``vendor`` (KeyError when none is)."""
    return _BY_VENDOR[vendor]


def by_engine(engine: str | None) -> Engine | None:
    """The engine a ``DATABASES`` entry's ``ENGINE`` path reaches, or None (unknown to
    dbconnmgr: ask Django's ``connection.vendor`` then, see ``backends.engine_of``)."""
    return _BY_ENGINE.get(engine or "")


@cache
def _load(package: str, name: str) -> type[ConnectionBackend]:
    backend: type[ConnectionBackend] = getattr(importlib.import_module(f"{package}.reader"), name)
    return backend
