"""Sync django-celery-beat's periodic tasks with the schedule declared in sizing_app.schedule."""
import json

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ...recompute.schedule import SCHEDULE_PREFIX, declared_entries

DECLARED_MARK = "synced from code; declared interval (s): "


def _unchanged_since_last_sync(task: PeriodicTask) -> bool:
    """True when the stored interval is still the one this command last wrote."""
    if not task.description.startswith(DECLARED_MARK) or task.interval is None:
        return False
    declared = task.description[len(DECLARED_MARK):]
    seconds = task.interval.every * {
        IntervalSchedule.SECONDS: 1, IntervalSchedule.MINUTES: 60, IntervalSchedule.HOURS: 3600,
        IntervalSchedule.DAYS: 86400,
    }.get(task.interval.period, 0)
    return declared.isdigit() and int(declared) == seconds


class Command(BaseCommand):
    help = (
        "Create or update the declared periodic tasks and delete ours that the code no longer declares. "
        "An interval edited in admin is kept unless --reset-schedule is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset-schedule", action="store_true",
                            help="Also put every interval back to the declared one (SIZING_RECOMPUTE_SECONDS).")

    @transaction.atomic
    def handle(self, *args, reset_schedule=False, **options):
        declared = declared_entries()
        for entry in declared:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=entry.every_seconds, period=IntervalSchedule.SECONDS
            )
            task = PeriodicTask.objects.filter(name=entry.name).first()
            created = task is None
            if created:
                task = PeriodicTask(name=entry.name, interval=interval)
            elif reset_schedule or _unchanged_since_last_sync(task):
                # Follow the code (e.g. a new SIZING_RECOMPUTE_SECONDS) unless an admin edited it.
                task.interval = interval
            task.description = f"{DECLARED_MARK}{entry.every_seconds}"
            task.task = entry.task
            task.kwargs = json.dumps(entry.kwargs, sort_keys=True)
            task.expire_seconds = entry.expire_seconds
            task.enabled = True if created else task.enabled
            task.save()
            self.stdout.write(f"{'created' if created else 'updated'}: {entry.name} ({task.interval})")
        names = {entry.name for entry in declared}
        stale = PeriodicTask.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=names)
        for task in stale:
            self.stdout.write(f"deleted: {task.name} (no longer declared)")
        stale.delete()
