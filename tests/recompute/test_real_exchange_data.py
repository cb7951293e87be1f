"""A desk's real data end to end: a Binance myTrades export with fees in quote, base and BNB, 1m candles.

The fills are the real public XRP/ETH trades of ../shared/data/fills (Binance aggTrades, 11-13 Oct
2019), turned into one account's myTrades file by a documented assignment of each trade to our side
(`our_fills`); the candles are the real 1m XRP/ETH klines of the same window. The snapshot's position,
PnL, fees, equity and Sharpe are checked against an independent computation in this file
(pandas for the marks, empyrical for the Sharpe), not against the product's own accounting.
"""
from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta

import empyrical
import numpy as np
import pandas as pd
import pytest

from sizing_app.models import Candle, Fill, SizingSnapshot, Symbol
from sizing_app.recompute.service import recompute_run
from sizing_app.telemetry.importers.candles import candles_import
from sizing_app.telemetry.importers.fills import fills_import
from tests.shared_data import shared_data_file

TRADES = "fills/XRP_OLD-trades.json.gz"
CANDLES = "market/XRP_ETH-1m.json"
EVERY = 20  # our account took part in every 20th public trade
FEE_RATE = 0.001  # Binance spot, 0.1 %
BNB_DISCOUNT = 0.75  # paying in BNB: 25 % off
BNB_IN_ETH = 0.0875  # BNBETH, flat over the window (the BNB candles are made up: no real file has them)
AS_OF = datetime(2019, 10, 13, 11, 20, tzinfo=UTC)  # the bucket after the last trade and the last candle


def our_fills() -> list[dict]:
    """The myTrades entries of an account that was the maker of every 20th public trade.

    Side: a public trade whose buyer was the maker (info.m true, the taker sold) was our buy; otherwise
    our sell. Quantity and price are the trade's. Fees at 0.1 %: every third fill pays in BNB (25 % off,
    converted at BNBETH); otherwise a buy pays in the base asset it receives (XRP) and a sell in the
    quote asset (ETH), as Binance charges without BNB.
    """
    with gzip.open(shared_data_file(TRADES), "rt") as handle:
        trades = json.load(handle)
    rows = []
    for number, trade in enumerate(trades[::EVERY]):
        info = trade["info"]
        buyer = bool(info["m"])
        qty, price = float(info["q"]), float(info["p"])
        if number % 3 == 0:
            commission, asset = qty * price * FEE_RATE * BNB_DISCOUNT / BNB_IN_ETH, "BNB"
        elif buyer:
            commission, asset = qty * FEE_RATE, "XRP"
        else:
            commission, asset = qty * price * FEE_RATE, "ETH"
        rows.append({
            "symbol": "XRPETH", "id": info["a"], "orderId": 900_000 + number, "price": info["p"], "qty": info["q"],
            "quoteQty": f"{qty * price:.8f}", "commission": f"{commission:.8f}", "commissionAsset": asset,
            "time": info["T"], "isBuyer": buyer, "isMaker": True, "isBestMatch": True,
        })
    return rows


def expected_account(rows: list[dict], marks: pd.Series) -> dict:
    """Average-cost netting position, fees in ETH, and equity at the 8 Sharpe sample times: by hand."""
    q = a = realized = fees = 0.0
    largest = 0.0
    history = []  # (time, realized - fees, q, a) after each fill
    for row in rows:
        x, p = float(row["qty"]), float(row["price"])
        side = 1.0 if row["isBuyer"] else -1.0
        if q == 0 or (q > 0) == (side > 0):
            a = (abs(q) * a + x * p) / (abs(q) + x)
            q += side * x
        else:
            closed = min(x, abs(q))
            realized += closed * (p - a) * math.copysign(1.0, q)
            q += side * x
            if abs(q) < 1e-9 * x:
                q = a = 0.0
            elif (q > 0) == (side > 0):
                a = p
        commission = float(row["commission"])
        fees += {"ETH": commission, "XRP": commission * p, "BNB": commission * BNB_IN_ETH}[row["commissionAsset"]]
        largest = max(largest, abs(q) * a)
        history.append((row["time"], realized, fees, q, a))
    times = np.array([h[0] for h in history])

    def equity(at_ms: int, capital: float) -> float:
        index = np.searchsorted(times, at_ms, side="left") - 1
        if index < 0:
            return capital
        _, r, f, held, cost = history[index]
        mark = marks[marks.index <= at_ms].iloc[-1]
        return capital + r - f + held * (mark - cost)

    return {"q": q, "a": a, "realized": realized, "fees": fees, "capital": largest, "equity": equity}


@pytest.fixture
def imported(settings, tmp_path, db):
    settings.SIZING_CANDLE_INTERVAL = "1m"
    report = candles_import(path=shared_data_file(CANDLES), symbol="XRPETH", interval="1m")
    assert report.committed and not report.errors, report.errors[:3]
    # BNBETH: made-up flat 1m candles over the window, so BNB fees have a price in ETH.
    bnb, _ = Symbol.objects.get_or_create(name="BNBETH", defaults={"base_asset": "BNB", "quote_asset": "ETH"})
    start = datetime(2019, 10, 10, tzinfo=UTC)
    Candle.objects.bulk_create([
        Candle(symbol=bnb, interval="1m", open_time=start + timedelta(minutes=minute), open=BNB_IN_ETH,
               high=BNB_IN_ETH, low=BNB_IN_ETH, close=BNB_IN_ETH, volume=1.0)
        for minute in range(int((AS_OF - start).total_seconds() // 60))
    ], batch_size=2000)
    rows = our_fills()
    path = tmp_path / "myTrades.json"
    path.write_text(json.dumps(rows))
    report = fills_import(path=path)
    assert report.committed and (report.inserted, report.errors) == (len(rows), []), report.errors[:3]
    return rows


def test_binance_mytrades_with_fees_in_quote_base_and_bnb_account_exactly(imported):
    rows = imported
    symbol = Symbol.objects.get(name="XRPETH")
    assert (symbol.base_asset, symbol.quote_asset) == ("XRP", "ETH")
    assert set(Fill.objects.filter(symbol=symbol).values_list("fee_asset", flat=True)) == {"XRP", "ETH", "BNB"}
    assert not Fill.objects.filter(symbol=symbol, realized_pnl__isnull=False).exists()  # myTrades carry none

    recompute_run(symbol_names=["XRPETH"], as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get(symbol=symbol, as_of=AS_OF)

    candles = json.loads(shared_data_file(CANDLES).read_text())
    marks = pd.Series([row[4] for row in candles], index=[row[0] + 60_000 for row in candles])  # close times
    expected = expected_account(rows, marks)
    assert snapshot.status != "stale_input" and snapshot.last_candle_at == AS_OF
    assert snapshot.position_qty == pytest.approx(expected["q"], rel=1e-12)
    assert snapshot.avg_cost == pytest.approx(expected["a"], rel=1e-12)
    assert snapshot.realized_pnl == pytest.approx(expected["realized"], rel=1e-9)
    assert snapshot.fees_quote == pytest.approx(expected["fees"], rel=1e-9)
    assert snapshot.unconverted_fee_count == 0
    assert snapshot.capital == pytest.approx(expected["capital"], rel=1e-12)
    as_of_ms = int(AS_OF.timestamp() * 1000)
    assert snapshot.equity == pytest.approx(expected["equity"](as_of_ms, expected["capital"]), rel=1e-9)
    assert snapshot.unrealized_pnl == pytest.approx(
        expected["q"] * (marks.iloc[-1] - expected["a"]), rel=1e-9)

    # Sharpe: the equity at each UTC day's end over the 7 days ending at as_of (the last at as_of).
    day = 86_400_000
    last_day_start = (as_of_ms - 1) // day * day
    samples = [last_day_start - 6 * day + k * day for k in range(7)] + [as_of_ms]
    levels = pd.Series([expected["equity"](t, expected["capital"]) for t in samples])
    sharpe = empyrical.sharpe_ratio(levels.pct_change().dropna(), annualization=365)
    assert snapshot.sharpe_7d == pytest.approx(sharpe, rel=1e-9)

    # Driven by PnL, not by fees: what the trades earned (here lost) moves the equity, fees are a part.
    pnl = expected["realized"] + snapshot.unrealized_pnl
    assert abs(pnl) > 5 * expected["fees"]
    fee_only = pd.Series([expected["capital"] - sum(
        {"ETH": float(r["commission"]), "XRP": float(r["commission"]) * float(r["price"]),
         "BNB": float(r["commission"]) * BNB_IN_ETH}[r["commissionAsset"]] for r in rows if r["time"] < t)
        for t in samples])
    assert levels.iloc[-1] / levels.iloc[0] - 1 == pytest.approx((pnl - expected["fees"]) / expected["capital"],
                                                                 rel=1e-9)
    assert abs(levels.iloc[-1] / levels.iloc[0] - 1) > 5 * abs(fee_only.iloc[-1] / fee_only.iloc[0] - 1)


def test_a_bnb_fee_without_a_bnb_price_is_kept_and_counted_not_zeroed(imported):
    Candle.objects.filter(symbol__name="BNBETH").delete()
    recompute_run(symbol_names=["XRPETH"], as_of=AS_OF)
    snapshot = SizingSnapshot.objects.get(symbol__name="XRPETH", as_of=AS_OF)
    bnb_fills = sum(1 for row in imported if row["commissionAsset"] == "BNB")
    assert snapshot.unconverted_fee_count == bnb_fills > 0
    converted = sum(float(r["commission"]) * (float(r["price"]) if r["commissionAsset"] == "XRP" else 1.0)
                    for r in imported if r["commissionAsset"] != "BNB")
    assert snapshot.fees_quote == pytest.approx(converted, rel=1e-9)
