"""The demo market: deterministic candles, orders and fills for about twenty symbols (unsaved rows).

Same seed and end give the same rows; demo/seed.py writes them and replays the recompute over them.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import numpy as np
from django.core.exceptions import ValidationError

from ..models import Candle, Fill, Order, Side, symbol_validator

CANDLE_INTERVAL = "1h"
HOUR = timedelta(hours=1)
DEMO_ID_PREFIX = "demo-"
QUOTE_ASSETS = ("USDC", "USDT")
DEFAULT_DAYS = 35
DEFAULT_SEED = 7
DEFAULT_HISTORY_HOURS = 72
MAX_DAYS = 400
# Orders go out in the first 50 minutes of an hour, so every fill, cancel and fallback lands
# inside the same bar and never after `end`.
SUBMIT_WINDOW_SECONDS = 3000.0
# A VIP-tier spot schedule: passive fills pay 2 bps, aggressive ones 5 bps of notional.
FEE_RATES = {True: Decimal("0.0002"), False: Decimal("0.0005")}
MONEY_PLACES = Decimal("0.00000001")
TRIP_NOTIONAL_SHARE = (0.04, 0.12)  # of the capital base, per round trip
DEMO_CAPITAL = 100_000.0  # in the quote currency: the demo desk's book per symbol when none is set
MAX_HOLD_HOURS = 12
MEAN_REVERSION_PER_HOUR = 1.0 / (7 * 24)
EXCHANGE_ORDER_ID_BASE = 8_000_000_000


@dataclass(frozen=True)
class ExecutionProfile:
    """How well the engine trades a symbol; each order and fill draws from it."""

    hit_rate: float  # share of round trips opened in the direction of the coming move
    round_trips_per_day: float
    maker_share: float  # share of orders first posted passively (post-only at a better price)
    maker_edge_bps: float  # a passive fill's improvement against arrival: negative slippage
    taker_cost_bps: float  # mean arrival slippage of an aggressive fill
    taker_cost_sd_bps: float
    # Chances an order ends filled, partially filled then canceled, canceled unfilled, rejected.
    outcome_weights: tuple[float, float, float, float]
    fallback_share: float  # share of a passive entry's unfilled rest re-sent as taker


PROFILES = {
    "good": ExecutionProfile(
        hit_rate=0.7, round_trips_per_day=8, maker_share=0.8, maker_edge_bps=1.5,
        taker_cost_bps=3.0, taker_cost_sd_bps=2.0, outcome_weights=(0.955, 0.03, 0.01, 0.005),
        fallback_share=0.3,
    ),
    "mixed": ExecutionProfile(
        hit_rate=0.55, round_trips_per_day=5, maker_share=0.45, maker_edge_bps=1.0,
        taker_cost_bps=8.0, taker_cost_sd_bps=4.0, outcome_weights=(0.8, 0.1, 0.07, 0.03),
        fallback_share=0.5,
    ),
    "poor": ExecutionProfile(
        hit_rate=0.34, round_trips_per_day=6, maker_share=0.12, maker_edge_bps=0.5,
        taker_cost_bps=22.0, taker_cost_sd_bps=6.0, outcome_weights=(0.38, 0.3, 0.25, 0.07),
        fallback_share=0.85,
    ),
}


@dataclass(frozen=True)
class DemoSymbol:
    """One demo symbol: where its price starts, how it moves and how well it is traded."""

    name: str
    price: float  # level at the start of the walk, near early-2025 market prices
    hourly_vol: float  # std of hourly log returns in its usual regime
    hourly_quote_volume: float
    profile: str  # a key of PROFILES
    ending: str  # "burst": violent last days (ATR regime ratio > 1.5); "calm": quiet last days

    @property
    def quote(self) -> str:
        return next(quote for quote in QUOTE_ASSETS if self.name.endswith(quote))

    @property
    def price_places(self) -> int:
        # About six significant digits, like exchange tick sizes: 0.01 for BTC, 1e-11 for PEPE.
        return min(12, max(2, 6 - math.floor(math.log10(self.price))))

    @property
    def qty_places(self) -> int:
        # A quantity step worth roughly 0.1 to 1 quote unit: 0.00001 BTC, whole PEPE.
        return max(0, math.floor(math.log10(self.price)) + 1)


DEMO_SYMBOLS = (
    DemoSymbol("BTCUSDC", 96_000.0, 0.0053, 60e6, "good", "calm"),
    DemoSymbol("ETHUSDC", 3_400.0, 0.0068, 30e6, "good", "calm"),
    DemoSymbol("SOLUSDC", 190.0, 0.0085, 12e6, "good", "burst"),
    DemoSymbol("BNBUSDC", 680.0, 0.0045, 5e6, "good", "calm"),
    DemoSymbol("XRPUSDC", 2.3, 0.0090, 10e6, "mixed", "burst"),
    DemoSymbol("ADAUSDT", 0.95, 0.0095, 2e6, "mixed", "calm"),
    DemoSymbol("DOGEUSDT", 0.33, 0.0110, 6e6, "poor", "burst"),
    DemoSymbol("AVAXUSDT", 38.0, 0.0105, 1.5e6, "mixed", "burst"),
    DemoSymbol("LINKUSDT", 21.0, 0.0095, 2e6, "good", "calm"),
    DemoSymbol("DOTUSDT", 6.8, 0.0095, 1e6, "mixed", "calm"),
    DemoSymbol("MATICUSDT", 0.48, 0.0100, 0.8e6, "poor", "calm"),
    DemoSymbol("LTCUSDT", 105.0, 0.0080, 1.5e6, "good", "calm"),
    DemoSymbol("TRXUSDT", 0.25, 0.0060, 1e6, "mixed", "calm"),
    DemoSymbol("ATOMUSDT", 6.6, 0.0095, 0.6e6, "mixed", "calm"),
    DemoSymbol("NEARUSDT", 5.2, 0.0110, 1.2e6, "mixed", "burst"),
    DemoSymbol("APTUSDT", 9.1, 0.0110, 0.8e6, "poor", "calm"),
    DemoSymbol("ARBUSDT", 0.75, 0.0110, 1e6, "poor", "calm"),
    DemoSymbol("OPUSDT", 1.9, 0.0110, 0.7e6, "mixed", "calm"),
    DemoSymbol("SUIUSDT", 3.6, 0.0120, 3e6, "mixed", "calm"),
    DemoSymbol("PEPEUSDT", 0.0000185, 0.0140, 4e6, "poor", "burst"),
)
DEMO_SYMBOL_NAMES = tuple(spec.name for spec in DEMO_SYMBOLS)
_CATALOG = {spec.name: spec for spec in DEMO_SYMBOLS}


@dataclass
class _Series:
    open_times: list[datetime]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray  # volatility multiple of the symbol's usual regime, per bar


@dataclass
class SymbolRows:
    candles: list[Candle]
    orders: list[Order]
    fills: list[tuple[str, Fill]]  # (client_order_id of its order, fill)


def demo_symbols_resolve(names: list[str] | None) -> list[DemoSymbol]:
    """The catalog (default) or the named symbols; an unknown name gets a generated mid-cap profile."""
    if not names:
        return list(DEMO_SYMBOLS)
    specs = []
    for raw in dict.fromkeys(name.strip().upper() for name in names):
        if raw in _CATALOG:
            specs.append(_CATALOG[raw])
            continue
        try:
            symbol_validator(raw)
        except ValidationError as exc:
            raise ValueError(f"{raw!r}: {exc.messages[0]}") from exc
        if not raw.endswith(QUOTE_ASSETS):
            raise ValueError(f"{raw}: demo symbols must be quoted in {' or '.join(QUOTE_ASSETS)}.")
        rng = np.random.default_rng(zlib.crc32(raw.encode()))
        specs.append(DemoSymbol(
            raw, price=float(10 ** rng.uniform(-1.0, 2.0)), hourly_vol=0.01, hourly_quote_volume=1e6,
            profile="mixed", ending="calm",
        ))
    return specs


def _symbol_rng(seed: int, name: str) -> np.random.Generator:
    # Keyed by name, so a symbol's data does not depend on which other symbols are seeded.
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _round(values: np.ndarray, places: int) -> np.ndarray:
    # Rounding is monotonic, so high >= max(open, close) >= min(open, close) >= low survives it.
    return np.round(values, places)


def _dec(value: float, places: int | Decimal) -> Decimal:
    step = places if isinstance(places, Decimal) else Decimal(1).scaleb(-places)
    return Decimal(repr(float(value))).quantize(step)


def demo_candles_generate(spec: DemoSymbol, *, end: datetime, hours: int, rng: np.random.Generator) -> _Series:
    """Hourly OHLCV ending at `end` from a fat-tailed geometric random walk with volatility regimes."""
    regime = np.ones(hours)
    # One or two violent episodes earlier on, so the long ATR has seen more than one regime.
    for _ in range(int(rng.integers(1, 3))):
        length = int(rng.integers(8, 36))
        start = int(rng.integers(0, max(1, hours - 7 * 24 - length)))
        regime[start:start + length] *= rng.uniform(1.8, 2.6)
    if spec.ending == "burst":
        # A burst of the last two days or so: the 14-bar ATR jumps while the 168-bar one lags.
        regime[-int(rng.integers(36, 61)):] *= rng.uniform(3.2, 4.0)
    else:
        regime[-96:] *= 0.6
    sigma = spec.hourly_vol * regime
    # Student-t(5) shocks scaled to unit variance: crypto returns have fat tails.
    shocks = rng.standard_t(5, size=hours) / math.sqrt(5.0 / 3.0)
    log_returns = sigma * shocks - 0.5 * sigma**2
    # A weak pull (time constant one week) toward the catalog price keeps the level
    # realistic over the whole window while hour-to-hour moves stay a random walk.
    log_price = np.empty(hours)
    level = 0.0
    for index in range(hours):
        level += log_returns[index] - level * MEAN_REVERSION_PER_HOUR
        log_price[index] = level
    close = spec.price * np.exp(log_price)
    open_ = np.concatenate(([spec.price], close[:-1]))
    upper_wick = np.exp(np.abs(rng.normal(0.0, 0.6, size=hours)) * sigma)
    lower_wick = np.exp(-np.abs(rng.normal(0.0, 0.6, size=hours)) * sigma)
    high = np.maximum(open_, close) * upper_wick
    low = np.minimum(open_, close) * lower_wick
    # Turbulence brings volume.
    quote_volume = spec.hourly_quote_volume * regime**0.8 * rng.lognormal(0.0, 0.35, size=hours)
    places = spec.price_places
    first_open = end - hours * HOUR
    return _Series(
        open_times=[first_open + index * HOUR for index in range(hours)],
        open=_round(open_, places), high=_round(high, places), low=_round(low, places),
        close=_round(close, places),
        volume=np.maximum(_round(quote_volume / close, spec.qty_places), 10.0 ** -spec.qty_places),
        regime=regime,
    )


class _ExecutionSimulator:
    """Round trips on one symbol: entry orders, then exit orders that always flatten the position.

    The direction reads the coming move with the profile's hit rate, so realized PnL follows
    the candles; arrival is the bar's mid at submission, and slippage comes from the profile.
    """

    def __init__(self, *, spec: DemoSymbol, series: _Series, rng: np.random.Generator, seed: int,
                 capital_base: float):
        self.spec, self.series, self.rng = spec, series, rng
        self.profile = PROFILES[spec.profile]
        self.capital_base = capital_base
        self.prefix = f"{DEMO_ID_PREFIX}{seed}-"
        self.qty_step = Decimal(1).scaleb(-spec.qty_places)
        self.orders: list[Order] = []
        self.fills: list[tuple[str, Fill]] = []
        self._trade_count = 0

    def run(self) -> None:
        bars = len(self.series.close)
        if bars < 2:
            return
        trips = int(self.rng.poisson(self.profile.round_trips_per_day * bars / 24))
        holds = self.rng.integers(1, min(MAX_HOLD_HOURS, bars - 1) + 1, size=trips)
        entry_bars = (self.rng.random(trips) * (bars - holds)).astype(int)  # exit bar <= last bar
        entry_offsets = self.rng.uniform(0.0, SUBMIT_WINDOW_SECONDS, size=trips)
        exit_offsets = self.rng.uniform(0.0, SUBMIT_WINDOW_SECONDS, size=trips)
        for index in np.lexsort((entry_offsets, entry_bars)):
            bar = int(entry_bars[index])
            self._round_trip(
                entry_at=self.series.open_times[bar] + timedelta(seconds=float(entry_offsets[index])), bar=bar,
                exit_bar=bar + int(holds[index]),
                exit_at=self.series.open_times[bar + int(holds[index])] + timedelta(seconds=float(exit_offsets[index])),
            )
        self._renumber()

    def _renumber(self) -> None:
        """Number orders and fills in time order, as an exchange's ids grow (trips overlap in time)."""
        self.orders.sort(key=lambda order: (order.submitted_at, order.client_order_id))
        client_ids = {}
        for number, order in enumerate(self.orders, start=1):
            new_id = f"{self.prefix}{number:06d}"
            client_ids[order.client_order_id] = new_id
            order.client_order_id = new_id
            if order.exchange_order_id:
                order.exchange_order_id = str(EXCHANGE_ORDER_ID_BASE + number)
        self.fills.sort(key=lambda item: (item[1].executed_at, item[1].trade_id))
        for number, (_, fill) in enumerate(self.fills, start=1):
            fill.trade_id = f"{self.prefix}{number:07d}"
        self.fills = [(client_ids[client_order_id], fill) for client_order_id, fill in self.fills]

    def _mid(self, bar: int, at: datetime) -> float:
        elapsed = (at - self.series.open_times[bar]).total_seconds() / 3600.0
        open_, close = self.series.open[bar], self.series.close[bar]
        return float(open_ + (close - open_) * elapsed)

    def _round_trip(self, *, entry_at: datetime, bar: int, exit_at: datetime, exit_bar: int) -> None:
        rng, profile = self.rng, self.profile
        # The hit rate is judged on the mid the exit will meet, so it is the share of round trips
        # that win before costs.
        rises = self._mid(exit_bar, exit_at) > self._mid(bar, entry_at)
        reads_the_move = rng.random() < profile.hit_rate
        direction = 1 if rises == reads_the_move else -1
        # The engine sizes by inverse volatility, so a violent regime trades smaller.
        notional = self.capital_base * rng.uniform(*TRIP_NOTIONAL_SHARE) / self.series.regime[bar]
        qty = max(_dec(notional / self._mid(bar, entry_at), self.spec.qty_places + 2).quantize(
            self.qty_step, ROUND_DOWN), self.qty_step)
        entry_side = Side.BUY if direction > 0 else Side.SELL
        entries = self._work(side=entry_side, qty=qty, bar=bar, at=entry_at, must_complete=False)
        position = sum((fill_qty for fill_qty, _ in entries), Decimal(0))
        if position == 0:
            return
        exit_side = Side.SELL if direction > 0 else Side.BUY
        self._work(side=exit_side, qty=position, bar=exit_bar, at=exit_at, must_complete=True)

    def _work(self, *, side: str, qty: Decimal, bar: int, at: datetime,
              must_complete: bool) -> list[tuple[Decimal, Decimal]]:
        """Send one order and, if it left a rest that must (or may) trade, a taker fallback for it."""
        rng, profile = self.rng, self.profile
        passive = bool(rng.random() < profile.maker_share)
        outcome = int(rng.choice(4, p=profile.outcome_weights))
        if outcome == 0:
            filled, status = qty, Order.Status.FILLED
        elif outcome == 1:
            filled = (qty * _dec(rng.uniform(0.2, 0.8), 6)).quantize(self.qty_step, ROUND_DOWN)
            status = Order.Status.CANCELED
        else:
            filled = Decimal(0)
            status = Order.Status.CANCELED if outcome == 2 else Order.Status.REJECTED
        if filled == qty:
            status = Order.Status.FILLED
        order, executions = self._place(side=side, requested=qty, filled=filled, status=status, bar=bar, at=at,
                                        passive=passive, fallback=False)
        rest = qty - filled
        # An exit must flatten; an entry re-sends its rest only sometimes (the signal may be gone).
        if rest > 0 and (must_complete or (passive and rng.random() < profile.fallback_share)):
            resend_at = order.closed_at + timedelta(seconds=rng.uniform(0.5, 3.0))
            _, more = self._place(side=side, requested=rest, filled=rest, status=Order.Status.FILLED, bar=bar,
                                  at=resend_at, passive=False, fallback=passive)
            executions += more
        return executions

    def _place(self, *, side: str, requested: Decimal, filled: Decimal, status: str, bar: int, at: datetime,
               passive: bool, fallback: bool) -> tuple[Order, list[tuple[Decimal, Decimal]]]:
        rng, profile, spec = self.rng, self.profile, self.spec
        sign = 1 if side == Side.BUY else -1
        arrival = self._mid(bar, at)
        limit_price = None
        if passive:
            edge_bps = rng.uniform(0.5, 1.5) * profile.maker_edge_bps
            limit_price = _dec(arrival * (1 - sign * edge_bps / 1e4), spec.price_places)
        number = len(self.orders) + 1
        client_order_id = f"{self.prefix}{number:06d}"
        pieces = self._split(filled, 1 + int(rng.binomial(2, 0.45 if passive else 0.3))) if filled > 0 else []
        executions = []
        last_fill_at = at
        # A resting order waits for the market to come to it; an aggressive one trades at once.
        executed_at = at + timedelta(seconds=rng.uniform(20.0, 240.0) if passive else rng.uniform(0.05, 1.5))
        for piece in pieces:
            if passive:
                price = limit_price
            else:
                slippage_bps = rng.normal(profile.taker_cost_bps, profile.taker_cost_sd_bps)
                price = _dec(arrival * (1 + sign * slippage_bps / 1e4), spec.price_places)
            self._trade_count += 1
            # Like a spot venue's fills, the demo's carry no PnL: the scoring's accounting computes it.
            self.fills.append((client_order_id, Fill(
                trade_id=f"{self.prefix}{self._trade_count:07d}", side=side, qty=piece, price=price,
                fee=(price * piece * FEE_RATES[passive]).quantize(MONEY_PLACES), fee_asset=spec.quote,
                is_maker=passive, executed_at=executed_at,
            )))
            executions.append((piece, price))
            last_fill_at = executed_at
            executed_at += timedelta(seconds=rng.uniform(5.0, 60.0) if passive else rng.uniform(0.01, 0.3))
        if status == Order.Status.REJECTED:
            closed_at = at + timedelta(milliseconds=20)
        elif status == Order.Status.FILLED:
            closed_at = last_fill_at
        elif pieces:
            closed_at = last_fill_at + timedelta(seconds=rng.uniform(30.0, 120.0) if passive else 0.01)
        else:
            closed_at = at + timedelta(seconds=rng.uniform(300.0, 480.0) if passive else 0.2)
        order = Order(
            client_order_id=client_order_id,
            exchange_order_id="" if status == Order.Status.REJECTED else str(EXCHANGE_ORDER_ID_BASE + number),
            side=side, liquidity=Order.Liquidity.MAKER if passive else Order.Liquidity.TAKER,
            maker_fallback=fallback, requested_qty=requested, filled_qty=filled,
            arrival_price=_dec(arrival, spec.price_places), limit_price=limit_price, status=status,
            submitted_at=at, closed_at=closed_at,
        )
        self.orders.append(order)
        return order, executions

    def _split(self, qty: Decimal, parts: int) -> list[Decimal]:
        """Split a filled quantity into fills of whole quantity steps that add up exactly."""
        if parts == 1 or qty <= self.qty_step * parts:
            return [qty]
        weights = self.rng.dirichlet(np.ones(parts))
        pieces = [(qty * _dec(weight, 6)).quantize(self.qty_step, ROUND_DOWN) for weight in weights[:-1]]
        pieces = [piece for piece in pieces if piece > 0]
        pieces.append(qty - sum(pieces, Decimal(0)))
        return [piece for piece in pieces if piece > 0]


def demo_symbol_rows(spec: DemoSymbol, *, end: datetime, days: int, seed: int, capital_base: float) -> SymbolRows:
    """Unsaved candles, orders and fills of one symbol (no symbol set); pure given its arguments."""
    rng = _symbol_rng(seed, spec.name)
    series = demo_candles_generate(spec, end=end, hours=days * 24, rng=rng)
    candles = [
        Candle(interval=CANDLE_INTERVAL, open_time=open_time, open=float(o), high=float(h), low=float(lo),
               close=float(c), volume=float(v))
        for open_time, o, h, lo, c, v in zip(series.open_times, series.open, series.high, series.low,
                                             series.close, series.volume)
    ]
    simulator = _ExecutionSimulator(spec=spec, series=series, rng=rng, seed=seed, capital_base=capital_base)
    simulator.run()
    return SymbolRows(candles=candles, orders=simulator.orders, fills=simulator.fills)
