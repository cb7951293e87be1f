"""Integration tests: a real Celery worker and beat, in their own processes, on the test database.

Eager mode is not a test of Celery; see conftest.py for how the processes are started and stopped.
"""
