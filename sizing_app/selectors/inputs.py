"""Reads: bulk inputs for the recompute and latest snapshots (the policy in force is in latest.py).

Bulk readers issue one query per table per chunk of symbols, never one per symbol.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Case, DecimalField, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from ..conf import sizing_settings
from ..db import EpochMs, NaNIfNull, as_float, numeric_columns
from ..domain.metrics import bars_per_year
from ..domain.scoring import EXECUTION_WINDOW_DAYS, SymbolInputs
from ..models import Candle, Fill, Order, Override, SizingSnapshot, Symbol

TERMINAL_ORDER_STATUSES = (
    Order.Status.FILLED, Order.Status.CANCELED, Order.Status.REJECTED, Order.Status.EXPIRED,
)


def _to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _split_by_symbol(symbol_ids: np.ndarray) -> dict[int, slice]:
    """Rows arrive sorted by symbol id: map each id to its contiguous slice."""
    if symbol_ids.size == 0:
        return {}
    ids, starts = np.unique(symbol_ids, return_index=True)
    ends = np.append(starts[1:], symbol_ids.size)
    return {int(i): slice(int(s), int(e)) for i, s, e in zip(ids, starts, ends)}


def _interval_ms(interval: str) -> int:
    return round(365 * 86_400_000 / bars_per_year(interval))


def _candle_columns(ids: list[int], interval: str, start: datetime, end: datetime) -> list[np.ndarray]:
    queryset = (
        Candle.objects.filter(symbol_id__in=ids, interval=interval, open_time__gte=start, open_time__lte=end)
        .annotate(t=EpochMs("open_time"))
        .order_by("symbol_id", "open_time")
        .values_list("symbol_id", "t", "high", "low", "close")
    )
    return numeric_columns(queryset, ("i8", "i8", "f8", "f8", "f8"))


def _fill_columns(ids: list[int], start: datetime, end: datetime, execution_start: datetime) -> list[np.ndarray]:
    # Slippage benchmarks only the fills of the execution window (scoring.compute_metrics), so only
    # those look up their order's arrival price: an index probe per recent fill instead of a join
    # for every fill of the lookback (a quarter of the fill query's server time). A second of
    # margin because scoring tests the window on times rounded to the millisecond.
    order_arrival = Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("arrival_price")[:1])
    arrival = Case(
        When(executed_at__gte=execution_start - timedelta(seconds=1),
             then=Coalesce("arrival_price", order_arrival)),
        default=None, output_field=DecimalField(),
    )
    # Fees count against PnL only when charged in the quote currency (or unstated).
    fee_in_quote = Case(
        When(Q(fee_asset="") | Q(symbol__name__endswith=F("fee_asset")), then=F("fee")),
        default=Value(0), output_field=DecimalField(),
    )
    queryset = (
        Fill.objects.filter(symbol_id__in=ids, executed_at__gte=start, executed_at__lt=end)
        .annotate(
            t=EpochMs("executed_at"),
            sign=as_float(Case(When(side="sell", then=Value(-1)), default=Value(1))),
            q=as_float("qty"), p=as_float("price"),
            arrival=NaNIfNull(as_float(arrival)),
            maker=as_float(Case(When(is_maker=True, then=Value(1)), default=Value(0))),
            # Fees cost equity on every fill, opening ones too; a fill with neither PnL nor a
            # fee (e.g. imported public trades) says nothing about equity and stays NaN.
            net_pnl=NaNIfNull(as_float(Case(
                When(realized_pnl__isnull=False, then=F("realized_pnl") - fee_in_quote),
                When(Q(fee__gt=0) & (Q(fee_asset="") | Q(symbol__name__endswith=F("fee_asset"))),
                     then=-fee_in_quote),
                default=None, output_field=DecimalField(),
            ))),
        )
        .order_by("symbol_id", "executed_at", "id")
        .values_list("symbol_id", "t", "sign", "q", "p", "arrival", "maker", "net_pnl")
    )
    return numeric_columns(queryset, ("i8", "i8", "f8", "f8", "f8", "f8", "f8", "f8"))


def _order_columns(ids: list[int], start: datetime, end: datetime) -> list[np.ndarray]:
    queryset = (
        Order.objects.filter(
            symbol_id__in=ids, status__in=TERMINAL_ORDER_STATUSES, submitted_at__gte=start, submitted_at__lt=end,
        )
        .annotate(r=as_float("requested_qty"), f=as_float("filled_qty"))
        # By id within a symbol too: the fill-rate sums then add in one fixed order, bit for bit.
        .order_by("symbol_id", "id")
        .values_list("symbol_id", "r", "f")
    )
    return numeric_columns(queryset, ("i8", "f8", "f8"))


def symbol_inputs_bulk(*, symbols: list[Symbol], as_of: datetime) -> dict[int, SymbolInputs]:
    """Every input of every given symbol for one bucket, in three queries."""
    config = sizing_settings()
    ids = [symbol.pk for symbol in symbols]
    lookback_start = as_of - timedelta(days=config.lookback_days)
    last_closed_open = as_of - timedelta(milliseconds=_interval_ms(config.candle_interval))
    candles = _candle_columns(ids, config.candle_interval, lookback_start, last_closed_open)
    execution_start = as_of - timedelta(days=EXECUTION_WINDOW_DAYS)
    fills = _fill_columns(ids, lookback_start, as_of, execution_start)
    orders = _order_columns(ids, execution_start, as_of)

    candle_slices, fill_slices, order_slices = (
        _split_by_symbol(columns[0]) for columns in (candles, fills, orders)
    )
    as_of_ms = _to_ms(as_of)
    empty = slice(0, 0)
    result = {}
    for symbol in symbols:
        c = candle_slices.get(symbol.pk, empty)
        f = fill_slices.get(symbol.pk, empty)
        o = order_slices.get(symbol.pk, empty)
        result[symbol.pk] = SymbolInputs(
            symbol=symbol.name, as_of_ms=as_of_ms, lookback_days=config.lookback_days,
            interval=config.candle_interval, capital_base=symbol.capital_base or config.capital_base,
            candle_open_ms=candles[1][c], high=candles[2][c], low=candles[3][c], close=candles[4][c],
            fill_time_ms=fills[1][f], fill_side=fills[2][f], fill_qty=fills[3][f], fill_price=fills[4][f],
            fill_arrival=fills[5][f], fill_is_maker=fills[6][f] > 0.5, fill_net_pnl=fills[7][f],
            order_requested_qty=orders[1][o], order_filled_qty=orders[2][o],
        )
    return result


def previous_factors(*, symbol_ids: list[int], as_of: datetime) -> dict[int, float]:
    """Each symbol's latest persisted factor before the bucket: the step limit's starting point."""
    latest = SizingSnapshot.objects.filter(symbol=OuterRef("pk"), as_of__lt=as_of).order_by("-as_of")
    rows = Symbol.objects.filter(pk__in=symbol_ids).annotate(
        previous=Subquery(latest.values("size_factor")[:1])
    ).values_list("pk", "previous")
    return {pk: previous for pk, previous in rows if previous is not None}


def snapshot_latest(*, symbol: str) -> SizingSnapshot | None:
    return (
        SizingSnapshot.objects.filter(symbol__name=symbol).select_related("symbol").order_by("-as_of").first()
    )


def symbols_for_recompute(*, names: list[str] | None = None) -> list[Symbol]:
    queryset = Symbol.objects.filter(is_active=True)
    if names:
        queryset = Symbol.objects.filter(name__in=names)
    return list(queryset.order_by("pk"))


@dataclass(frozen=True)
class EffectivePolicy:
    mode: str
    override: Override | None
    pinned_factor: float | None
