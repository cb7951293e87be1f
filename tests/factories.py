"""Small, deterministic builders for the sizing tests: symbols, candles, orders, fills, snapshots.

Plain functions rather than factory_boy: each takes keyword arguments for what a test cares about
and picks fixed, documented defaults for the rest, so hand-computed expectations stay readable.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from sizing_app.domain.assets import AssetsUnknown, split_symbol
from sizing_app.models import Candle, Fill, Order, Override, SizingSnapshot, Symbol

HOUR = timedelta(hours=1)
_sequence = itertools.count(1)


def make_symbol(name: str = "BTCUSDC", **fields) -> Symbol:
    """A symbol with its assets split from the name as the importers would (blank when it cannot be)."""
    if "base_asset" not in fields and "quote_asset" not in fields:
        try:
            fields["base_asset"], fields["quote_asset"] = split_symbol(name)
        except AssetsUnknown:
            pass
    return Symbol.objects.create(name=name, **fields)


def candle_prices(count: int, *, start_price: float = 100.0, seed: int = 7, bar_range: float = 0.004):
    """(open, high, low, close) arrays of a seeded random walk: positive, high >= max(open, close)."""
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.003, count)))
    open_ = np.concatenate(([start_price], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + bar_range * rng.uniform(0.2, 1.0, count))
    low = np.minimum(open_, close) * (1.0 - bar_range * rng.uniform(0.2, 1.0, count))
    return open_, high, low, close


def make_candles(
    symbol: Symbol, *, last_open: datetime, count: int, interval: str = "1h", step: timedelta = HOUR,
    seed: int = 7, start_price: float = 100.0,
) -> list[Candle]:
    """`count` bars whose opens end at `last_open` (inclusive), oldest first, in one bulk insert."""
    open_, high, low, close = candle_prices(count, start_price=start_price, seed=seed)
    first_open = last_open - (count - 1) * step
    candles = [
        Candle(
            symbol=symbol, interval=interval, open_time=first_open + i * step,
            open=float(open_[i]), high=float(high[i]), low=float(low[i]), close=float(close[i]), volume=10.0,
        )
        for i in range(count)
    ]
    return Candle.objects.bulk_create(candles)


def make_order(
    symbol: Symbol, *, submitted_at: datetime, requested_qty="1", filled_qty=None, arrival_price="100",
    side: str = "buy", status: str = Order.Status.FILLED, **fields,
) -> Order:
    number = next(_sequence)
    return Order.objects.create(
        symbol=symbol, client_order_id=f"o{number}", side=side,
        requested_qty=Decimal(str(requested_qty)),
        filled_qty=Decimal(str(requested_qty if filled_qty is None else filled_qty)),
        arrival_price=Decimal(str(arrival_price)), status=status, submitted_at=submitted_at, **fields,
    )


def make_fill(
    symbol: Symbol, *, executed_at: datetime, price="100", qty="1", side: str = "buy", order: Order | None = None,
    arrival_price=None, is_maker: bool = False, realized_pnl=None, fee="0", fee_asset: str = "",
) -> Fill:
    number = next(_sequence)
    return Fill.objects.create(
        symbol=symbol, order=order, trade_id=f"t{number}", side=side, qty=Decimal(str(qty)),
        price=Decimal(str(price)),
        arrival_price=None if arrival_price is None else Decimal(str(arrival_price)),
        fee=Decimal(str(fee)), fee_asset=fee_asset, is_maker=is_maker,
        realized_pnl=None if realized_pnl is None else Decimal(str(realized_pnl)), executed_at=executed_at,
    )


def make_good_execution(symbol: Symbol, *, as_of: datetime, count: int = 40) -> None:
    """`count` fully filled buy orders, one maker fill each, 5 bps better than arrival, in the last 2 days.

    Enough sample for every execution component to count fully (30 fills, 20 orders): slippage
    -5 bps, fill rate 1.0, maker ratio 1.0, so the score is clearly positive.
    """
    for i in range(count):
        moment = as_of - timedelta(hours=1 + i)
        order = make_order(symbol, submitted_at=moment, requested_qty="1", arrival_price="100")
        make_fill(symbol, executed_at=moment + timedelta(minutes=1), price="99.95", qty="1", order=order,
                  is_maker=True)


def make_snapshot(
    symbol: Symbol, *, as_of: datetime | None = None, size_factor: float = 1.0, inverse_vol_multiplier: float = 1.0,
    regime_multiplier: float = 1.0, sharpe_multiplier: float = 1.0, score: float = 0.0, **fields,
) -> SizingSnapshot:
    as_of = as_of or timezone.now()
    return SizingSnapshot.objects.create(
        symbol=symbol, as_of=as_of, computed_at=as_of, size_factor=size_factor, raw_size_factor=size_factor,
        inverse_vol_multiplier=inverse_vol_multiplier, regime_multiplier=regime_multiplier,
        sharpe_multiplier=sharpe_multiplier, score=score, **fields,
    )


def make_user(username: str | None = None):
    username = username or f"risk{next(_sequence)}"
    return get_user_model().objects.create_user(username=username)  # unusable password: no slow hashing


def make_override(symbol: Symbol, *, author=None, pinned_factor: float | None = None, mode: str = "",
                  expires_at: datetime | None = None, revoked_at: datetime | None = None) -> Override:
    return Override.objects.create(
        symbol=symbol, pinned_factor=pinned_factor, mode=mode, reason="test", author=author or make_user(),
        expires_at=expires_at, revoked_at=revoked_at,
    )
