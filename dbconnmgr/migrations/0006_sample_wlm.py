"""The query queues of each recorded sample (Amazon Redshift's WLM; issue 18): null for
engines without them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dbconnmgr", "0005_hourly_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectionsample",
            name="wlm",
            field=models.JSONField(
                blank=True,
                help_text="the query queues (Redshift's WLM), null for engines without them",
                null=True,
            ),
        ),
    ]
