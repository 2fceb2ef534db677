"""URLs of the health endpoint. In the project's urls.py::

    path("dbconnmgr/", include("dbconnmgr.urls")),

gives ``/dbconnmgr/health/`` (the ``default`` alias), ``/dbconnmgr/health/<alias>/`` and
``/dbconnmgr/metrics/`` (Prometheus, with ``dbconnmgr[prometheus]``). Every URL ends with a
slash; ``/dbconnmgr/metrics``, the first releases' address, still answers (the same view,
no redirect: a scraper that does not follow redirects keeps working).
"""

from __future__ import annotations

from django.urls import path

from dbconnmgr import views

app_name = "dbconnmgr"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("health/<str:alias>/", views.health, name="health-alias"),
    path("metrics/", views.metrics, name="metrics"),
    path("metrics", views.metrics, name="metrics-without-slash"),
]
