"""Telemetry intake: candles, orders and fills from exchange files (importers) and the API's bulk posts (ingest)."""
