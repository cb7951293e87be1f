"""A symbol's base and quote assets: from the name a source gives, or split against known quote assets.

A position is accounted in its quote currency, and a fee paid in the base asset or a third asset is
converted into it, so every symbol needs both. Sources that separate them ("BTC/USDT" in ccxt,
"ETH_BTC" in freqtrade's file names, an exchange's symbol list) are taken at their word; a bare name
("ETHBTC") is split against QUOTE_ASSETS, and refused when no split or more than one fits.
"""
from __future__ import annotations

import re

# Quote assets of the major spot venues, longest first only for reading; a name may end in more than
# one of them (BTCBUSD: BTC/BUSD or BTCB/USD), and then it is ambiguous: refused, never guessed.
QUOTE_ASSETS = (
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "JPY", "AUD",
    "BTC", "ETH", "BNB",
)
_SEPARATOR = re.compile(r"[/_-]")
_ASSET = re.compile(r"[A-Z0-9]{1,16}")


class AssetsUnknown(ValueError):
    """A symbol name whose base and quote cannot be told apart with certainty."""


def split_symbol(name: str) -> tuple[str, str]:
    """(base, quote) of a bare symbol name, by the one quote asset of QUOTE_ASSETS it ends with.

    Raises AssetsUnknown, naming the fix, when none or several fit (the base must keep 2 characters).
    """
    candidates = [(name[: -len(quote)], quote) for quote in QUOTE_ASSETS
                  if name.endswith(quote) and len(name) - len(quote) >= 2]
    if len(candidates) == 1:
        return candidates[0]
    fix = ("name the pair with a separator (e.g. 'ETH/BTC' in the file or --symbol), or register the "
           "exchange's symbol list first (manage.py import_symbols exchangeInfo.json)")
    if not candidates:
        raise AssetsUnknown(f"cannot tell the base and quote assets of {name!r}: it ends in none of the known quote "
                            f"assets ({', '.join(QUOTE_ASSETS)}); {fix}")
    shown = " or ".join(f"{base}/{quote}" for base, quote in candidates)
    raise AssetsUnknown(f"the base and quote assets of {name!r} are ambiguous ({shown}); {fix}")


def pair_of(text: str) -> tuple[str, str] | None:
    """(base, quote) when a source's symbol text names them apart: 'BTC/USDT', 'BTC/USDT:USDT', 'ETH_BTC'."""
    pair = text.strip().split(":", 1)[0].upper()
    parts = _SEPARATOR.split(pair)
    if len(parts) == 2 and all(_ASSET.fullmatch(part) for part in parts):
        return parts[0], parts[1]
    return None
