"""URLs of example_project."""

from django.urls import path

from example_project.shop import views

urlpatterns = [
    path("products/", views.product_count, name="product-count"),
]
