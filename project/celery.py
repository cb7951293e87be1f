"""Celery application: configured from Django settings (CELERY_* names).

Workers and beat both start from this module: `celery -A project worker|beat`.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live in sizing_app.recompute.tasks (their names keep the "sizing_app.tasks." prefix beat has stored).
app.autodiscover_tasks(["sizing_app.recompute"])
