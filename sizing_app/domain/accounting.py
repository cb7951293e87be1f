"""Position accounting: a symbol's netting position, average cost, realized PnL and fees from its fills.

Average cost, as exchanges account a netting position, in the symbol's quote currency; fills in
execution order (ties by trade id). Pure numpy and Python, no Django.

State after each fill: signed quantity q (long > 0), average entry price a, realized PnL R, fees F.
A fill of side s (+1 buy, -1 sell), quantity x > 0, price p:
- q = 0 or sign(q) = s (opening or adding): a = (|q| a + x p) / (|q| + x); q = q + s x
- otherwise (reducing, closing or reversing): c = min(x, |q|); R = R + c (p - a) sign(q); q = q + s x;
  a fill that crosses zero opens the remainder at a = p; one that closes exactly leaves q = 0 (a = 0).
Fees: in the quote asset as they are; in the base asset times p; in any other asset times that
asset's price in the quote currency at the fill (see FeeConversion). A fee that cannot be converted
is counted in `unconverted_fees`, never silently taken as zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MS_PER_DAY = 86_400_000
# A position smaller than this fraction of the fill that reduced it is closed: quantities arrive as
# decimals, and 0.1 + 0.2 - 0.3 is 5.6e-17 in binary floats, not 0.
CLOSE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FeePrices:
    """Closes of one fee asset in the quote currency, by candle close time (epoch ms), ascending.

    Built from the FEE+QUOTE market's closed candles, or as 1 / close of QUOTE+FEE's.
    """

    close_ms: np.ndarray
    price: np.ndarray

    def at(self, time_ms: int) -> float | None:
        """The price of the last candle closed at or before `time_ms`, or None before the first."""
        index = int(np.searchsorted(self.close_ms, time_ms, side="right")) - 1
        return float(self.price[index]) if index >= 0 else None


@dataclass
class Fills:
    """One symbol's fills in execution order (the caller sorts: time, then trade id)."""

    time_ms: np.ndarray
    side: np.ndarray  # +1 buy, -1 sell
    qty: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    fee_asset: list[str]
    source_realized_pnl: np.ndarray = field(default_factory=lambda: np.empty(0))  # NaN where the source gave none

    def __len__(self) -> int:
        return int(self.time_ms.size)


@dataclass
class Ledger:
    """The position after every fill (arrays aligned with the fills), plus the fee conversion's tally."""

    qty: np.ndarray
    avg_cost: np.ndarray
    realized_pnl: np.ndarray  # cumulative, fees not deducted
    fees: np.ndarray  # cumulative, in the quote currency (converted fees only)
    unconverted_fees: np.ndarray  # cumulative count of fees that could not be converted
    notional: np.ndarray  # |q| * a after each fill: the capital the position ties up

    def __len__(self) -> int:
        return int(self.qty.size)


def fee_in_quote(fee: float, asset: str, *, price: float, time_ms: int, base: str, quote: str,
                 fee_prices: dict[str, FeePrices]) -> float | None:
    """A fill's fee in the quote currency, or None when it cannot be converted.

    An empty asset means the source did not say: taken as the quote currency (the exchanges that
    omit it charge there). Zero fees need no conversion.
    """
    if fee == 0.0:
        return 0.0
    if not asset or asset == quote:
        return fee
    if asset == base:
        return fee * price if math.isfinite(fee * price) else None
    prices = fee_prices.get(asset)
    rate = prices.at(time_ms) if prices is not None else None
    if rate is None or not math.isfinite(rate) or rate <= 0:
        return None
    return fee * rate


def account(fills: Fills, *, base: str, quote: str, fee_prices: dict[str, FeePrices] | None = None) -> Ledger:
    """The position after each fill, by average cost (see the module docstring)."""
    fee_prices = fee_prices or {}
    count = len(fills)
    qty_after, cost_after, realized_after, fees_after, unconverted_after, notional_after = (
        np.empty(count), np.empty(count), np.empty(count), np.empty(count), np.empty(count, dtype=np.int64),
        np.empty(count),
    )
    q = a = realized = fees = 0.0
    unconverted = 0
    sides, quantities, prices = fills.side.tolist(), fills.qty.tolist(), fills.price.tolist()
    fee_amounts, times = fills.fee.tolist(), fills.time_ms.tolist()
    for index in range(count):
        s, x, p = sides[index], quantities[index], prices[index]
        if not (x > 0.0 and math.isfinite(x) and p > 0.0 and math.isfinite(p)):
            pass  # no quantity at a usable price moves no position (the importers refuse such rows)
        elif q == 0.0 or (q > 0) == (s > 0):
            held = abs(q)
            a = (held * a + x * p) / (held + x)
            q = q + s * x
        else:
            closed = min(x, abs(q))
            realized += closed * (p - a) * (1.0 if q > 0 else -1.0)
            q = q + s * x
            if abs(q) <= CLOSE_TOLERANCE * x:
                q, a = 0.0, 0.0  # closed exactly: what is left is the float residue of adding decimals
            elif (q > 0) == (s > 0):
                a = p  # crossed zero: the remainder opens at this fill's price
        fee = fee_in_quote(fee_amounts[index], fills.fee_asset[index], price=p, time_ms=times[index], base=base,
                           quote=quote, fee_prices=fee_prices)
        if fee is None:
            unconverted += 1
        else:
            fees += fee
        qty_after[index], cost_after[index], realized_after[index] = q, a, realized
        fees_after[index], unconverted_after[index], notional_after[index] = fees, unconverted, abs(q) * a
    return Ledger(qty=qty_after, avg_cost=cost_after, realized_pnl=realized_after, fees=fees_after,
                  unconverted_fees=unconverted_after, notional=notional_after)


@dataclass(frozen=True)
class Position:
    """The position at one instant, marked to the last closed candle's close."""

    qty: float
    avg_cost: float
    realized_pnl: float
    fees: float
    unconverted_fees: int
    mark: float | None
    unrealized_pnl: float

    @property
    def net_pnl(self) -> float:
        return self.realized_pnl - self.fees + self.unrealized_pnl


def position_at(ledger: Ledger, fill_time_ms: np.ndarray, mark_close_ms: np.ndarray, mark: np.ndarray,
                time_ms: int) -> Position:
    """The position after every fill executed before `time_ms`, marked at the last close at or before it."""
    after = int(np.searchsorted(fill_time_ms, time_ms, side="left")) - 1
    mark_index = int(np.searchsorted(mark_close_ms, time_ms, side="right")) - 1
    price = float(mark[mark_index]) if mark_index >= 0 else None
    if after < 0:
        return Position(0.0, 0.0, 0.0, 0.0, 0, price, 0.0)
    q, a = float(ledger.qty[after]), float(ledger.avg_cost[after])
    unrealized = q * (price - a) if price is not None and q != 0.0 else 0.0
    return Position(q, a, float(ledger.realized_pnl[after]), float(ledger.fees[after]),
                    int(ledger.unconverted_fees[after]), price, unrealized)


def equity_curve(ledger: Ledger, fill_time_ms: np.ndarray, mark_close_ms: np.ndarray, mark: np.ndarray,
                 sample_ms: np.ndarray, capital: float) -> np.ndarray:
    """E(t) = capital + R(t) - F(t) + q(t) (mark(t) - a(t)) at each sample time, vectorized.

    R, F, q, a are the position after every fill executed before t (strictly: a fill at t is not yet
    in); mark(t) is the close of the last candle closed at or before t (a position held before the
    first close is carried at cost). Floored at 0: losing more than the capital is a 100% drawdown.
    """
    sample_ms = np.asarray(sample_ms, dtype=np.int64)
    after = np.searchsorted(fill_time_ms, sample_ms, side="left") - 1
    has_fill = after >= 0
    safe = np.maximum(after, 0)
    q = np.where(has_fill, ledger.qty[safe] if len(ledger) else 0.0, 0.0)
    a = np.where(has_fill, ledger.avg_cost[safe] if len(ledger) else 0.0, 0.0)
    realized = np.where(has_fill, ledger.realized_pnl[safe] if len(ledger) else 0.0, 0.0)
    fees = np.where(has_fill, ledger.fees[safe] if len(ledger) else 0.0, 0.0)
    mark_index = np.searchsorted(mark_close_ms, sample_ms, side="right") - 1
    marked = mark_index >= 0
    price = np.where(marked, mark[np.maximum(mark_index, 0)] if mark.size else 0.0, a)
    unrealized = np.where(q != 0.0, q * (price - a), 0.0)
    return np.maximum(capital + realized - fees + unrealized, 0.0)


def default_capital(ledger: Ledger, fills: Fills, since_ms: int) -> float | None:
    """The capital a symbol's equity is measured against when none is set: the largest notional it held.

    |q| a after each fill over the lookback (and the position carried into it), so the same PnL
    means the same return whatever the quote currency's unit. None when nothing was ever held.
    """
    if not len(ledger):
        return None
    start = int(np.searchsorted(fills.time_ms, since_ms, side="left"))
    window = ledger.notional[max(start - 1, 0):]
    largest = float(window.max()) if window.size else 0.0
    return largest if largest > 0 and math.isfinite(largest) else None
