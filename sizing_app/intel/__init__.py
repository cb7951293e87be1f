"""The plan's `intel` package: see symbol_score.py (a compatibility module)."""
