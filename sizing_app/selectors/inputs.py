"""Reads: bulk inputs for the recompute and latest snapshots (the policy in force is in latest.py).

Bulk readers issue one query per table per chunk of symbols, never one per symbol.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import Case, DecimalField, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Length
from django.utils import timezone

from ..conf import sizing_settings
from ..db import EpochMs, NaNIfNull, as_float, as_int, numeric_columns
from ..domain.accounting import FeePrices
from ..domain.bars import closed_hours_end
from ..domain.metrics import interval_milliseconds
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


def _candle_columns(ids: list[int], interval: str, start: datetime, end: datetime) -> list[np.ndarray]:
    queryset = (
        Candle.objects.filter(symbol_id__in=ids, interval=interval, open_time__gte=start, open_time__lte=end)
        .annotate(t=EpochMs("open_time"))
        .order_by("symbol_id", "open_time")
        .values_list("symbol_id", "t", "open", "high", "low", "close", "volume")
    )
    return numeric_columns(queryset, ("i8", "i8", "f8", "f8", "f8", "f8", "f8"))


# How a fill's fee is charged, relative to its symbol (scoring reads "" as the quote currency).
FEE_IN_QUOTE, FEE_IN_BASE, FEE_IN_OTHER = 0, 1, 2


def _fee_kind() -> Case:
    return Case(
        When(Q(fee=0) | Q(fee_asset="") | Q(fee_asset=F("symbol__quote_asset")), then=Value(FEE_IN_QUOTE)),
        When(fee_asset=F("symbol__base_asset"), then=Value(FEE_IN_BASE)),
        default=Value(FEE_IN_OTHER), output_field=IntegerField(),
    )


def _fill_columns(ids: list[int], end: datetime, execution_start: datetime) -> list[np.ndarray]:
    """Every fill before `end`, in execution order: the position accounting needs them all."""
    # Slippage benchmarks only the fills of the execution window (scoring.compute_metrics), so only
    # those look up their order's arrival price: an index probe per recent fill instead of a join
    # for every fill. A second of margin because scoring tests the window on times rounded to the ms.
    order_arrival = Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("arrival_price")[:1])
    arrival = Case(
        When(executed_at__gte=execution_start - timedelta(seconds=1),
             then=Coalesce("arrival_price", order_arrival)),
        default=None, output_field=DecimalField(),
    )
    queryset = (
        Fill.objects.filter(symbol_id__in=ids, executed_at__lt=end)
        .annotate(
            t=EpochMs("executed_at"),
            sign=as_float(Case(When(side="sell", then=Value(-1)), default=Value(1))),
            q=as_float("qty"), p=as_float("price"), fee_amount=as_float("fee"), kind=as_int(_fee_kind()),
            source_pnl=NaNIfNull(as_float("realized_pnl")),
            arrival=NaNIfNull(as_float(arrival)),
            maker=as_float(Case(When(is_maker=True, then=Value(1)), default=Value(0))),
            trade_id_length=Length("trade_id"),
        )
        # Equal times in trade id order; numeric ids (every major exchange's) sort by length first.
        .order_by("symbol_id", "executed_at", "trade_id_length", "trade_id", "id")
        .values_list("symbol_id", "id", "t", "sign", "q", "p", "fee_amount", "kind", "source_pnl", "arrival",
                     "maker")
    )
    return numeric_columns(queryset, ("i8", "i8", "i8", "f8", "f8", "f8", "f8", "i8", "f8", "f8", "f8"))


def _other_fee_assets(ids: list[int], end: datetime) -> dict[int, str]:
    """The fee asset of the fills charged in neither their base nor their quote (e.g. BNB), by fill id."""
    return dict(
        Fill.objects.filter(symbol_id__in=ids, executed_at__lt=end).annotate(kind=_fee_kind())
        .filter(kind=FEE_IN_OTHER).values_list("pk", "fee_asset")
    )


def _fee_prices(needed: dict[tuple[str, str], int], interval: str, end: datetime) -> dict[tuple[str, str], FeePrices]:
    """Closes of each (fee asset, quote) pair from FEE+QUOTE's candles, or 1 / close of QUOTE+FEE's.

    `needed` maps each pair to the earliest fill (epoch ms) it prices; candles before it are not read.
    """
    if not needed:
        return {}
    markets = Symbol.objects.filter(
        Q(*[Q(base_asset=asset, quote_asset=quote) | Q(base_asset=quote, quote_asset=asset)
            for asset, quote in needed], _connector=Q.OR)
    ).values_list("pk", "base_asset", "quote_asset")
    interval_ms = interval_milliseconds(interval)
    result: dict[tuple[str, str], FeePrices] = {}
    for pair, since_ms in needed.items():
        asset, quote = pair
        for pk, base, market_quote in markets:
            inverse = (base, market_quote) == (quote, asset)
            if (base, market_quote) != pair and not inverse:
                continue
            start = datetime.fromtimestamp(since_ms / 1000, tz=UTC) - timedelta(days=1)
            rows = list(
                Candle.objects.filter(symbol_id=pk, interval=interval, open_time__gte=start,
                                      open_time__lte=end - timedelta(milliseconds=interval_ms))
                .annotate(t=EpochMs("open_time")).order_by("open_time").values_list("t", "close")
            )
            if not rows:
                continue
            times, closes = (np.array(column) for column in zip(*rows))
            positive = closes > 0
            prices = 1.0 / closes[positive] if inverse else closes[positive]
            result[pair] = FeePrices(close_ms=times[positive].astype(np.int64) + interval_ms,
                                     price=prices.astype(float))
            break
    return result


def _order_columns(ids: list[int], start: datetime, end: datetime) -> list[np.ndarray]:
    """Orders submitted in [start, end) and terminal before `end`, with the quantity filled by then.

    Filled by then: the sum of the order's own fills executed before `end` where fills are linked,
    its recorded filled_qty where none is (orders imported without their fills).
    """
    fills_before = Fill.objects.filter(order=OuterRef("pk"), executed_at__lt=end)
    filled_by_then = Subquery(
        fills_before.order_by().values("order").annotate(total=Sum("qty")).values("total")[:1]
    )
    filled = Case(
        When(Exists(Fill.objects.filter(order=OuterRef("pk"))), then=Coalesce(filled_by_then, Value(Decimal(0)))),
        default=F("filled_qty"), output_field=DecimalField(),
    )
    queryset = (
        Order.objects.filter(
            symbol_id__in=ids, status__in=TERMINAL_ORDER_STATUSES, submitted_at__gte=start, submitted_at__lt=end,
        )
        .annotate(finished=Coalesce("closed_at", "submitted_at"))
        .filter(finished__lt=end)
        .annotate(r=as_float("requested_qty"), f=as_float(filled))
        # By id within a symbol too: the fill-rate sums then add in one fixed order, bit for bit.
        .order_by("symbol_id", "id")
        .values_list("symbol_id", "r", "f")
    )
    return numeric_columns(queryset, ("i8", "f8", "f8"))


def symbol_inputs_bulk(*, symbols: list[Symbol], as_of: datetime) -> dict[int, SymbolInputs]:
    """Every input of every given symbol for one bucket, as known at as_of: four queries a chunk.

    (A fifth and sixth only where fees were charged in a third asset, e.g. BNB.)
    """
    config = sizing_settings()
    ids = [symbol.pk for symbol in symbols]
    interval_ms = interval_milliseconds(config.candle_interval)
    as_of_ms = _to_ms(as_of)
    window_end_ms = closed_hours_end(as_of_ms)
    lookback_start = datetime.fromtimestamp(window_end_ms / 1000, tz=UTC) - timedelta(days=config.lookback_days)
    last_closed_open = as_of - timedelta(milliseconds=interval_ms)
    candles = _candle_columns(ids, config.candle_interval, lookback_start, last_closed_open)
    execution_start = as_of - timedelta(days=EXECUTION_WINDOW_DAYS)
    fills = _fill_columns(ids, as_of, execution_start)
    orders = _order_columns(ids, execution_start, as_of)

    candle_slices, fill_slices, order_slices = (
        _split_by_symbol(columns[0]) for columns in (candles, fills, orders)
    )
    by_id = {symbol.pk: symbol for symbol in symbols}
    other = fills[7] == FEE_IN_OTHER
    other_assets = _other_fee_assets(ids, as_of) if other.any() else {}
    needed: dict[tuple[str, str], int] = {}
    for symbol_id, fill_id, time_ms in zip(fills[0][other].tolist(), fills[1][other].tolist(),
                                           fills[2][other].tolist()):
        pair = (other_assets.get(fill_id, ""), by_id[symbol_id].quote_asset)
        if all(pair):
            needed[pair] = min(needed.get(pair, time_ms), time_ms)
    prices = _fee_prices(needed, config.candle_interval, as_of)

    empty = slice(0, 0)
    max_candle_age_ms = config.max_candle_age_seconds * 1000
    result = {}
    for symbol in symbols:
        c = candle_slices.get(symbol.pk, empty)
        f = fill_slices.get(symbol.pk, empty)
        o = order_slices.get(symbol.pk, empty)
        kinds = fills[7][f]
        fee_assets = [
            "" if kind == FEE_IN_QUOTE else symbol.base_asset if kind == FEE_IN_BASE else other_assets.get(fill_id, "?")
            for kind, fill_id in zip(kinds.tolist(), fills[1][f].tolist())
        ]
        fee_prices = {asset: prices[(asset, quote)] for asset, quote in prices if quote == symbol.quote_asset}
        result[symbol.pk] = SymbolInputs(
            symbol=symbol.name, as_of_ms=as_of_ms, lookback_days=config.lookback_days,
            interval=config.candle_interval, capital_base=symbol.capital_base or config.capital_base,
            base_asset=symbol.base_asset, quote_asset=symbol.quote_asset, max_candle_age_ms=max_candle_age_ms,
            candle_open_ms=candles[1][c], open=candles[2][c], high=candles[3][c], low=candles[4][c],
            close=candles[5][c], volume=candles[6][c],
            fill_time_ms=fills[2][f], fill_side=fills[3][f], fill_qty=fills[4][f], fill_price=fills[5][f],
            fill_fee=fills[6][f], fill_fee_asset=fee_assets, fill_source_pnl=fills[8][f],
            fill_arrival=fills[9][f], fill_is_maker=fills[10][f] > 0.5, fee_prices=fee_prices,
            order_requested_qty=orders[1][o], order_filled_qty=orders[2][o],
        )
    return result


def previous_factors(*, symbol_ids: list[int], as_of: datetime) -> dict[int, tuple[float, datetime]]:
    """Each symbol's latest persisted factor before the bucket, with its as_of: the step limit's start."""
    latest = SizingSnapshot.objects.filter(symbol=OuterRef("pk"), as_of__lt=as_of).order_by("-as_of")
    rows = Symbol.objects.filter(pk__in=symbol_ids).annotate(
        previous=Subquery(latest.values("size_factor")[:1]), previous_as_of=Subquery(latest.values("as_of")[:1]),
    ).values_list("pk", "previous", "previous_as_of")
    return {pk: (previous, moment) for pk, previous, moment in rows if previous is not None}


def snapshot_latest(*, symbol: str) -> SizingSnapshot | None:
    """The symbol's newest snapshot that sizing may serve (none dated beyond now plus the clock skew)."""
    limit = timezone.now() + timedelta(seconds=sizing_settings().max_clock_skew_seconds)
    return (
        SizingSnapshot.objects.filter(symbol__name=symbol, as_of__lte=limit).select_related("symbol")
        .order_by("-as_of").first()
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
