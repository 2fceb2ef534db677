"""URLs of the health endpoint. In the project's urls.py::

    path("dbconnmgr/", include("dbconnmgr.urls")),

gives ``/dbconnmgr/health/`` (the ``default`` alias), ``/dbconnmgr/health/<alias>/`` and
``/dbconnmgr/metrics`` (Prometheus, with ``dbconnmgr[prometheus]``).
"""

from __future__ import annotations

from django.urls import path

from dbconnmgr import views

app_name = "dbconnmgr"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("health/<str:alias>/", views.health, name="health-alias"),
    path("metrics", views.metrics, name="metrics"),
]
