"""Database helpers the ORM lacks: epoch milliseconds computed in SQL.

Bulk reads fetch times as integers so a million rows never become a million datetimes.
"""
from django.db import models


class EpochMs(models.Func):
    """A datetime column as integer milliseconds since 1970-01-01 UTC."""

    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection,
            template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000)::bigint", **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        # julianday keeps ~10 microseconds of precision at today's dates; rounding to ms is exact.
        return self.as_sql(
            compiler, connection,
            template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400000.0) AS INTEGER)",
            **extra_context,
        )


def is_postgresql(connection) -> bool:
    return connection.vendor == "postgresql"
