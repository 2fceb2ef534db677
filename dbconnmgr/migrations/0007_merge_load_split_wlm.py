"""Joins the two migrations that each follow 0005: the load split of the hourly rollup and
the WLM queues of recorded samples. Neither touches the other's table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("dbconnmgr", "0006_hour_load_split"),
        ("dbconnmgr", "0006_sample_wlm"),
    ]

    operations = []
