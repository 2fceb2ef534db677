"""The hourly rollup of recorded samples (issue 23): what peak and the charts read."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dbconnmgr', '0004_load_split'),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupCoverage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alias', models.CharField(max_length=100, unique=True)),
                ('start', models.DateTimeField(help_text='the first hour covered')),
                ('end', models.DateTimeField(help_text='hours before this one are covered')),
            ],
            options={
                'verbose_name': 'rollup coverage',
                'verbose_name_plural': 'rollup coverage',
            },
        ),
        migrations.CreateModel(
            name='ConnectionHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alias', models.CharField(help_text='the Django alias monitored', max_length=100)),
                ('hour', models.DateTimeField(help_text="the hour's start (UTC)")),
                ('samples', models.PositiveIntegerField()),
                ('first_at', models.DateTimeField(help_text="the hour's first sample")),
                ('last_at', models.DateTimeField(help_text="the hour's last sample")),
                ('max_total_connections', models.PositiveIntegerField()),
                ('max_at', models.DateTimeField(help_text='the first sample that saw the maximum')),
                ('total_connections_sum', models.BigIntegerField()),
                ('max_utilization_percent', models.FloatField()),
                ('utilization_percent_sum', models.FloatField()),
                ('histogram', models.JSONField(default=dict, help_text='{"total_connections": samples}')),
            ],
            options={
                'verbose_name': 'connection hour',
                'ordering': ('-hour',),
                'constraints': [models.UniqueConstraint(fields=('alias', 'hour'), name='dbconnmgr_hour_alias_hour')],
            },
        ),
    ]
