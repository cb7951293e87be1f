"""The project's Celery app, with chunks that hold their transaction open: for the worker-kill tests.

Started as `celery -A tests.integration.slow_chunk_app worker`. Nothing in sizing_app is changed on
disk; each pool process wraps two module globals of sizing_app.services.recompute when it starts.
A chunk holding a symbol whose name starts with SIZING_TEST_SLOW_PREFIX writes its snapshots and
its tally as usual, then, before committing, drops a JSON marker (its pid and symbols) in
SIZING_TEST_MARKER_DIR and sleeps SIZING_TEST_CHUNK_DELAY seconds: the window in which the test
kills it. Only the first attempt pauses: a redelivered chunk finds its marker and commits at once.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from celery.signals import worker_process_init

from project.celery import app

__all__ = ["app"]

# Let the chunks that are not paused commit first: SQLite has a single writer.
HEAD_START_SECONDS = 1.5

# How long the worker waits for a result from a pool process that died before it declares the
# job lost and, for acks_late + reject_on_worker_lost tasks, requeues it (10 s by default).
app.conf.worker_lost_wait = 1.0


@worker_process_init.connect
def pause_slow_chunks_before_commit(**_):
    from django.db import transaction

    from sizing_app.recompute import service as recompute

    delay = float(os.environ["SIZING_TEST_CHUNK_DELAY"])
    prefix = os.environ.get("SIZING_TEST_SLOW_PREFIX", "SLOW")
    markers = Path(os.environ["SIZING_TEST_MARKER_DIR"])
    pending: dict[str, Path | None] = {"marker": None}
    evaluate = recompute._evaluate_chunk

    def evaluate_and_flag(symbols, as_of, run_id):
        result = evaluate(symbols, as_of, run_id)
        names = sorted(symbol.name for symbol in symbols)
        marker = markers / f"run{run_id}-{'-'.join(names)}.json"
        if any(name.startswith(prefix) for name in names) and not marker.exists():
            pending["marker"] = marker
            time.sleep(HEAD_START_SECONDS)
        return result

    class PauseBeforeCommit:
        def __init__(self, atomic):
            self.atomic = atomic

        def __enter__(self):
            return self.atomic.__enter__()

        def __exit__(self, exc_type, exc, traceback):
            marker, pending["marker"] = pending["marker"], None
            if marker is not None and exc_type is None:
                written = marker.with_suffix(".tmp")
                written.write_text(json.dumps({"pid": os.getpid(), "name": marker.stem}))
                written.rename(marker)  # appears whole: the test reads it as soon as it exists
                time.sleep(delay)
            return self.atomic.__exit__(exc_type, exc, traceback)

    class PausingTransaction:
        """django.db.transaction, except that atomic() blocks pause before they commit."""

        def __getattr__(self, name):
            return getattr(transaction, name)

        def atomic(self, *args, **kwargs):
            return PauseBeforeCommit(transaction.atomic(*args, **kwargs))

    recompute._evaluate_chunk = evaluate_and_flag
    recompute.transaction = PausingTransaction()
