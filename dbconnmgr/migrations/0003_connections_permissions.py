"""The admin page's permissions (issue 14), declared on a model without a table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("dbconnmgr", "0002_vocabulary"),
    ]

    operations = [
        migrations.CreateModel(
            name="Connections",
            fields=[],
            options={
                "verbose_name": "connections",
                "verbose_name_plural": "connections",
                "permissions": (
                    ("view_connections", "Can see the database connections page"),
                    ("view_query_text", "Can see the query text of database connections"),
                    (
                        "terminate_connections",
                        "Can cancel queries and terminate database sessions",
                    ),
                ),
                "managed": False,
                "default_permissions": (),
            },
        ),
    ]
