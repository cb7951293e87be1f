"""Importers for users' own market data and fills: pure parsers plus the services that write them.

`candles_import` and `fills_import` (in `.services`) are re-exported lazily, so the parsers stay
importable without Django.
"""

__all__ = ["ImportReport", "candles_import", "fills_import"]


def __getattr__(name):
    if name in ("candles_import", "fills_import"):
        from . import services

        return getattr(services, name)
    if name == "ImportReport":
        from .report import ImportReport

        return ImportReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
