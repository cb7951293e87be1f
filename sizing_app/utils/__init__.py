"""The plan's `utils` package: see execution_health.py (a compatibility module)."""
