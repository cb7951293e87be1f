"""Reads: bulk inputs for the recompute, latest snapshots, effective policy.

Bulk readers issue one query per table per chunk of symbols, never one per symbol.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db.models import FloatField, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from .conf import sizing_settings
from .db import EpochMs
from .metrics import bars_per_year
from .models import Candle, Fill, GlobalPolicy, Order, Override, SizingSnapshot, Symbol
from .scoring import EXECUTION_WINDOW_DAYS, SymbolInputs

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


def _columns(queryset, *fields, dtypes) -> list[np.ndarray]:
    rows = list(queryset.values_list(*fields))
    if not rows:
        return [np.empty(0, dtype=dtype) for dtype in dtypes]
    columns = list(zip(*rows))
    return [np.array(column, dtype=dtype) for column, dtype in zip(columns, dtypes)]


def _float(field_name: str):
    return Cast(field_name, FloatField())


def symbol_inputs_bulk(*, symbols: list[Symbol], as_of: datetime) -> dict[int, SymbolInputs]:
    """Every input of every given symbol for one bucket, in three queries."""
    config = sizing_settings()
    ids = [symbol.pk for symbol in symbols]
    lookback_start = as_of - timedelta(days=config.lookback_days)
    bar = timedelta(milliseconds=_interval_ms(config.candle_interval))

    candle_cols = _columns(
        Candle.objects.filter(
            symbol_id__in=ids, interval=config.candle_interval,
            open_time__gte=lookback_start, open_time__lte=as_of - bar,  # closed bars only
        ).annotate(t=EpochMs("open_time")).order_by("symbol_id", "open_time"),
        "symbol_id", "t", "high", "low", "close",
        dtypes=(np.int64, np.int64, np.float64, np.float64, np.float64),
    )
    fill_cols = _columns(
        Fill.objects.filter(symbol_id__in=ids, executed_at__gte=lookback_start, executed_at__lt=as_of)
        .annotate(
            t=EpochMs("executed_at"), q=_float("qty"), p=_float("price"),
            a=_float(Coalesce("arrival_price", "order__arrival_price")), pnl=_float("realized_pnl"), fee_f=_float("fee"),
        )
        .order_by("symbol_id", "executed_at", "id"),
        "symbol_id", "t", "side", "q", "p", "a", "is_maker", "pnl", "fee_f", "fee_asset",
        dtypes=(np.int64, np.int64, object, np.float64, np.float64, np.float64, bool, np.float64,
                np.float64, object),
    )
    order_cols = _columns(
        Order.objects.filter(
            symbol_id__in=ids, status__in=TERMINAL_ORDER_STATUSES,
            submitted_at__gte=as_of - timedelta(days=EXECUTION_WINDOW_DAYS), submitted_at__lt=as_of,
        ).annotate(r=_float("requested_qty"), f=_float("filled_qty")).order_by("symbol_id"),
        "symbol_id", "r", "f", dtypes=(np.int64, np.float64, np.float64),
    )

    candle_slices = _split_by_symbol(candle_cols[0])
    fill_slices = _split_by_symbol(fill_cols[0])
    order_slices = _split_by_symbol(order_cols[0])
    as_of_ms = _to_ms(as_of)
    empty = slice(0, 0)
    result = {}
    for symbol in symbols:
        c, f, o = (candle_slices.get(symbol.pk, empty), fill_slices.get(symbol.pk, empty),
                   order_slices.get(symbol.pk, empty))
        side = np.where(fill_cols[2][f] == "sell", -1.0, 1.0)
        # Fees count against PnL only when charged in the quote currency (or unstated).
        fee_assets = fill_cols[9][f]
        fee_in_quote = np.array([not asset or symbol.name.endswith(asset) for asset in fee_assets], dtype=bool)
        fees = np.where(fee_in_quote, np.nan_to_num(fill_cols[8][f]), 0.0)
        result[symbol.pk] = SymbolInputs(
            symbol=symbol.name, as_of_ms=as_of_ms, lookback_days=config.lookback_days,
            interval=config.candle_interval,
            capital_base=symbol.capital_base or config.capital_base,
            candle_open_ms=candle_cols[1][c], high=candle_cols[2][c], low=candle_cols[3][c],
            close=candle_cols[4][c],
            fill_time_ms=fill_cols[1][f], fill_side=side, fill_qty=fill_cols[3][f],
            fill_price=fill_cols[4][f], fill_arrival=fill_cols[5][f],
            fill_is_maker=fill_cols[6][f].astype(bool), fill_net_pnl=fill_cols[7][f] - fees,
            order_requested_qty=order_cols[1][o], order_filled_qty=order_cols[2][o],
        )
    return result


def _interval_ms(interval: str) -> int:
    return round(365 * 86_400_000 / bars_per_year(interval))


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


def override_active(*, symbol: str, at: datetime | None = None) -> Override | None:
    at = at or timezone.now()
    return (
        Override.objects.filter(symbol__name=symbol, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .order_by("-created_at", "-pk")
        .first()
    )


def policy_effective(*, symbol: str) -> EffectivePolicy:
    """Mode and pinned factor for a symbol: an active override, else the symbol's mode, else global."""
    override = override_active(symbol=symbol)
    if override is not None and override.mode:
        mode = override.mode
    else:
        symbol_mode = Symbol.objects.filter(name=symbol).values_list("mode", flat=True).first()
        mode = symbol_mode or _global_mode()
    pinned = override.pinned_factor if override is not None else None
    return EffectivePolicy(mode=mode, override=override, pinned_factor=pinned)


def _global_mode() -> str:
    mode = GlobalPolicy.objects.filter(pk=1).values_list("mode", flat=True).first()
    return mode or sizing_settings().default_mode


def snapshot_age_seconds(snapshot: SizingSnapshot, now: datetime | None = None) -> float:
    """Age measured from the bucket start: the newest data a snapshot can reflect."""
    now = now or timezone.now()
    return (now - snapshot.as_of).total_seconds()

