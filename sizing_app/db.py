"""Database helpers the ORM lacks: epoch milliseconds in SQL, and numeric columns into numpy.

The recompute reads millions of rows; on PostgreSQL they travel as binary COPY straight into
numpy arrays instead of becoming millions of Python objects.
"""
from __future__ import annotations

import numpy as np
from django.db import connections, models
from django.db.models.functions import Cast

PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


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


class NaNIfNull(models.Func):
    """NULL as NaN on PostgreSQL, keeping columns fixed-width for binary COPY.

    Elsewhere NULL stays NULL and becomes NaN when numpy builds a float column.
    """

    output_field = models.FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="COALESCE(%(expressions)s, 'NaN'::float8)", **extra_context
        )

    def as_sql(self, compiler, connection, template="%(expressions)s", **extra_context):
        return super().as_sql(compiler, connection, template=template, **extra_context)


def as_float(expression) -> Cast:
    return Cast(expression, models.FloatField())


def as_int(expression) -> Cast:
    return Cast(expression, models.BigIntegerField())


def _copy_binary_columns(queryset, dtypes: tuple[str, ...]) -> list[np.ndarray] | None:
    """Run the query as PostgreSQL binary COPY and decode fixed-width columns with numpy.

    Every column must be non-null float8 ("f8") or int8 ("i8"); otherwise None (caller falls back).
    """
    connection = connections[queryset.db]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        statement = cursor.mogrify(sql, params)
        with cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT BINARY)") as copy:
            data = b"".join(bytes(block) for block in copy)
    if not data.startswith(PG_COPY_SIGNATURE):
        return None
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension:len(data) - 2]  # header, then the -1 trailer
    layout = [("fields", ">i2")]
    for index, dtype in enumerate(dtypes):
        layout += [(f"len{index}", ">i4"), (f"col{index}", ">" + dtype)]
    record = np.dtype(layout)
    if len(body) % record.itemsize:
        return None
    rows = np.frombuffer(body, dtype=record)
    if rows.size and (
        (rows["fields"] != len(dtypes)).any()
        or any((rows[f"len{index}"] != 8).any() for index in range(len(dtypes)))
    ):
        return None  # a NULL or an unexpected width: not the fixed layout we asked for
    return [rows[f"col{index}"].astype(dtype) for index, dtype in enumerate(dtypes)]


def numeric_columns(queryset, dtypes: tuple[str, ...]) -> list[np.ndarray]:
    """A values_list queryset of non-null numeric columns as numpy arrays, one per column."""
    if connections[queryset.db].vendor == "postgresql":
        columns = _copy_binary_columns(queryset, dtypes)
        if columns is not None:
            return columns
    rows = list(queryset)
    if not rows:
        return [np.empty(0, dtype=dtype) for dtype in dtypes]
    return [np.array(column, dtype=dtype) for column, dtype in zip(zip(*rows), dtypes)]
