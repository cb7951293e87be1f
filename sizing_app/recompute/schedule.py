"""The periodic schedule, declared in code so it is reviewed in git.

`manage.py setup_periodic_tasks` makes django-celery-beat's tables match this declaration.
"""
from dataclasses import dataclass, field

from ..conf import sizing_settings

SCHEDULE_PREFIX = "sizing: "


@dataclass(frozen=True)
class PeriodicEntry:
    name: str
    task: str
    every_seconds: int
    kwargs: dict = field(default_factory=dict)
    # A send nobody consumed within one interval is dropped: no backlog storm after an outage.
    expire_seconds: int | None = None


def declared_entries() -> list[PeriodicEntry]:
    interval = sizing_settings().recompute_seconds
    return [
        PeriodicEntry(
            name=f"{SCHEDULE_PREFIX}recompute factors",
            task="sizing_app.tasks.recompute",
            every_seconds=interval,
            kwargs={"trigger": "beat"},
            expire_seconds=interval,
        ),
    ]
