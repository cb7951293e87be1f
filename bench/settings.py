"""Benchmark-only settings: the product's settings plus a plain constant-JSON baseline route."""
from project.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
