"""Recompute: score every symbol for an as-of bucket and persist its snapshot; the Celery tasks and schedule."""
