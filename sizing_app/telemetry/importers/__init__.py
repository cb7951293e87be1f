"""Importers for users' own market data and fills: pure parsers, and the services that write them.

The parsers (candle_parsers, fill_parsers, sources, rows) need no Django; candles.py and fills.py
write what they parse (run.py: one transaction per file, rejects, progress).
"""
