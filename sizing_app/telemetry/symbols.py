"""Registering symbols with their base and quote assets: one rule for importers, the API and sizing.

A symbol is registered the first time data or a sizing request names it. Its assets come from the
source where it says (a pair such as "BTC/USDT", an exchange's symbol list), or from splitting the
bare name against the known quote assets; a name that cannot be split surely is refused.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from ..domain.assets import AssetsUnknown, split_symbol
from ..models import Symbol
from ..sizing.validation import validate_symbol


def _assets(name: str, base: str, quote: str) -> tuple[str, str]:
    if base and quote:
        if base + quote != name:
            raise ValueError(f"{base}/{quote} is not the pair of {name!r}: base + quote must spell the symbol")
        return base, quote
    return split_symbol(name)


@transaction.atomic
def symbol_register(*, name: str, base_asset: str = "", quote_asset: str = "") -> tuple[Symbol, bool]:
    """(the symbol, whether it was created). Raises ValueError when its assets cannot be known or clash.

    A registered symbol whose assets were unknown takes them from the first source that names them;
    a source naming other assets than recorded is refused, never silently believed.
    """
    validate_symbol(name)
    symbol = Symbol.objects.select_for_update().filter(name=name).first()
    if symbol is None:
        base, quote = _assets(name, base_asset, quote_asset)
        return Symbol.objects.create(name=name, base_asset=base, quote_asset=quote), True
    if base_asset and quote_asset:
        given = _assets(name, base_asset, quote_asset)
        recorded = (symbol.base_asset, symbol.quote_asset)
        if recorded == ("", ""):
            symbol.base_asset, symbol.quote_asset = given
            symbol.save(update_fields=["base_asset", "quote_asset"])
        elif recorded != given:
            raise ValueError(f"{name} is registered as {recorded[0]}/{recorded[1]}, this source says "
                             f"{given[0]}/{given[1]}: correct the source, or the symbol in admin")
    return symbol, False


def symbols_import_exchange_info(path: str | Path) -> dict[str, int]:
    """Register the symbols of an exchange's symbol list (Binance exchangeInfo: symbols[].symbol/baseAsset/quoteAsset).

    Returns {"created", "updated", "unchanged"}; refuses the whole file (nothing written) on a bad entry.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = document["symbols"] if isinstance(document, dict) else document
        pairs = [(entry["symbol"], entry["baseAsset"], entry["quoteAsset"]) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an exchange symbol list (expected {{\"symbols\": [{{\"symbol\", "
                         f"\"baseAsset\", \"quoteAsset\"}}]}}): {exc}") from None
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        for name, base, quote in pairs:
            before = Symbol.objects.filter(name=name).values_list("base_asset", "quote_asset").first()
            try:
                _, created = symbol_register(name=str(name).upper(), base_asset=str(base).upper(),
                                             quote_asset=str(quote).upper())
            except AssetsUnknown as exc:  # pragma: no cover - both assets are given
                raise ValueError(str(exc)) from None
            if created:
                counts["created"] += 1
            elif before == ("", ""):
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts
