"""The demo market: a deterministic simulator behind `manage.py seed_demo`."""
