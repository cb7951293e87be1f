"""Policy: live / shadow / off per symbol and globally, and overrides; writes in services, resolution apart."""
