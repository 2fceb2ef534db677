"""The database load of each recorded sample (issue 20): active sessions split by wait
class, application and code label, and the connections the server refused since the
previous sample."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dbconnmgr", "0003_connections_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectionsample",
            name="load",
            field=models.JSONField(
                blank=True,
                help_text="active sessions by wait_class, application and code",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="connectionsample",
            name="refused_connections",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="refused since the previous sample (engines that count)",
                null=True,
            ),
        ),
    ]
