"""Telemetry intake for the bulk POST endpoints: validated rows in, all of them written or none.

Idempotent by each table's natural key: a row already stored with the same values is skipped; with
different values it is a conflict that rejects the batch (stored rows are never overwritten), except
that an order may move forward: status new -> partially_filled -> a final status, filled_qty only
growing, exchange_order_id and closed_at only filled in once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from ..models import Candle, Fill, Order, Symbol
from .rules import RowError, changed_fields, describe_changes

ATTEMPTS = 2  # a concurrent post of the same new rows loses the insert race once, then sees them stored


class RowsRejected(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} row error(s)")
        self.errors = sorted(errors, key=lambda error: (error.line, error.field or ""))


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _symbols(rows: list[dict], errors: list[RowError]) -> dict[str, int]:
    names = {row["symbol"] for row in rows}
    known = dict(Symbol.objects.filter(name__in=names).values_list("name", "pk"))
    for index, row in enumerate(rows):
        if row["symbol"] not in known:
            errors.append(RowError(index, f"Unknown symbol {row['symbol']!r}: create it first.", field="symbol"))
    return known


def _changes(stored: dict[str, Any], posted: dict[str, Any], fields) -> tuple[list[str], str]:
    """(the fields that differ, described): the same rule, and words, as the file importers'."""
    changed = changed_fields(stored, posted, fields)
    return changed, describe_changes(changed, stored, posted, source="posted")


def _insert_only(*, index: int, key: tuple, posted: dict[str, Any], stored: dict, new: dict, fields,
                 described_as: str) -> RowError | bool:
    """The insert-only conflict rule for one row: True new (kept in `new`), False a re-send, or a RowError.

    A row repeating a stored row, or an earlier row of the same batch, with other values is the conflict.
    """
    earlier = stored.get(key) or (new[key][1] if key in new else None)
    if earlier is None:
        new[key] = (index, posted)
        return True
    changed, described = _changes(earlier, posted, fields)
    if not changed:
        return False
    where = "already stored" if key in stored else f"posted in row {new[key][0]}"
    return RowError(index, f"{described_as} {where} with different values ({described}).", field=changed[0])


def _retrying(write: Callable[[], IngestResult]) -> IngestResult:
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return write()
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# Fills ---------------------------------------------------------------------------------------------
FILL_FIELDS = ("order_id", "side", "qty", "price", "arrival_price", "fee", "fee_asset", "is_maker",
               "realized_pnl", "executed_at")


def fills_ingest(*, rows: list[dict]) -> IngestResult:
    return _retrying(lambda: _fills_write(rows))


def _fills_write(rows: list[dict]) -> IngestResult:
    errors: list[RowError] = []
    symbols = _symbols(rows, errors)
    order_keys = {(symbols.get(r["symbol"]), r["client_order_id"]) for r in rows if r["client_order_id"]}
    orders = {}
    if order_keys:
        orders = {
            (symbol_id, client_id): pk
            for pk, symbol_id, client_id in Order.objects.filter(
                symbol_id__in={key[0] for key in order_keys}, client_order_id__in={key[1] for key in order_keys}
            ).values_list("pk", "symbol_id", "client_order_id")
        }
    stored = {
        (fill["symbol_id"], fill["trade_id"]): fill
        for fill in Fill.objects.filter(
            symbol_id__in=set(symbols.values()), trade_id__in={row["trade_id"] for row in rows}
        ).values("symbol_id", "trade_id", *FILL_FIELDS)
    }
    result = IngestResult(received=len(rows))
    new: dict[tuple, tuple[int, dict]] = {}
    for index, row in enumerate(rows):
        symbol_id = symbols.get(row["symbol"])
        if symbol_id is None:
            continue
        order_id = None
        if row["client_order_id"]:
            order_id = orders.get((symbol_id, row["client_order_id"]))
            if order_id is None:
                errors.append(RowError(index, f"Unknown order {row['client_order_id']!r} for {row['symbol']}: "
                                              "post it first.", field="client_order_id"))
                continue
        posted = {**{name: row[name] for name in FILL_FIELDS if name != "order_id"}, "order_id": order_id}
        outcome = _insert_only(index=index, key=(symbol_id, row["trade_id"]), posted=posted, stored=stored, new=new,
                               fields=FILL_FIELDS, described_as=f"Fill {row['trade_id']!r} of {row['symbol']}")
        if isinstance(outcome, RowError):
            errors.append(outcome)
        elif outcome is False:
            result.unchanged += 1
    if errors:
        raise RowsRejected(errors)
    Fill.objects.bulk_create(
        [Fill(symbol_id=key[0], trade_id=key[1], **values) for key, (_, values) in new.items()], batch_size=1000
    )
    result.created = len(new)
    return result


# Orders --------------------------------------------------------------------------------------------
ORDER_FIXED = ("side", "liquidity", "maker_fallback", "requested_qty", "arrival_price", "limit_price",
               "submitted_at")
ORDER_MOVING = ("exchange_order_id", "filled_qty", "status", "closed_at")
_STATUS_RANK = {Order.Status.NEW: 0, Order.Status.PARTIALLY_FILLED: 1}
FINAL_RANK = 2


def _order_move_problem(earlier: dict, posted: dict) -> tuple[str, str] | None:
    """(field, why) when `posted` is not `earlier` or a legal step forward from it."""
    fixed, described = _changes(earlier, posted, ORDER_FIXED)
    if fixed:
        return fixed[0], f"cannot change ({described})"
    before, after = _STATUS_RANK.get(earlier["status"], FINAL_RANK), _STATUS_RANK.get(posted["status"], FINAL_RANK)
    if earlier["status"] != posted["status"] and (after < before or before == FINAL_RANK):
        return "status", f"cannot move from {earlier['status']} to {posted['status']}"
    if posted["filled_qty"] < earlier["filled_qty"]:
        return "filled_qty", f"cannot shrink from {earlier['filled_qty']} to {posted['filled_qty']}"
    for name, blank in (("exchange_order_id", ""), ("closed_at", None)):
        if earlier[name] != blank and posted[name] != earlier[name]:
            return name, f"already set to {earlier[name]!s}, posted {posted[name]!s}"
    return None


def orders_ingest(*, rows: list[dict]) -> IngestResult:
    return _retrying(lambda: _orders_write(rows))


def _orders_write(rows: list[dict]) -> IngestResult:
    errors: list[RowError] = []
    symbols = _symbols(rows, errors)
    fields = ORDER_FIXED + ORDER_MOVING
    stored = {
        (order["symbol_id"], order["client_order_id"]): order
        for order in Order.objects.select_for_update().filter(
            symbol_id__in=set(symbols.values()), client_order_id__in={row["client_order_id"] for row in rows}
        ).values("pk", "symbol_id", "client_order_id", *fields)
    }
    result = IngestResult(received=len(rows))
    current: dict[tuple, dict] = {}  # key -> latest state (stored, then moved by this batch's rows)
    first_row: dict[tuple, int] = {}
    for index, row in enumerate(rows):
        symbol_id = symbols.get(row["symbol"])
        if symbol_id is None:
            continue
        key = (symbol_id, row["client_order_id"])
        posted = {name: row[name] for name in fields}
        earlier = current.get(key) or stored.get(key)
        if earlier is None:
            current[key] = posted
            first_row[key] = index
            continue
        problem = _order_move_problem(earlier, posted)
        if problem is not None:
            where = "stored" if key in stored and key not in first_row else f"row {first_row.get(key)}"
            reason = f"Order {row['client_order_id']!r} of {row['symbol']} ({where}): {problem[1]}."
            errors.append(RowError(index, reason, field=problem[0]))
            continue
        if changed_fields(earlier, posted, fields):
            current[key] = {**earlier, **posted}
            first_row.setdefault(key, index)
        else:
            result.unchanged += 1
    if errors:
        raise RowsRejected(errors)
    creates = [Order(symbol_id=key[0], client_order_id=key[1], **{n: values[n] for n in fields})
               for key, values in current.items() if key not in stored]
    updates = []
    for key, values in current.items():
        if key in stored:
            order = Order(pk=stored[key]["pk"], symbol_id=key[0], client_order_id=key[1],
                          **{n: values[n] for n in fields})
            updates.append(order)
    Order.objects.bulk_create(creates, batch_size=1000)
    if updates:
        Order.objects.bulk_update(updates, list(ORDER_MOVING), batch_size=1000)
    result.created, result.updated = len(creates), len(updates)
    return result


# Candles -------------------------------------------------------------------------------------------
CANDLE_FIELDS = ("open", "high", "low", "close", "volume")


def candles_ingest(*, rows: list[dict]) -> IngestResult:
    return _retrying(lambda: _candles_write(rows))


def _candles_write(rows: list[dict]) -> IngestResult:
    errors: list[RowError] = []
    symbols = _symbols(rows, errors)
    stored = {
        (candle["symbol_id"], candle["interval"], candle["open_time"]): candle
        for candle in Candle.objects.filter(
            symbol_id__in=set(symbols.values()), interval__in={row["interval"] for row in rows},
            open_time__in={row["open_time"] for row in rows},
        ).values("symbol_id", "interval", "open_time", *CANDLE_FIELDS)
    }
    result = IngestResult(received=len(rows))
    new: dict[tuple, tuple[int, dict]] = {}
    for index, row in enumerate(rows):
        symbol_id = symbols.get(row["symbol"])
        if symbol_id is None:
            continue
        outcome = _insert_only(
            index=index, key=(symbol_id, row["interval"], row["open_time"]),
            posted={name: row[name] for name in CANDLE_FIELDS}, stored=stored, new=new, fields=CANDLE_FIELDS,
            described_as=f"Candle {row['symbol']} {row['interval']} {row['open_time']:%Y-%m-%dT%H:%M:%SZ}",
        )
        if isinstance(outcome, RowError):
            errors.append(outcome)
        elif outcome is False:
            result.unchanged += 1
    if errors:
        raise RowsRejected(errors)
    Candle.objects.bulk_create(
        [Candle(symbol_id=key[0], interval=key[1], open_time=key[2], **values) for key, (_, values) in new.items()],
        batch_size=1000,
    )
    result.created = len(new)
    return result
