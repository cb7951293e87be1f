"""Position accounting by average cost, checked against values computed by hand (to 1e-12 relative)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sizing_app.domain.accounting import (
    FeePrices,
    Fills,
    account,
    default_capital,
    equity_curve,
    fee_in_quote,
    position_at,
)

HOUR = 3_600_000
REL = 1e-12


def fills(*rows, fee_asset=None) -> Fills:
    """rows: (time_ms, side, qty, price[, fee[, fee_asset]])."""
    times, sides, qtys, prices, fees, assets = [], [], [], [], [], []
    for row in rows:
        time_ms, side, qty, price, *rest = row
        times.append(time_ms), sides.append(side), qtys.append(qty), prices.append(price)
        fees.append(rest[0] if rest else 0.0)
        assets.append(rest[1] if len(rest) > 1 else (fee_asset or ""))
    return Fills(time_ms=np.array(times, dtype=np.int64), side=np.array(sides, dtype=float), qty=np.array(qtys),
                 price=np.array(prices), fee=np.array(fees), fee_asset=assets)


def states(ledger):
    return list(zip(ledger.qty.tolist(), ledger.avg_cost.tolist(), ledger.realized_pnl.tolist()))


def approx(values):
    return pytest.approx(values, rel=REL, abs=1e-12)


def test_open_and_add_average_the_entry_price():
    ledger = account(fills((1, +1, 2.0, 100.0), (2, +1, 1.0, 130.0)), base="BTC", quote="USDT")
    # (2 * 100 + 1 * 130) / 3 = 110
    assert states(ledger) == approx([(2.0, 100.0, 0.0), (3.0, 110.0, 0.0)])


def test_partial_then_full_close_realize_against_the_average():
    ledger = account(fills((1, +1, 2.0, 100.0), (2, +1, 1.0, 130.0), (3, -1, 1.5, 120.0), (4, -1, 1.5, 90.0)),
                     base="BTC", quote="USDT")
    # close 1.5 at 120 against 110: +15; close the remaining 1.5 at 90: -30 -> -15; flat
    assert states(ledger) == approx([(2.0, 100.0, 0.0), (3.0, 110.0, 0.0), (1.5, 110.0, 15.0), (0.0, 0.0, -15.0)])


def test_long_to_short_in_one_fill_opens_the_remainder_at_the_fill_price():
    ledger = account(fills((1, +1, 1.0, 100.0), (2, -1, 3.0, 120.0), (3, +1, 0.5, 110.0)), base="BTC", quote="USDT")
    # sell 3 at 120: close 1 (+20), open short 2 at 120; buy 0.5 at 110 closes 0.5 of the short: +5
    assert states(ledger) == approx([(1.0, 100.0, 0.0), (-2.0, 120.0, 20.0), (-1.5, 120.0, 25.0)])


def test_short_add_and_cover():
    ledger = account(fills((1, -1, 1.0, 50.0), (2, -1, 1.0, 60.0), (3, +1, 2.0, 40.0)), base="ETH", quote="USDT")
    assert states(ledger) == approx([(-1.0, 50.0, 0.0), (-2.0, 55.0, 0.0), (0.0, 0.0, 30.0)])


def test_decimal_residue_of_an_exact_close_is_flat():
    ledger = account(fills((1, +1, 0.1, 10.0), (2, +1, 0.2, 10.0), (3, -1, 0.3, 11.0)), base="A", quote="B")
    assert ledger.qty[-1] == 0.0 and ledger.avg_cost[-1] == 0.0
    assert ledger.realized_pnl[-1] == pytest.approx(0.3, rel=1e-12)


def test_fees_in_quote_base_and_a_third_asset():
    bnb = FeePrices(close_ms=np.array([2 * HOUR, 3 * HOUR], dtype=np.int64), price=np.array([300.0, 310.0]))
    ledger = account(
        fills((1, +1, 1.0, 100.0, 0.1, "USDT"),       # 0.1 USDT
              (2, +1, 1.0, 100.0, 0.001, "BTC"),      # 0.001 BTC x 100 = 0.1
              (3 * HOUR, -1, 1.0, 120.0, 0.0005, "BNB"),  # 0.0005 BNB x 310 (the candle closed at 3h) = 0.155
              (3 * HOUR + 1, -1, 1.0, 120.0, 0.2, "")),   # unstated: the quote currency
        base="BTC", quote="USDT", fee_prices={"BNB": bnb})
    assert ledger.fees.tolist() == approx([0.1, 0.2, 0.355, 0.555])
    assert ledger.unconverted_fees.tolist() == [0, 0, 0, 0]


def test_an_unconvertible_fee_is_counted_never_zero():
    early = FeePrices(close_ms=np.array([10 * HOUR], dtype=np.int64), price=np.array([300.0]))
    ledger = account(fills((1, +1, 1.0, 100.0, 0.5, "BNB"), (2, +1, 1.0, 100.0, 0.5, "KCS")),
                     base="BTC", quote="USDT", fee_prices={"BNB": early})  # BNB's first close is after the fill
    assert ledger.unconverted_fees.tolist() == [1, 2]
    assert ledger.fees.tolist() == [0.0, 0.0]
    assert fee_in_quote(0.0, "KCS", price=1.0, time_ms=0, base="A", quote="B", fee_prices={}) == 0.0


def test_equal_time_fills_keep_the_given_order():
    ledger = account(fills((5, +1, 1.0, 100.0), (5, -1, 1.0, 101.0), (5, +1, 1.0, 102.0)), base="A", quote="B")
    assert states(ledger) == approx([(1.0, 100.0, 0.0), (0.0, 0.0, 1.0), (1.0, 102.0, 1.0)])


def test_equity_marks_the_open_position_to_the_last_closed_candle():
    book = fills((1 * HOUR, +1, 2.0, 100.0, 1.0, "USDT"), (5 * HOUR, -1, 1.0, 110.0))
    ledger = account(book, base="BTC", quote="USDT")
    closes_ms = np.array([2 * HOUR, 3 * HOUR, 6 * HOUR], dtype=np.int64)
    closes = np.array([90.0, 95.0, 120.0])
    samples = np.array([0, 1 * HOUR, 2 * HOUR, 4 * HOUR, 5 * HOUR, 7 * HOUR], dtype=np.int64)
    curve = equity_curve(ledger, book.time_ms, closes_ms, closes, samples, capital=1000.0)
    # before the first fill: 1000; at 1h the fill is not yet in (strictly before); at 2h: 1000 - 1 + 2 * (90 - 100)
    # at 4h: mark 95: 1000 - 1 - 10; at 5h the sell is not yet in; at 7h: R 10, q 1 at cost 100, mark 120: +20
    assert curve.tolist() == approx([1000.0, 1000.0, 979.0, 989.0, 989.0, 1029.0])
    position = position_at(ledger, book.time_ms, closes_ms, closes, 7 * HOUR)
    assert (position.qty, position.avg_cost, position.realized_pnl, position.fees) == approx((1.0, 100.0, 10.0, 1.0))
    assert position.unrealized_pnl == approx(20.0) and position.net_pnl == approx(29.0)


def test_equity_is_floored_at_zero():
    book = fills((1, +1, 10.0, 100.0))
    curve = equity_curve(account(book, base="A", quote="B"), book.time_ms, np.array([5], dtype=np.int64),
                         np.array([1.0]), np.array([10], dtype=np.int64), capital=100.0)
    assert curve.tolist() == [0.0]


def test_default_capital_is_the_largest_notional_held():
    book = fills((1, +1, 2.0, 100.0), (2, +1, 1.0, 130.0), (3, -1, 3.0, 120.0), (4, -1, 0.5, 80.0))
    ledger = account(book, base="A", quote="B")
    assert ledger.notional.tolist() == approx([200.0, 330.0, 0.0, 40.0])
    assert default_capital(ledger, book, since_ms=0) == approx(330.0)
    assert default_capital(ledger, book, since_ms=3) == approx(330.0)  # the position carried into the window
    assert default_capital(ledger, book, since_ms=4) == approx(40.0)
    assert default_capital(account(fills(), base="A", quote="B"), fills(), since_ms=0) is None


def test_a_loop_written_from_the_definition_agrees_on_random_books():
    rng = np.random.default_rng(11)
    for _ in range(20):
        count = 200
        sides = rng.choice([-1.0, 1.0], count)
        qtys = rng.uniform(0.01, 3.0, count)
        prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
        book = Fills(time_ms=np.arange(count, dtype=np.int64), side=sides, qty=qtys, price=prices,
                     fee=np.zeros(count), fee_asset=[""] * count)
        ledger = account(book, base="A", quote="B")
        q = a = realized = 0.0
        for s, x, p, got_q, got_a, got_r in zip(sides, qtys, prices, ledger.qty, ledger.avg_cost,
                                                ledger.realized_pnl):
            if q == 0 or math.copysign(1, q) == s:
                a, q = (abs(q) * a + x * p) / (abs(q) + x), q + s * x
            else:
                closed = min(x, abs(q))
                realized += closed * (p - a) * math.copysign(1, q)
                new_q = q + s * x
                if abs(new_q) <= 1e-9 * x:
                    new_q, a = 0.0, 0.0
                elif math.copysign(1, new_q) == s:
                    a = p
                q = new_q
            assert (got_q, got_a, got_r) == pytest.approx((q, a, realized), rel=REL, abs=1e-9)
