"""One vocabulary (issue 10): the same names as the JSON documents and the Python API."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dbconnmgr", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="connectionsample",
            name="dbconnmgr_c_databas_76cab5_idx",
        ),
        migrations.RenameField(
            model_name="connectionsample",
            old_name="database_alias",
            new_name="alias",
        ),
        migrations.RenameField(
            model_name="connectionsample",
            old_name="active_sessions",
            new_name="active_connections",
        ),
        migrations.RenameField(
            model_name="connectionsample",
            old_name="idle_in_transaction",
            new_name="idle_in_transaction_connections",
        ),
        migrations.RenameField(
            model_name="connectionsample",
            old_name="usable_utilization_percent",
            new_name="utilization_percent",
        ),
        migrations.AlterField(
            model_name="connectionsample",
            name="utilization_percent",
            field=models.FloatField(help_text="% of usable slots"),
        ),
        migrations.AddIndex(
            model_name="connectionsample",
            index=models.Index(fields=["alias", "taken_at"], name="dbconnmgr_c_alias_e00d12_idx"),
        ),
    ]
