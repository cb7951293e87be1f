"""Celery tasks: thin shells around the recompute service; they pass ids, never model instances.

`recompute` (fired by beat) opens a run for the current bucket and fans out `recompute_chunk`s.
"""
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ..conf import sizing_settings
from ..models import RecomputeRun
from . import service as service

DISPATCH_SOFT_LIMIT, DISPATCH_HARD_LIMIT = 60, 90
CHUNK_HARD_LIMIT = settings.SIZING_CHUNK_TIME_LIMIT  # settings check it against the visibility timeout
CHUNK_SOFT_LIMIT = CHUNK_HARD_LIMIT - 60


@shared_task(name="sizing_app.tasks.recompute", soft_time_limit=DISPATCH_SOFT_LIMIT, time_limit=DISPATCH_HARD_LIMIT)
def recompute(*, trigger: str = "beat", symbol_names: list[str] | None = None,
              chunk_size: int = service.DEFAULT_CHUNK_SIZE) -> int | None:
    """Open the current bucket's run and queue its chunks; None when the bucket is taken or busy."""
    interval = sizing_settings().recompute_seconds
    # A run still open after every chunk's hard limit has passed lost a chunk: close it visibly.
    service.runs_abandon_stale(older_than=timedelta(seconds=max(2 * interval, 2 * CHUNK_HARD_LIMIT)))
    if trigger == "beat" and RecomputeRun.objects.filter(
        trigger="beat", status=RecomputeRun.Status.RUNNING
    ).exists():
        return None  # the previous scheduled run is still working: let it finish first
    ids = service.symbol_ids_for_run(symbol_names)
    run = service.run_start(
        trigger=trigger, as_of=service.bucket_for(timezone.now()), symbol_ids=ids, chunk_size=chunk_size,
        task_id=recompute.request.id or "",
    )
    if run is None:
        return None
    chunks = list(service.chunked(ids, chunk_size))
    for index, chunk in enumerate(chunks):
        try:
            recompute_chunk.delay(run_id=run.pk, chunk_index=index, symbol_ids=chunk)
        except Exception as exc:  # the broker went away mid fan-out: this chunk and the rest stay unsent
            reason = f"{type(exc).__name__}: {exc}"
            for unsent_index in range(index, len(chunks)):
                service.chunk_not_queued(run_id=run.pk, chunk_index=unsent_index, symbol_ids=chunks[unsent_index],
                                         reason=reason)
            raise
    return run.pk


@shared_task(
    name="sizing_app.tasks.recompute_chunk",
    # Safe to run twice (the chunk is recorded once), so a message is only acknowledged after the
    # work is committed, and redelivered if the worker dies in the middle.
    acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=CHUNK_SOFT_LIMIT, time_limit=CHUNK_HARD_LIMIT,
)
def recompute_chunk(*, run_id: int, chunk_index: int, symbol_ids: list[int]) -> bool:
    return service.chunk_recompute(run_id=run_id, chunk_index=chunk_index, symbol_ids=symbol_ids)
