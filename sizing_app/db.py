"""Database helpers the ORM lacks: epoch milliseconds in SQL, and numeric columns into numpy.

The recompute reads millions of rows; on PostgreSQL they travel packed, a few hundred binary
values per query, straight into numpy arrays instead of becoming millions of Python objects.
"""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.contrib.postgres.aggregates.mixins import OrderableAggMixin
from django.db import connections, models
from django.db.models import Aggregate, Count, F
from django.db.models.functions import Cast


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
    """NULL as NaN on PostgreSQL, so the packed read (numeric_columns) keeps the row.

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


class _PackedRows(OrderableAggMixin, Aggregate):
    """STRING_AGG of each row's columns in PostgreSQL's binary send format: one bytea per group.

    The ORDER BY inside the aggregate fixes the row order within the group, so the bytes are in
    the queryset's order by construction, not by the accident of a plan.
    """

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s %(order_by)s)"
    output_field = models.BinaryField()

    def __init__(self, sends: list, **extra):
        row = models.Func(*sends, template="%(expressions)s", arg_joiner=" || ", output_field=models.BinaryField())
        super().__init__(row, models.Value(b"", output_field=models.BinaryField()), **extra)


# The *send functions give fixed-width big-endian values that numpy reads as they are.
_SEND_TEMPLATES = {"i8": "int8send((%(expressions)s)::int8)", "f8": "float8send((%(expressions)s)::float8)"}
# PostgreSQL stores a timestamptz as int8 microseconds since 2000-01-01 UTC.
_PG_EPOCH_UNIX_MICROSECONDS = 946_684_800_000_000
_INT64 = np.iinfo(np.int64)


def _epoch_ms_from_timestamptz(raw: np.ndarray) -> np.ndarray | None:
    """EpochMs's SQL result from the timestamp's binary form: ms since 1970, rounded like numeric::bigint.

    That cast rounds half away from zero; None for +/-infinity, on which EXTRACT would fail.
    """
    if ((raw == _INT64.max) | (raw == _INT64.min)).any():
        return None
    microseconds = raw + _PG_EPOCH_UNIX_MICROSECONDS
    return np.sign(microseconds) * ((np.abs(microseconds) + 500) // 1000)


def _as_sent(column: np.ndarray) -> np.ndarray:
    return column


def _column_send(queryset, name: str, dtype: str):
    """(SQL expression sending one column as 8 bytes, decoder of those bytes into the column's values)."""
    annotation = queryset.query.annotations.get(name)
    if isinstance(annotation, EpochMs) and dtype == "i8" and settings.USE_TZ:
        # The raw timestamp costs the server less than EXTRACT's numeric arithmetic (about 0.5 us
        # a row, 0.7 s per 2,000 symbols' candles); numpy does the rounding instead, identically.
        (moment,) = annotation.get_source_expressions()
        send = models.Func(moment, function="timestamptz_send", output_field=models.BinaryField())
        return send, _epoch_ms_from_timestamptz
    send = models.Func(F(name), template=_SEND_TEMPLATES[dtype], output_field=models.BinaryField())
    return send, _as_sent


def _packed_columns(queryset, dtypes: tuple[str, ...]) -> list[np.ndarray] | None:
    """Read the rows as one packed bytea per value of the first column and decode them with numpy.

    Row by row, even binary COPY costs the driver a few microseconds per row (Python code runs for
    each row libpq hands over): 3 s per 2,000 symbols. Grouped, a chunk is a few hundred values.
    The queryset must be ordered by its first column first; otherwise None (caller falls back).
    None too when a column was NULL: STRING_AGG would silently skip that row.
    """
    key, *fields = queryset._fields
    ordering = tuple(queryset.query.order_by)
    if not ordering or ordering[0] != key or len(fields) != len(dtypes) - 1:
        return None
    sends, decoders = zip(*(_column_send(queryset, name, dtype) for name, dtype in zip(fields, dtypes[1:])))
    grouped = (
        queryset.values(key)
        .annotate(key_as_int8=Cast(key, models.BigIntegerField()), row_count=Count("*"),
                  packed=_PackedRows(list(sends), order_by=ordering[1:]))
        .order_by(key)
        .values_list("key_as_int8", "row_count", "packed")
    )
    keys, counts, data = _copy_groups(grouped)
    record = np.dtype([(f"col{index}", ">" + dtype) for index, dtype in enumerate(dtypes[1:])])
    if len(data) != int(counts.sum()) * record.itemsize:
        return None
    rows = np.frombuffer(data, dtype=record)
    columns = [
        decode(rows[f"col{index}"].astype(dtype)) for index, (decode, dtype) in enumerate(zip(decoders, dtypes[1:]))
    ]
    if any(column is None for column in columns):
        return None
    return [np.repeat(keys.astype(dtypes[0]), counts), *columns]


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _copy_groups(grouped) -> tuple[np.ndarray, np.ndarray, bytes]:
    """(keys, row counts, packed rows) of a (int8, int8, bytea) query, fetched as binary COPY.

    Binary, because in text the bytea would travel hex-encoded: twice the bytes, encoded by the
    server and decoded by the driver. A few hundred rows: a Python loop over them costs nothing.
    """
    connection = connections[grouped.db]
    sql, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        statement = cursor.mogrify(sql, params)
        with cursor.copy(f"COPY ({statement}) TO STDOUT (FORMAT BINARY)") as copy:
            data = memoryview(b"".join(copy))
    if bytes(data[:11]) != _COPY_SIGNATURE:
        raise ValueError("unexpected binary COPY header")
    position = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, extension length, extension

    def read_int(size: int) -> int:
        nonlocal position
        position += size
        return int.from_bytes(data[position - size:position], "big", signed=True)

    keys, counts, packed = [], [], []
    while (field_count := read_int(2)) != -1:  # -1: the trailer
        if field_count != 3:
            raise ValueError(f"unexpected binary COPY row of {field_count} fields")
        read_int(4)  # each field's length comes first: 8 for the two int8
        keys.append(read_int(8))
        read_int(4)
        counts.append(read_int(8))
        length = read_int(4)  # -1: NULL, every row of the group had a NULL column
        packed.append(data[position:position + max(length, 0)])
        position += max(length, 0)
    return np.array(keys, dtype=np.int64), np.array(counts, dtype=np.int64), b"".join(packed)


def numeric_columns(queryset, dtypes: tuple[str, ...]) -> list[np.ndarray]:
    """A values_list queryset of non-null numeric columns as numpy arrays, one per column.

    On PostgreSQL the rows travel packed per value of the first column (see _packed_columns);
    elsewhere, or when packing does not apply, as ordinary rows.
    """
    if connections[queryset.db].vendor == "postgresql":
        columns = _packed_columns(queryset, dtypes)
        if columns is not None:
            return columns
    return _row_columns(queryset, dtypes)


def _row_columns(queryset, dtypes: tuple[str, ...]) -> list[np.ndarray]:
    rows = list(queryset)
    if not rows:
        return [np.empty(0, dtype=dtype) for dtype in dtypes]
    return [np.array(column, dtype=dtype) for column, dtype in zip(zip(*rows), dtypes)]
