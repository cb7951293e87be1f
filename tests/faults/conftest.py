"""Fault tests: real processes (workers, beats, servers, engine clients) killed and restarted.

The process machinery is the integration suite's; its fixtures are re-exported here so both
folders start workers, beats and the test database the same way.
"""
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    beats,
    celery_worker,
    empty_append_only_tables,
    recompute_interval,
    required_services,
    stack,
    worker,
)
