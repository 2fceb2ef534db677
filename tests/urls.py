"""URLs for tests."""

urlpatterns: list[object] = []
