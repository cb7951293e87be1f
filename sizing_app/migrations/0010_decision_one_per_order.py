from django.db import migrations, models
from django.db.models import Count


def refuse_orders_sized_twice(apps, schema_editor):
    """The unique index cannot be built over a ledger that already sized one order twice: say which."""
    decision = apps.get_model("sizing_app", "SizingDecision")
    repeated = (decision.objects.using(schema_editor.connection.alias).exclude(order_ref="")
                .values("caller", "order_ref").annotate(rows=Count("id")).filter(rows__gt=1))
    examples = list(repeated[:5])
    if examples:
        shown = ", ".join(f"{row['caller']!r}/{row['order_ref']!r} x{row['rows']}" for row in examples)
        raise RuntimeError(
            f"The ledger already holds orders sized more than once (caller/order_ref: {shown}); the ledger is "
            "append-only, so they cannot be removed, and the one-decision-per-order index cannot be built over "
            "them. Archive this database (manage.py verify_ledger, then a dump) and start the ledger afresh."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("sizing_app", "0009_run_symbols_existing"),
    ]

    operations = [
        migrations.RunPython(refuse_orders_sized_twice, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="sizingdecision",
            constraint=models.UniqueConstraint(condition=models.Q(("order_ref", ""), _negated=True),
                                               fields=("caller", "order_ref"), name="decision_one_per_order"),
        ),
    ]
