"""Recompute: score symbols for one as-of bucket and persist one snapshot per symbol.

A chunk reads its inputs in bulk and writes its snapshots in one transaction; the unique
(symbol, as_of) key makes a duplicate run, a redelivery or a second beat harmless.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timezone as dt_timezone

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import scoring, selectors
from ..conf import sizing_settings
from ..latest import latest_cache
from ..models import RecomputeRun, SizingSnapshot, Symbol

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 250
ERROR_TEXT_LIMIT = 500


def bucket_for(moment: datetime, interval_seconds: int | None = None) -> datetime:
    """The start of the recompute bucket holding `moment` (UTC, aligned to the epoch)."""
    interval = interval_seconds or sizing_settings().recompute_seconds
    epoch_seconds = math.floor(moment.timestamp())
    return datetime.fromtimestamp(epoch_seconds - epoch_seconds % interval, tz=dt_timezone.utc)


def run_start(*, trigger: str, as_of: datetime, symbols_total: int, task_id: str = "") -> RecomputeRun:
    return RecomputeRun.objects.create(
        trigger=trigger, as_of=as_of, started_at=timezone.now(), symbols_total=symbols_total, task_id=task_id
    )


def run_record_chunk(*, run_id: int, ok: int, errors: dict[str, str]) -> None:
    """Add a chunk's outcome to its run (atomic increments: chunks finish in any order)."""
    with transaction.atomic():
        run = RecomputeRun.objects.select_for_update().get(pk=run_id)
        run.symbols_ok = F("symbols_ok") + ok
        run.symbols_failed = F("symbols_failed") + len(errors)
        run.errors = {**run.errors, **errors}
        run.save(update_fields=["symbols_ok", "symbols_failed", "errors"])


def run_finish(*, run_id: int) -> RecomputeRun:
    run = RecomputeRun.objects.get(pk=run_id)
    if run.symbols_failed == 0:
        run.status = RecomputeRun.Status.OK
    elif run.symbols_ok == 0:
        run.status = RecomputeRun.Status.FAILED
    else:
        run.status = RecomputeRun.Status.PARTIAL
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


def _snapshot_from(symbol: Symbol, evaluation: scoring.Evaluation, *, as_of, run_id, computed_at) -> SizingSnapshot:
    values = evaluation.metrics
    return SizingSnapshot(
        symbol=symbol, as_of=as_of, computed_at=computed_at, run_id=run_id,
        candle_count=values["candle_count"], fill_count=values["fill_count"],
        order_count=values["order_count"], active_days=values["active_days"],
        last_close=values["last_close"], atr_pct=values["atr_pct"],
        atr_regime_ratio=values["atr_regime_ratio"], realized_volatility=values["realized_volatility"],
        sharpe_7d=values["sharpe_7d"], market_sharpe_7d=values["market_sharpe_7d"],
        max_drawdown=values["max_drawdown"], slippage_bps=values["slippage_bps"],
        fill_rate=values["fill_rate"], maker_ratio=values["maker_ratio"],
        inverse_vol_multiplier=evaluation.inverse_vol_multiplier,
        regime_multiplier=evaluation.regime_multiplier, sharpe_multiplier=evaluation.sharpe_multiplier,
        score=evaluation.score, components=evaluation.components,
        raw_size_factor=evaluation.raw_size_factor, size_factor=evaluation.size_factor,
        status=evaluation.status,
    )


def snapshots_compute_chunk(*, symbol_ids: list[int], as_of: datetime, run_id: int | None = None) -> tuple[int, dict[str, str]]:
    """Compute and persist one chunk's snapshots; returns (symbols written or already there, errors).

    A symbol whose computation raises is reported and skipped; the others are still written.
    """
    config = sizing_settings()
    symbols = list(Symbol.objects.filter(pk__in=symbol_ids).order_by("pk"))
    inputs = selectors.symbol_inputs_bulk(symbols=symbols, as_of=as_of)
    previous = selectors.previous_factors(symbol_ids=symbol_ids, as_of=as_of)
    computed_at = timezone.now()
    snapshots, errors = [], {}
    for symbol in symbols:
        try:
            evaluation = scoring.evaluate(
                inputs[symbol.pk], previous_factor=previous.get(symbol.pk),
                target_volatility=config.target_volatility, max_step=config.max_step,
                factor_min=config.factor_min, factor_max=config.factor_max,
            )
        except Exception as exc:  # one bad symbol must not stop the others
            logger.exception("recompute failed for %s", symbol.name)
            errors[symbol.name] = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]
            continue
        snapshots.append(_snapshot_from(symbol, evaluation, as_of=as_of, run_id=run_id, computed_at=computed_at))
    with transaction.atomic():
        # ignore_conflicts: the first writer of a (symbol, bucket) wins, later ones change nothing.
        SizingSnapshot.objects.bulk_create(snapshots, ignore_conflicts=True, batch_size=500)
        # This process sees its own writes at once; the others within the cache's refresh period.
        latest_cache.invalidate()
        transaction.on_commit(latest_cache.invalidate)
    return len(snapshots), errors


def chunked(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def recompute_run(
    *, symbol_names: list[str] | None = None, as_of: datetime | None = None, trigger: str = "manual",
    chunk_size: int = DEFAULT_CHUNK_SIZE, task_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> RecomputeRun:
    """Recompute the given (default: all active) symbols for a bucket, in this process."""
    as_of = as_of or bucket_for(timezone.now())
    symbols = selectors.symbols_for_recompute(names=symbol_names)
    if symbol_names:
        missing = sorted(set(symbol_names) - {symbol.name for symbol in symbols})
        if missing:
            raise ValueError(f"Unknown symbol(s): {', '.join(missing)}. Create them or import their data first.")
    run = run_start(trigger=trigger, as_of=as_of, symbols_total=len(symbols), task_id=task_id)
    ids = [symbol.pk for symbol in symbols]
    done = 0
    for chunk in chunked(ids, chunk_size):
        try:
            ok, errors = snapshots_compute_chunk(symbol_ids=chunk, as_of=as_of, run_id=run.pk)
        except Exception as exc:  # a failed chunk (e.g. a lost connection) is recorded, the run goes on
            logger.exception("recompute chunk failed")
            names = Symbol.objects.filter(pk__in=chunk).values_list("name", flat=True)
            ok, errors = 0, {name: f"chunk failed: {type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT] for name in names}
        run_record_chunk(run_id=run.pk, ok=ok, errors=errors)
        done += len(chunk)
        if progress:
            progress(done, len(ids))
    return run_finish(run_id=run.pk)

