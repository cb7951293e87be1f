"""WSGI entry point for gunicorn and other WSGI servers."""
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db.backends.signals import connection_created

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()


def limit_statement_time(sender, connection, **kwargs):
    """PostgreSQL cancels any statement of this session running past settings.DATABASE_STATEMENT_TIMEOUT.

    Set here, on the web server's sessions only: a statement stuck behind a lock (a stalled session
    holding a chain's lock, a migration's table lock) would hold the gunicorn worker until it is
    killed and the client gets an HTML 500; cancelled, it is the API's JSON 503. Celery workers, beat
    and management commands never load this module: migrate, the recompute and the importers run long
    statements legitimately. Once per connection, not per request (connections live CONN_MAX_AGE).
    """
    if connection.vendor != "postgresql" or not settings.DATABASE_STATEMENT_TIMEOUT:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)",
                       [f"{round(settings.DATABASE_STATEMENT_TIMEOUT * 1000)}ms"])


connection_created.connect(limit_statement_time)
