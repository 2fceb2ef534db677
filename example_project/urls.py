"""URLs of example_project."""

from django.contrib import admin
from django.urls import include, path

from example_project.shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("products/", views.product_count, name="product-count"),
    path("dbconnmgr/", include("dbconnmgr.urls")),
]
