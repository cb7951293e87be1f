"""The faster metrics and scoring give the very same bits as before the speed-up.

tests/reference_v1 is a frozen copy of sizing_app.metrics and sizing_app.scoring as they were
(commit d3bc726). Every snapshot value must stay identical, not merely close: a factor that moves
in its last bit after a refactor is a change nobody asked for. Compared on real candles and
trades (../shared/data) and on hypothesis-generated inputs, NaNs, gaps and empty series included.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:  # these tests also run under -p no:django
    sys.path.insert(0, str(PROJECT_ROOT))

from sizing_app.domain import metrics, scoring  # noqa: E402  (after the sys.path set-up above)
from tests.reference_v1 import metrics as reference_metrics  # noqa: E402
from tests.reference_v1 import scoring as reference_scoring  # noqa: E402
from tests.shared_data import shared_data_file  # noqa: E402

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
MARKET_FILES = {  # file: candle interval
    "market/BTCUSDT-1h-2023-01_2023-05.csv": "1h",
    "market/ETH_BTC-5m.json": "5m",
    "market/LTC_BTC-5m.json": "5m",
    "market/XRP_ETH-1m.json": "1m",
}
TRADES_FILE = "fills/XRP_OLD-trades.json.gz"


def canonical(value):
    """A value with every float spelled exactly (hex) and every type kept, for == comparison."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return (type(value).__name__, float(value).hex())
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return (type(value).__name__, value)


def evaluate_both(inputs: scoring.SymbolInputs, previous_factor: float | None, **settings_values):
    reference_inputs = reference_scoring.SymbolInputs(
        **{field.name: getattr(inputs, field.name) for field in dataclasses.fields(inputs)}
    )
    keywords = {"target_volatility": 0.4, "max_step": 0.25, **settings_values}
    live = scoring.evaluate(inputs, previous_factor=previous_factor, **keywords)
    reference = reference_scoring.evaluate(reference_inputs, previous_factor=previous_factor, **keywords)
    return canonical(dataclasses.asdict(live)), canonical(dataclasses.asdict(reference))


def without_old_arrivals(inputs: scoring.SymbolInputs) -> scoring.SymbolInputs:
    """The inputs as the recompute now reads them: no arrival price before the execution window.

    The selector no longer looks those up (slippage only benchmarks the window's fills); the
    margin of one second mirrors selectors._fill_columns.
    """
    window_start = inputs.as_of_ms - scoring.EXECUTION_WINDOW_DAYS * MS_PER_DAY - 1_000
    arrival = np.where(inputs.fill_time_ms >= window_start, inputs.fill_arrival, np.nan)
    return dataclasses.replace(inputs, fill_arrival=arrival)


# --- real data ---------------------------------------------------------------------------------

@cache
def _load_candles(relative: str) -> dict[str, np.ndarray]:
    path = shared_data_file(relative)
    if path.suffix == ".csv":
        rows = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(5))
    else:
        rows = np.array(json.loads(path.read_text()), dtype=np.float64)
    return {"time_ms": rows[:, 0].astype(np.int64), "high": rows[:, 2].copy(),
            "low": rows[:, 3].copy(), "close": rows[:, 4].copy()}


@cache
def _load_trades() -> dict[str, np.ndarray]:
    with gzip.open(shared_data_file(TRADES_FILE), "rt") as handle:
        trades = json.load(handle)
    return {
        "time_ms": np.array([trade["timestamp"] for trade in trades], dtype=np.int64),
        "side": np.array([1.0 if trade["side"] == "buy" else -1.0 for trade in trades]),
        "qty": np.array([float(trade["amount"]) for trade in trades]),
        "price": np.array([float(trade["price"]) for trade in trades]),
    }


def candles(relative: str) -> dict[str, np.ndarray]:
    shared_data_file(relative)  # the cache would also memoise a skip: resolve the path every time
    return _load_candles(relative)


def real_inputs(relative: str, interval: str, end: int, bars: int) -> scoring.SymbolInputs:
    """A symbol as the recompute sees it: `bars` real candles closing before as_of, real trades as fills.

    The trades (XRP/ETH, October 2019) are shifted to end just before as_of, so the 7-day
    windows hold real, bursty timing; each fill's arrival price is the trade before it, its PnL
    the trade's move against the mean price, every third fill a maker fill.
    """
    data = candles(relative)
    start = max(0, end - bars)
    open_ms = data["time_ms"][start:end]
    interval_ms = round(365 * MS_PER_DAY / metrics.bars_per_year(interval))
    as_of_ms = int(open_ms[-1]) + interval_ms
    shared_data_file(TRADES_FILE)
    trades = _load_trades()
    fill_times = trades["time_ms"] - trades["time_ms"][-1] + as_of_ms - 1
    close = data["close"][start:end]
    arrival = np.concatenate(([np.nan], trades["price"][:-1]))
    pnl = trades["side"] * (trades["price"] - trades["price"].mean()) * trades["qty"] * 100
    pnl[::4] = np.nan  # opening fills carry no realized PnL
    recent_orders = fill_times >= as_of_ms - 7 * MS_PER_DAY
    return scoring.SymbolInputs(
        symbol="REALDATA", as_of_ms=as_of_ms, lookback_days=30, interval=interval, capital_base=1_000.0,
        candle_open_ms=open_ms, high=data["high"][start:end], low=data["low"][start:end], close=close,
        fill_time_ms=fill_times, fill_side=trades["side"], fill_qty=trades["qty"], fill_price=trades["price"],
        fill_arrival=arrival, fill_is_maker=np.arange(len(fill_times)) % 3 == 0, fill_net_pnl=pnl,
        order_requested_qty=trades["qty"][recent_orders] / 0.9, order_filled_qty=trades["qty"][recent_orders],
    )


@pytest.mark.parametrize("relative", sorted(MARKET_FILES))
@pytest.mark.parametrize("period", [1, 3, 14, 168])
def test_atr_bit_identical_on_real_candles(relative, period):
    data = candles(relative)
    live = metrics.atr_pct(data["high"], data["low"], data["close"], period)
    reference = reference_metrics.atr_pct(data["high"], data["low"], data["close"], period)
    assert live.tobytes() == reference.tobytes()
    assert canonical(metrics.atr_regime_ratio(data["high"], data["low"], data["close"], period, 168)) == canonical(
        reference_metrics.atr_regime_ratio(data["high"], data["low"], data["close"], period, 168)
    )


@pytest.mark.parametrize("relative", sorted(MARKET_FILES))
@pytest.mark.parametrize("bars", [10, 200, 720])
def test_evaluate_bit_identical_on_real_data(relative, bars):
    length = len(candles(relative)["close"])
    for end in np.linspace(bars, length, 6).astype(int):
        inputs = real_inputs(relative, MARKET_FILES[relative], int(end), bars)
        for previous in (None, 0.6, 1.9):
            live, reference = evaluate_both(inputs, previous)
            assert live == reference
            live_now_read, _ = evaluate_both(without_old_arrivals(inputs), previous)
            assert live_now_read == reference


# --- generated inputs --------------------------------------------------------------------------

AS_OF_MS = 1_700_000_000_000 // MS_PER_HOUR * MS_PER_HOUR + 30 * 60_000  # mid-bar, like a 5-minute bucket
prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
odd_prices = st.one_of(prices, st.sampled_from([np.nan, np.inf, 0.0, -1.0]))


@st.composite
def symbol_inputs(draw) -> scoring.SymbolInputs:
    bar_count = draw(st.integers(0, 400))
    gaps = draw(st.lists(st.integers(1, 30), min_size=bar_count, max_size=bar_count))
    open_ms = (AS_OF_MS - 30 * 60_000 - MS_PER_HOUR * np.cumsum(gaps[::-1])[::-1]).astype(np.int64)
    close = np.array(draw(st.lists(st.one_of(prices, prices, prices, odd_prices), min_size=bar_count,
                                   max_size=bar_count)), dtype=np.float64)
    spread = np.array(draw(st.lists(st.floats(0, 0.1), min_size=bar_count, max_size=bar_count)))
    fill_count = draw(st.integers(0, 60))
    fill_times = np.sort(np.array(draw(st.lists(
        st.integers(AS_OF_MS - 30 * MS_PER_DAY, AS_OF_MS - 1), min_size=fill_count, max_size=fill_count,
    )), dtype=np.int64))

    def floats(strategy):
        return np.array(draw(st.lists(strategy, min_size=fill_count, max_size=fill_count)), dtype=np.float64)

    order_count = draw(st.integers(0, 20))
    requested = np.array(draw(st.lists(st.floats(0.01, 100), min_size=order_count, max_size=order_count)))
    filled_share = np.array(draw(st.lists(st.floats(0, 1), min_size=order_count, max_size=order_count)))
    return scoring.SymbolInputs(
        symbol="GENUSDC", as_of_ms=AS_OF_MS, lookback_days=30, interval=draw(st.sampled_from(["1h", "4h", "1d"])),
        capital_base=draw(st.sampled_from([100_000.0, 1_000.0, 50.0])),
        candle_open_ms=open_ms, high=close * (1 + spread), low=close * (1 - spread), close=close,
        fill_time_ms=fill_times, fill_side=floats(st.sampled_from([1.0, -1.0])), fill_qty=floats(st.floats(0, 50)),
        fill_price=floats(prices), fill_arrival=floats(st.one_of(prices, odd_prices)),
        fill_is_maker=np.array(draw(st.lists(st.booleans(), min_size=fill_count, max_size=fill_count)), dtype=bool),
        fill_net_pnl=floats(st.one_of(st.floats(-5_000, 5_000), st.just(np.nan))),
        order_requested_qty=requested, order_filled_qty=requested * filled_share,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=symbol_inputs(), previous=st.one_of(st.none(), st.floats(0.25, 2.0)))
def test_evaluate_bit_identical_on_generated_inputs(inputs, previous):
    live, reference = evaluate_both(inputs, previous)
    assert live == reference
    live_now_read, _ = evaluate_both(without_old_arrivals(inputs), previous)
    assert live_now_read == reference


@settings(max_examples=200, deadline=None)
@given(
    bars=st.lists(st.tuples(prices, st.floats(0, 0.2), st.floats(-0.1, 0.1)), max_size=300),
    period=st.integers(1, 200),
)
def test_atr_bit_identical_on_generated_bars(bars, period):
    close = np.array([bar[0] for bar in bars])
    high = close * (1 + np.array([bar[1] for bar in bars]))
    low = close * (1 - np.array([bar[1] for bar in bars])) + np.array([bar[2] for bar in bars])
    assert metrics.atr(high, low, close, period).tobytes() == reference_metrics.atr(high, low, close, period).tobytes()
    assert metrics.atr_pct(high, low, close, period).tobytes() == (
        reference_metrics.atr_pct(high, low, close, period).tobytes()
    )
    assert canonical(metrics.atr_regime_ratio(high, low, close, period, 2 * period)) == canonical(
        reference_metrics.atr_regime_ratio(high, low, close, period, 2 * period)
    )
