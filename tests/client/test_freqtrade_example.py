"""The example freqtrade strategy (clients/python/examples/freqtrade_strategy.py), called as freqtrade calls it.

freqtrade is not installed here: a stand-in `freqtrade.strategy` module provides IStrategy with
the one thing the example relies on (its __init__ keeps the config). custom_stake_amount is called
with keyword arguments exactly as freqtradebot.py does, against a live server.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sizing_app.models import SizingDecision
from tests.faults.hostile import fingerprint
from tests.faults.load_clients import free_port

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "clients" / "python" / "examples" / "freqtrade_strategy.py"
# freqtrade's IStrategy.custom_stake_amount (freqtrade/strategy/interface.py, 2024.x), parameter by parameter.
FREQTRADE_SIGNATURE = ["self", "pair", "current_time", "current_rate", "proposed_stake", "min_stake", "max_stake",
                       "leverage", "entry_tag", "side", "kwargs"]
NOON = datetime(2025, 1, 2, 12, 3, 17, tzinfo=UTC)


class IStrategy:
    """Stand-in for freqtrade.strategy.IStrategy: what the example uses of it."""

    def __init__(self, config: dict) -> None:
        self.config = config


@pytest.fixture()
def example(monkeypatch) -> types.ModuleType:
    freqtrade = types.ModuleType("freqtrade")
    strategy = types.ModuleType("freqtrade.strategy")
    strategy.IStrategy = IStrategy
    freqtrade.strategy = strategy
    monkeypatch.setitem(sys.modules, "freqtrade", freqtrade)
    monkeypatch.setitem(sys.modules, "freqtrade.strategy", strategy)
    spec = importlib.util.spec_from_file_location("freqtrade_strategy_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stake(strategy, *, pair: str = "SOL/USDC", current_time: datetime = NOON, proposed_stake: float = 100.0,
          min_stake: float | None = 5.0, max_stake: float = 1000.0, side: str = "long") -> float:
    # Keyword arguments, as freqtradebot.py passes them.
    return strategy.custom_stake_amount(pair=pair, current_time=current_time, current_rate=150.0,
                                        proposed_stake=proposed_stake, min_stake=min_stake, max_stake=max_stake,
                                        leverage=1.0, entry_tag=None, side=side)


def test_the_example_has_freqtrade_s_signature(example):
    parameters = inspect.signature(example.SizingServiceStrategy.custom_stake_amount).parameters
    assert list(parameters) == FREQTRADE_SIGNATURE
    assert parameters["kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_the_guide_shows_the_example_s_method_as_it_is():
    guide = (ROOT / "docs" / "engine.md").read_text()
    excerpts = re.findall(r"<!-- excerpt: clients/python/examples/freqtrade_strategy.py .*?-->\n```python\n(.*?)```",
                          guide, re.S)
    assert len(excerpts) == 1 and "def custom_stake_amount(" in excerpts[0]
    assert excerpts[0] in EXAMPLE.read_text()


@pytest.mark.parametrize(("pair", "symbol"), [("BTC/USDT", "BTCUSDT"), ("ETH/USDC:USDC", "ETHUSDC"),
                                              ("sol/usdc", "SOLUSDC")])
def test_pairs_become_service_symbols(example, pair, symbol):
    assert example.service_symbol(pair) == symbol


@pytest.mark.parametrize(("timeframe", "expected"), [("5m", "12:00:00"), ("1m", "12:03:00"), ("1h", "12:00:00"),
                                                     ("15s", "12:03:15"), ("1d", "00:00:00")])
def test_the_order_ref_is_the_candle_s(example, timeframe, expected):
    assert f"{example.candle_open(NOON, timeframe):%H:%M:%S}" == expected


def config(url: str, token: str, runmode: str = "live") -> dict:
    return {"runmode": runmode, "bot_name": "ft-test", "sizing_service": {"url": url, "token": token}}


@pytest.mark.slow
def test_an_entry_is_sized_by_the_service_once_per_candle_and_clamped(example, server, tokens):
    strategy = example.SizingServiceStrategy(config(server.url, tokens["engine"]))
    strategy.bot_start()
    sized = stake(strategy)
    (row,) = SizingDecision.objects.all()
    assert (row.symbol, row.gross_target, row.caller) == ("SOLUSDC", 100.0, "engine")
    assert row.order_ref == "ft-test:SOLUSDC:long:20250102T120000Z"
    assert sized == row.final_size != 100.0  # the service's size, not the proposed one
    # freqtrade asking again for this entry later in the same candle: the same size, nothing written.
    assert stake(strategy, current_time=NOON.replace(minute=4, second=59)) == sized
    assert SizingDecision.objects.count() == 1
    # The next candle, or the other side, is another entry.
    stake(strategy, current_time=NOON.replace(minute=5))
    stake(strategy, side="short")
    assert SizingDecision.objects.count() == 3
    # BTCUSDC's factor is 0.8: 100 proposed -> 80, then clamped to what the exchange and the wallet allow.
    assert stake(strategy, pair="BTC/USDC", current_time=NOON.replace(hour=13)) == pytest.approx(80.0)
    assert stake(strategy, pair="BTC/USDC", current_time=NOON.replace(hour=14), max_stake=50.0) == 50.0
    assert stake(strategy, pair="BTC/USDC", current_time=NOON.replace(hour=15), min_stake=90.0) == 90.0
    assert stake(strategy, pair="BTC/USDC", current_time=NOON.replace(hour=16), min_stake=None) == pytest.approx(80.0)


@pytest.mark.slow
def test_without_a_service_size_the_proposed_stake_is_used(example, server, tokens):
    strategy = example.SizingServiceStrategy(config(server.url, tokens["engine"]))
    strategy.bot_start()
    before = fingerprint()
    assert stake(strategy, pair="ZZZ/USDT", proposed_stake=40.0) == 40.0  # a pair the service does not know
    assert fingerprint() == before
    sized = stake(strategy, proposed_stake=100.0)
    # The same candle's entry again with another stake: the order_ref conflicts, so the bot's own stake, clamped.
    assert stake(strategy, proposed_stake=300.0, max_stake=250.0) == 250.0
    (row,) = SizingDecision.objects.all()
    assert row.final_size == sized and row.gross_target == 100.0
    server.kill()
    started = time.monotonic()
    assert stake(strategy, current_time=NOON.replace(hour=13), proposed_stake=70.0) == 70.0
    assert time.monotonic() - started < 5.0  # within the example's 3 s deadline (and some slack)
    assert SizingDecision.objects.count() == 1


def test_backtests_never_reach_the_service(example, tokens):
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would fail loudly in the log
    strategy = example.SizingServiceStrategy(config(unreachable, "token", runmode="backtest"))
    strategy.bot_start()
    assert strategy._sizing is None
    assert stake(strategy, proposed_stake=60.0, max_stake=50.0) == 50.0
    assert not SizingDecision.objects.exists()
