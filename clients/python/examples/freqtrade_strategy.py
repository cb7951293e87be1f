"""A freqtrade strategy that sizes every entry through the adaptive position sizing service.

Copy this file into freqtrade's user_data/strategies/, install the client into freqtrade's
environment (pip install ./clients/python from the service's repository), and add to the bot's
config (or set SIZING_SERVICE_URL and SIZING_SERVICE_TOKEN in its environment):

    "sizing_service": {"url": "http://127.0.0.1:8000", "token": "<engine-role API token>"}

custom_stake_amount asks the service to size freqtrade's proposed stake, clamps the answer to
the exchange's and the wallet's limits, and falls back to the proposed stake whenever the
service gives no size, so a sizing outage never stops the bot. Every size used is on the
service's ledger; a fallback is logged instead.

The signal methods are placeholders: put your strategy's own indicators and signals there.
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from freqtrade.strategy import IStrategy
from pandas import DataFrame
from sizing_client import RetryPolicy, SizingClient, SizingClientError, SizingUnavailable, Throttled

logger = logging.getLogger(__name__)

# freqtrade's RunMode values (a str enum) whose orders are real or paper: only those are sized and
# recorded. A backtest or hyperopt replays months of entries and must not write the compliance ledger.
SIZED_RUNMODES = ("live", "dry_run")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def service_symbol(pair: str) -> str:
    """freqtrade's pair "BTC/USDT" (futures: "BTC/USDT:USDT") as the service's symbol "BTCUSDT"."""
    base, _, quote = pair.partition("/")
    return (base + quote.split(":", 1)[0]).upper()


def candle_open(moment: datetime, timeframe: str) -> datetime:
    """The open (UTC) of the `timeframe` candle that `moment` falls in, e.g. 12:03:17 -> 12:00:00 for "5m".

    freqtrade passes datetime.now() as current_time in live mode, so two calls for the same entry
    a few seconds apart differ; the candle they fall in does not.
    """
    seconds = int(timeframe[:-1]) * UNIT_SECONDS[timeframe[-1]]
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def entry_order_ref(bot: str, pair: str, side: str, current_time: datetime, timeframe: str) -> str:
    """One key per (bot, pair, side, candle): freqtrade asking again for the same entry gets the same size back.

    The service keys idempotency on (its API user, order_ref); the bot's name keeps two bots that
    share a token apart.
    """
    return f"{bot}:{service_symbol(pair)}:{side}:{candle_open(current_time, timeframe):%Y%m%dT%H%M%SZ}"


def clamp_stake(stake: float, min_stake: float | None, max_stake: float) -> float:
    """Within what the exchange accepts (min_stake, None when unknown) and what the wallet holds (max_stake)."""
    if min_stake is not None:
        stake = max(stake, min_stake)
    return min(stake, max_stake)


class SizingServiceStrategy(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    stoploss = -0.10
    minimal_roi = {"0": 0.05}

    _sizing: SizingClient | None = None

    def bot_start(self, **kwargs: Any) -> None:
        """Called once by freqtrade before the first loop: one client (one connection) for the bot's life."""
        if self.config.get("runmode") in SIZED_RUNMODES:
            self._sizing = self._make_client()

    def _make_client(self) -> SizingClient:
        options = self.config.get("sizing_service", {})
        url = options.get("url") or os.environ.get("SIZING_SERVICE_URL", "")
        token = options.get("token") or os.environ.get("SIZING_SERVICE_TOKEN", "")
        # custom_stake_amount runs inside freqtrade's trading loop: a call gives up within 3 s and the
        # bot falls back to its proposed stake, rather than miss the entry waiting on the service.
        return SizingClient(url, token, timeout=float(options.get("timeout", 2.0)),
                            connect_timeout=float(options.get("connect_timeout", 1.0)),
                            retry=RetryPolicy(max_attempts=3, deadline=float(options.get("deadline", 3.0))))

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str, **kwargs: Any) -> float:
        if self.config.get("runmode") not in SIZED_RUNMODES:
            return clamp_stake(proposed_stake, min_stake, max_stake)
        if self._sizing is None:  # bot_start not called (an older freqtrade): make it on first use
            self._sizing = self._make_client()
        order_ref = entry_order_ref(self.config.get("bot_name", "freqtrade"), pair, side, current_time,
                                    self.timeframe)
        try:
            decision = self._sizing.size(service_symbol(pair), proposed_stake, order_ref=order_ref)
        except (SizingUnavailable, Throttled) as exc:
            # No size can be had now. Trading the bot's own stake keeps it running; the service never
            # handed this size out, so nothing on the ledger claims it.
            logger.warning("sizing service unavailable for %s, using the proposed stake %s: %s", pair,
                           proposed_stake, exc)
            return clamp_stake(proposed_stake, min_stake, max_stake)
        except SizingClientError as exc:
            # Not an outage (an unknown symbol, this candle's entry already sized with another stake, a bad
            # token...): the same fallback, logged as an error so that it is seen and fixed.
            logger.error("sizing service refused %s (%s), using the proposed stake %s: %s", pair,
                         type(exc).__name__, proposed_stake, exc)
            return clamp_stake(proposed_stake, min_stake, max_stake)
        return clamp_stake(decision.final_size, min_stake, max_stake)

    # Placeholders: the strategy's own signals go here.
    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
