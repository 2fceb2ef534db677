"""A view that touches the database, for the demo and the load benchmark."""

from django.db import connection
from django.http import HttpRequest, JsonResponse


def product_count(request: HttpRequest) -> JsonResponse:
    """Run one small query and answer with its result."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class")
        (count,) = cursor.fetchone()
    return JsonResponse({"relations": count})
