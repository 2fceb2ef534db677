"""The load split summed per hour in the rollup (issue 20): the hourly and daily load charts
read whole hours from it. Hours rolled up before are left null (no work here, whatever the
history's size): they are read from their samples until the monitor fills them in, or
``--action=rollup`` rebuilds the rollup."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("dbconnmgr", "0005_hourly_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectionhour",
            name="load",
            field=models.JSONField(
                blank=True,
                help_text='{"active": n, "refused": n, "wait_class": {...}, "application": {...}, "code": {...}}: the load split summed over the hour',
                null=True,
            ),
        ),
    ]
