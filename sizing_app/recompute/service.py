"""Recompute: score symbols for one as-of bucket and persist one snapshot per symbol.

A chunk reads its inputs in bulk and writes its snapshots in one transaction; the unique
(symbol, as_of) key makes a duplicate run, a redelivery or a second beat harmless.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import sizing_settings
from ..domain import scoring
from ..models import RecomputeRun, SizingSnapshot, Symbol
from ..selectors import inputs as selectors
from ..sizing.hot_state import hot_state

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 250
ERROR_TEXT_LIMIT = 500


def bucket_for(moment: datetime, interval_seconds: int | None = None) -> datetime:
    """The start of the recompute bucket holding `moment` (UTC, aligned to the epoch)."""
    interval = interval_seconds or sizing_settings().recompute_seconds
    epoch_seconds = math.floor(moment.timestamp())
    return datetime.fromtimestamp(epoch_seconds - epoch_seconds % interval, tz=UTC)


def run_start(
    *, trigger: str, as_of: datetime, symbol_ids: list[int], chunk_size: int, task_id: str = ""
) -> RecomputeRun | None:
    """Open a run for a bucket; None when a scheduled run already holds that bucket."""
    chunks_total = math.ceil(len(symbol_ids) / chunk_size)
    try:
        with transaction.atomic():
            run = RecomputeRun.objects.create(
                trigger=trigger, as_of=as_of, started_at=timezone.now(), symbols_total=len(symbol_ids),
                chunks_total=chunks_total, task_id=task_id,
            )
    except IntegrityError:
        logger.info("a scheduled run already holds bucket %s; nothing to do", as_of.isoformat())
        return None
    if chunks_total == 0:
        _run_close(run)
        run.save()
    return run


class AsOfInFuture(ValueError):
    """A bucket dated beyond now plus the allowed clock skew: it would shadow every fresh snapshot."""


def as_of_not_in_future(as_of: datetime) -> None:
    """Refuse an as_of beyond now + SIZING_MAX_CLOCK_SKEW_SECONDS (a typo, or a clock run ahead)."""
    skew = sizing_settings().max_clock_skew_seconds
    limit = timezone.now() + timedelta(seconds=skew)
    if as_of > limit:
        raise AsOfInFuture(
            f"as_of {as_of.isoformat()} is in the future (now {timezone.now().isoformat(timespec='seconds')}, "
            f"allowed skew {skew} s): a snapshot dated ahead would be computed from data that does not exist "
            "yet. Use a past or the current time (omit --as-of for the current bucket); if this host's clock "
            "is wrong, fix it (NTP) first."
        )


def _run_close(run: RecomputeRun) -> None:
    if run.symbols_failed == 0:
        run.status = RecomputeRun.Status.OK
    elif run.symbols_ok + run.symbols_existing == 0:  # kept snapshots were computed fine too
        run.status = RecomputeRun.Status.FAILED
    else:
        run.status = RecomputeRun.Status.PARTIAL
    run.finished_at = timezone.now()


def runs_abandon_stale(*, older_than: timedelta) -> int:
    """Close runs still 'running' long after any chunk could have finished (a chunk was lost).

    "Long" either way round: a run that started more than `older_than` *ahead* of this clock was
    started before the clock stepped back, and waiting for the clock to catch up would block
    scheduled runs for as long as it had run ahead.
    """
    now = timezone.now()
    abandoned = 0
    out_of_window = Q(started_at__lt=now - older_than) | Q(started_at__gt=now + older_than)
    for run in RecomputeRun.objects.filter(out_of_window, status=RecomputeRun.Status.RUNNING):
        run.status = RecomputeRun.Status.FAILED
        run.finished_at = timezone.now()
        run.errors = {**run.errors, "_run": f"abandoned: {len(run.chunks_done)}/{run.chunks_total} chunks recorded"}
        run.save(update_fields=["status", "finished_at", "errors"])
        abandoned += 1
    return abandoned


def _moment(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def _snapshot_from(symbol: Symbol, evaluation: scoring.Evaluation, *, as_of, run_id, computed_at) -> SizingSnapshot:
    values = evaluation.metrics
    return SizingSnapshot(
        symbol=symbol, as_of=as_of, computed_at=computed_at, run_id=run_id, computed_live=computed_live(as_of,
                                                                                                        computed_at),
        candle_count=values["candle_count"], fill_count=values["fill_count"],
        order_count=values["order_count"], active_days=values["active_days"],
        last_close=values["last_close"], atr_pct=values["atr_pct"],
        atr_regime_ratio=values["atr_regime_ratio"], realized_volatility=values["realized_volatility"],
        sharpe_7d=values["sharpe_7d"], market_sharpe_7d=values["market_sharpe_7d"],
        max_drawdown=values["max_drawdown"], slippage_bps=values["slippage_bps"],
        fill_rate=values["fill_rate"], maker_ratio=values["maker_ratio"],
        capital=values["capital"], position_qty=values["position_qty"], avg_cost=values["avg_cost"],
        realized_pnl=values["realized_pnl"], fees_quote=values["fees_quote"],
        unconverted_fee_count=values["unconverted_fee_count"], unrealized_pnl=values["unrealized_pnl"],
        equity=values["equity"], source_realized_pnl=values["source_realized_pnl"],
        last_candle_at=_moment(values["last_candle_at_ms"]), last_fill_at=_moment(values["last_fill_at_ms"]),
        inverse_vol_multiplier=evaluation.inverse_vol_multiplier,
        regime_multiplier=evaluation.regime_multiplier, sharpe_multiplier=evaluation.sharpe_multiplier,
        score=evaluation.score, components=evaluation.components,
        raw_size_factor=evaluation.raw_size_factor, size_factor=evaluation.size_factor,
        status=evaluation.status,
    )


def computed_live(as_of: datetime, computed_at: datetime) -> bool:
    """Whether a snapshot was computed as its bucket happened, not backfilled later.

    Live: read within one recompute interval of as_of, so what it saw is what sizing could have
    seen. A backfill reads only what was true at as_of too, but data imported since (late fills,
    a repaired candle feed) may differ from what the engine was sized on then.
    """
    return (computed_at - as_of).total_seconds() <= sizing_settings().recompute_seconds


def _evaluate_chunk(symbols: list[Symbol], as_of: datetime, run_id: int | None):
    config = sizing_settings()
    inputs = selectors.symbol_inputs_bulk(symbols=symbols, as_of=as_of)
    previous = selectors.previous_factors(symbol_ids=[symbol.pk for symbol in symbols], as_of=as_of)
    computed_at = timezone.now()
    snapshots, errors = [], {}
    for symbol in symbols:
        previous_factor, previous_as_of = previous.get(symbol.pk, (None, None))
        hours = (as_of - previous_as_of).total_seconds() / 3600 if previous_as_of is not None else 0.0
        try:
            evaluation = scoring.evaluate(
                inputs[symbol.pk], previous_factor=previous_factor, hours_since_previous=hours,
                target_volatility=config.target_volatility, step_per_hour=config.max_step_per_hour,
                factor_min=config.factor_min, factor_max=config.factor_max,
            )
        except Exception as exc:  # one bad symbol must not stop the others
            logger.exception("recompute failed for %s", symbol.name)
            errors[symbol.name] = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]
            continue
        snapshots.append(_snapshot_from(symbol, evaluation, as_of=as_of, run_id=run_id, computed_at=computed_at))
    return snapshots, errors


def chunk_recompute(*, run_id: int, chunk_index: int, symbol_ids: list[int]) -> bool:
    """Compute one chunk of a run and commit its snapshots and its tally together.

    Idempotent: a chunk already recorded (a redelivered message) changes nothing and returns
    False. Killed before the commit, the chunk leaves no trace and its redelivery redoes it.
    """
    run = RecomputeRun.objects.get(pk=run_id)
    if run.status != RecomputeRun.Status.RUNNING or chunk_index in run.chunks_done:
        return False  # recorded already, or the run was closed (abandoned) while this waited
    symbols = list(Symbol.objects.filter(pk__in=symbol_ids).order_by("pk"))
    try:
        snapshots, errors = _evaluate_chunk(symbols, run.as_of, run_id)
    except Exception as exc:  # the chunk's reads failed: record every symbol of it as failed
        logger.exception("recompute chunk %s of run %s failed", chunk_index, run_id)
        snapshots = []
        errors = {symbol.name: f"chunk failed: {type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT] for symbol in symbols}
    return _chunk_record(run_id, chunk_index, snapshots, errors)


def chunk_not_queued(*, run_id: int, chunk_index: int, symbol_ids: list[int], reason: str) -> bool:
    """Record a chunk whose message could not be sent (the broker went away mid fan-out) as failed.

    Its symbols count as failed with the reason, so the run closes once its queued chunks are
    done (at once if none was) instead of staying open, and blocking scheduled runs, until abandoned.
    """
    names = Symbol.objects.filter(pk__in=symbol_ids).order_by("pk").values_list("name", flat=True)
    errors = {name: f"not queued: {reason}"[:ERROR_TEXT_LIMIT] for name in names}
    return _chunk_record(run_id, chunk_index, [], errors)


def _chunk_record(run_id: int, chunk_index: int, snapshots: list[SizingSnapshot], errors: dict[str, str]) -> bool:
    """Commit a chunk's snapshots and its tally together, once; close the run with its last chunk."""
    with transaction.atomic():
        run = RecomputeRun.objects.select_for_update().get(pk=run_id)
        if run.status != RecomputeRun.Status.RUNNING or chunk_index in run.chunks_done:
            return False
        # ignore_conflicts: the first writer of a (symbol, bucket) wins, later ones change nothing.
        SizingSnapshot.objects.bulk_create(snapshots, ignore_conflicts=True, batch_size=500)
        # Counted from what is now on record as this run's, so a bucket that already had a
        # symbol's snapshot (a manual run after the scheduled one) does not pass for a new one.
        written = SizingSnapshot.objects.filter(
            run_id=run_id, symbol_id__in=[snapshot.symbol_id for snapshot in snapshots],
        ).count() if snapshots else 0
        run.symbols_ok += written
        run.symbols_existing += len(snapshots) - written
        run.symbols_failed += len(errors)
        run.errors = {**run.errors, **errors}
        run.chunks_done = sorted({*run.chunks_done, chunk_index})
        if len(run.chunks_done) >= run.chunks_total:
            _run_close(run)
        run.save()
        # This process sees its own writes at once; the others within the cache's refresh period.
        hot_state.invalidate()
        transaction.on_commit(hot_state.invalidate)
    return True


def chunked(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def recompute_run(
    *, symbol_names: list[str] | None = None, as_of: datetime | None = None, trigger: str = "manual",
    chunk_size: int = DEFAULT_CHUNK_SIZE, task_id: str = "",
    progress: Callable[[int, int], None] | None = None, workers: int | None = None,
) -> RecomputeRun | None:
    """Recompute the given (default: all active) symbols for a bucket, chunk by chunk, in this process.

    On PostgreSQL the chunks run on `workers` threads (default: one per CPU), each with its own
    connection; see _chunks_in_threads. The Celery path fans the same chunks out over workers.
    """
    as_of = as_of or bucket_for(timezone.now())
    as_of_not_in_future(as_of)
    ids = symbol_ids_for_run(symbol_names)
    run = run_start(trigger=trigger, as_of=as_of, symbol_ids=ids, chunk_size=chunk_size, task_id=task_id)
    if run is None:
        return None
    chunks = list(chunked(ids, chunk_size))
    workers = min(len(chunks), default_workers() if workers is None else workers)
    if workers > 1 and _threads_can_share_the_work():
        _chunks_in_threads(run.pk, chunks, workers, progress, len(ids))
    else:
        for index, chunk in enumerate(chunks):
            chunk_recompute(run_id=run.pk, chunk_index=index, symbol_ids=chunk)
            if progress:
                progress(min((index + 1) * chunk_size, len(ids)), len(ids))
    run.refresh_from_db()
    return run


def default_workers() -> int:
    """How many chunks recompute_run runs at once on PostgreSQL: one per CPU."""
    return os.cpu_count() or 1


def _threads_can_share_the_work() -> bool:
    """Whether other connections may run chunks: PostgreSQL, outside any transaction of ours.

    Inside an atomic block (a caller's transaction, a test's) other connections could not see its
    uncommitted rows. SQLite has one writer at a time, so its chunks would only queue for the lock.
    """
    connection = transaction.get_connection()
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _chunks_in_threads(
    run_id: int, chunks: list[list[int]], workers: int,
    progress: Callable[[int, int], None] | None, total: int,
) -> None:
    """Run a run's chunks on `workers` threads, each taking the next chunk until none is left.

    Threads, not processes: about half of a chunk's time is PostgreSQL reading and writing, during
    which the thread holds no GIL, so two threads keep two cores busy; and everything stays in
    this process (its hot state learns of the new snapshots, nothing to fork or set up again).
    Each thread uses its own database connection and closes it when it is done.
    """
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for item in enumerate(chunks):
        pending.put(item)
    lock = threading.Lock()
    finished = {"symbols": 0}
    failed = threading.Event()

    def work() -> None:
        try:
            while not failed.is_set():
                try:
                    index, chunk = pending.get_nowait()
                except queue.Empty:
                    return
                chunk_recompute(run_id=run_id, chunk_index=index, symbol_ids=chunk)
                with lock:
                    finished["symbols"] += len(chunk)
                    if progress:
                        progress(finished["symbols"], total)
        except BaseException:
            failed.set()  # like the sequential loop: the first failure stops the run's other chunks
            raise
        finally:
            connections.close_all()  # this thread's connections only: they are per thread

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recompute") as pool:
        futures = [pool.submit(work) for _ in range(workers)]
    for future in futures:
        future.result()  # re-raise a worker's error here, as the sequential loop would


def symbol_ids_for_run(symbol_names: list[str] | None) -> list[int]:
    """Ids of the named symbols (all must exist) or of every active symbol."""
    symbols = selectors.symbols_for_recompute(names=symbol_names)
    if symbol_names:
        missing = sorted(set(symbol_names) - {symbol.name for symbol in symbols})
        if missing:
            raise ValueError(f"Unknown symbol(s): {', '.join(missing)}. Create them or import their data first.")
    return [symbol.pk for symbol in symbols]
