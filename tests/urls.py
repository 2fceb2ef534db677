"""URLs for tests."""

from django.urls import include, path

urlpatterns = [
    path("dbconnmgr/", include("dbconnmgr.urls")),
]
