"""Snapshots keep the position at as_of, when their inputs were last fresh, and whether they were live.

SQLite rebuilds the table for the status column's new length, which drops its append-only
triggers: they are installed again at the end (see 0004).
"""
import importlib

from django.db import migrations, models

_guards = importlib.import_module("sizing_app.migrations.0004_append_only_triggers")


class Migration(migrations.Migration):

    dependencies = [
        ('sizing_app', '0012_symbol_assets'),
    ]

    operations = [
        migrations.AddField(
            model_name='sizingsnapshot',
            name='avg_cost',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='capital',
            field=models.FloatField(blank=True, help_text="What the equity's returns are measured against.", null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='computed_live',
            field=models.BooleanField(default=True, help_text='Computed as its bucket happened; false for a backfill (recompute --as-of in the past).'),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='equity',
            field=models.FloatField(blank=True, help_text='capital + realized - fees + unrealized.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='fees_quote',
            field=models.FloatField(blank=True, help_text='Fees converted into the quote currency.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='last_candle_at',
            field=models.DateTimeField(blank=True, help_text='When the newest closed candle closed.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='last_fill_at',
            field=models.DateTimeField(blank=True, help_text='The newest fill before as_of.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='position_qty',
            field=models.FloatField(blank=True, help_text='Signed: long > 0.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='realized_pnl',
            field=models.FloatField(blank=True, help_text='By average cost, before fees.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='source_realized_pnl',
            field=models.FloatField(blank=True, help_text='The sum of the realized PnL the sources reported, where they did.', null=True),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='unconverted_fee_count',
            field=models.PositiveIntegerField(default=0, help_text='Fees in an asset with no price in the quote currency: kept out of fees_quote.'),
        ),
        migrations.AddField(
            model_name='sizingsnapshot',
            name='unrealized_pnl',
            field=models.FloatField(blank=True, help_text='Marked at the last closed candle.', null=True),
        ),
        migrations.AlterField(
            model_name='sizingsnapshot',
            name='active_days',
            field=models.PositiveIntegerField(default=0, help_text='UTC days of the Sharpe window with a fill or an open position.'),
        ),
        migrations.AlterField(
            model_name='sizingsnapshot',
            name='candle_count',
            field=models.PositiveIntegerField(default=0, help_text='Closed hourly bars in the lookback.'),
        ),
        migrations.AlterField(
            model_name='sizingsnapshot',
            name='status',
            field=models.CharField(choices=[('ok', 'ok: every component had data'), ('partial', 'partial: some components lacked data'), ('stale_input', 'stale input: the candle feed stopped; neutral stack and factor'), ('no_data', 'no data: neutral factor')], default='ok', max_length=16),
        ),
        migrations.RunPython(_guards.install_guards, migrations.RunPython.noop, elidable=False),
    ]
