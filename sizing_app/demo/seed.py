"""Seeding the demo: write the demo market's rows once (a second run changes nothing), then its snapshots.

Same seed and end give the same rows, so `seed_demo` can run twice; the recompute replay fills the charts.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import sizing_settings, snapshot_is_stale
from ..models import Candle, Fill, Order, SizingSnapshot, Symbol
from ..recompute.service import bucket_for, recompute_run
from ..selectors import inputs as selectors
from ..telemetry.symbols import symbol_register
from .market import (
    CANDLE_INTERVAL,
    DEFAULT_DAYS,
    DEFAULT_HISTORY_HOURS,
    DEFAULT_SEED,
    DEMO_CAPITAL,
    DEMO_ID_PREFIX,
    HOUR,
    MAX_DAYS,
    DemoSymbol,
    SymbolRows,
    demo_symbol_rows,
    demo_symbols_resolve,
)


class DemoConflictError(ValueError):
    """A demo symbol already holds different candles, orders or fills in the demo window."""


@dataclass(frozen=True)
class DemoProgress:
    """Reported after each step: phase "symbols" (label: the symbol) or "snapshots" (label: the bucket)."""

    phase: str
    done: int
    total: int
    label: str


@dataclass(frozen=True)
class DemoSummary:
    """What `demo_seed` left in the database.

    candles / orders / fills: rows of the demo set (created_*: of those, inserted by this call).
    snapshots_created / runs: written by this call's recompute replay. latest_factors: each
    symbol's latest persisted size_factor; stale: whether the newest of them is past max age.
    """

    start: datetime
    end: datetime
    seed: int
    symbols: list[str]
    candles: int
    orders: int
    fills: int
    created_candles: int
    created_orders: int
    created_fills: int
    snapshots_total: int
    snapshots_created: int
    runs: int
    latest_as_of: datetime | None
    stale: bool
    latest_factors: dict[str, float]
    warnings: list[str]

    @property
    def sized_up(self) -> dict[str, float]:
        return {name: factor for name, factor in self.latest_factors.items() if factor > 1.005}

    @property
    def sized_down(self) -> dict[str, float]:
        return {name: factor for name, factor in self.latest_factors.items() if factor < 0.995}


def _existing_rows(symbol: Symbol, rows: SymbolRows, *, start: datetime, end: datetime) -> tuple[int, int, int]:
    """How many of the rows are already stored; raises DemoConflictError if anything else is there.

    ignore_conflicts would silently keep a different row under the same key, so every stored row
    in the window (and every demo-prefixed one) must be one this call would write.
    """
    expected_closes = {candle.open_time: candle.close for candle in rows.candles}
    stored_candles = Candle.objects.filter(
        symbol=symbol, interval=CANDLE_INTERVAL, open_time__gte=start, open_time__lt=end,
    ).values_list("open_time", "close")
    candle_count = 0
    for open_time, close in stored_candles:
        expected = expected_closes.get(open_time)
        if expected is None or not math.isclose(close, expected, rel_tol=1e-12):
            raise DemoConflictError(_conflict_message(symbol.name, "candles", start, end))
        candle_count += 1

    expected_orders = {
        (order.client_order_id, order.submitted_at, order.status, order.filled_qty) for order in rows.orders
    }
    stored_orders = set(Order.objects.filter(symbol=symbol).filter(
        Q(submitted_at__gte=start, submitted_at__lt=end) | Q(client_order_id__startswith=DEMO_ID_PREFIX)
    ).values_list("client_order_id", "submitted_at", "status", "filled_qty"))
    if not stored_orders <= expected_orders:
        raise DemoConflictError(_conflict_message(symbol.name, "orders", start, end))

    expected_fills = {(fill.trade_id, fill.executed_at, fill.qty, fill.price) for _, fill in rows.fills}
    stored_fills = set(Fill.objects.filter(symbol=symbol).filter(
        Q(executed_at__gte=start, executed_at__lt=end) | Q(trade_id__startswith=DEMO_ID_PREFIX)
    ).values_list("trade_id", "executed_at", "qty", "price"))
    if not stored_fills <= expected_fills:
        raise DemoConflictError(_conflict_message(symbol.name, "fills", start, end))
    return candle_count, len(stored_orders), len(stored_fills)


def _conflict_message(name: str, table: str, start: datetime, end: datetime) -> str:
    return (
        f"{name} already holds other {table} around {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC "
        "(a demo seeded with another --end/--seed, or imported data). Rerun with --reset to replace the "
        "demo symbols' candles, orders and fills, or with the --end and --seed used before."
    )


def _symbol_seed(spec: DemoSymbol, *, start: datetime, end: datetime, days: int, seed: int,
                 capital_base: float | None) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Write one symbol's demo rows in one transaction; returns (rows in set, rows inserted)."""
    with transaction.atomic():
        symbol, _ = symbol_register(name=spec.name, base_asset=spec.name[:-len(spec.quote)], quote_asset=spec.quote)
        # The demo desk trades a few percent of this per round trip; the scoring measures returns
        # against the capital set, or (unset) the largest notional held, like any symbol's.
        rows = demo_symbol_rows(spec, end=end, days=days, seed=seed,
                                capital_base=symbol.capital_base or capital_base or DEMO_CAPITAL)
        stored = _existing_rows(symbol, rows, start=start, end=end)
        for row in (*rows.candles, *rows.orders, *(fill for _, fill in rows.fills)):
            row.symbol = symbol
        # Keyed by the unique constraints, so rows already stored (checked equal above) are skipped.
        Candle.objects.bulk_create(rows.candles, ignore_conflicts=True, batch_size=1000)
        Order.objects.bulk_create(rows.orders, ignore_conflicts=True, batch_size=1000)
        # ignore_conflicts returns no primary keys, so fills find their orders by client id.
        order_ids = dict(Order.objects.filter(
            symbol=symbol, client_order_id__startswith=f"{DEMO_ID_PREFIX}{seed}-",
        ).values_list("client_order_id", "pk"))
        for client_order_id, fill in rows.fills:
            fill.order_id = order_ids[client_order_id]
        Fill.objects.bulk_create([fill for _, fill in rows.fills], ignore_conflicts=True, batch_size=1000)
    totals = (len(rows.candles), len(rows.orders), len(rows.fills))
    return totals, tuple(total - already for total, already in zip(totals, stored))


def demo_history_buckets(*, end: datetime, hours: int, now: datetime) -> list[datetime]:
    """Hourly buckets of the last `hours` up to `end`, then the current bucket if `end` is this hour."""
    buckets = [end - offset * HOUR for offset in range(hours - 1, -1, -1)]
    if end <= now < end + HOUR:
        current = bucket_for(now)
        if not buckets or current > buckets[-1]:
            buckets.append(current)
    return buckets


def _snapshots_replay(*, names: list[str], buckets: list[datetime],
                      report: Callable[[str, int, int, str], None]) -> int:
    """Recompute every bucket not yet complete, oldest first, so the step limit walks the factors."""
    per_bucket = Counter(
        SizingSnapshot.objects.filter(symbol__name__in=names, as_of__in=buckets).values_list("as_of", flat=True)
    )
    todo = [bucket for bucket in buckets if per_bucket[bucket] < len(names)]
    for done, as_of in enumerate(todo, start=1):
        recompute_run(symbol_names=names, as_of=as_of, trigger="seed_demo")
        report("snapshots", done, len(todo), f"{as_of:%Y-%m-%d %H:%M}")
    return len(todo)


def demo_reset(*, symbols: list[str] | None = None) -> dict[str, int]:
    """Delete the demo symbols' candles, orders and fills (imported ones too).

    Snapshots, recompute runs and sizing decisions are append-only and stay.
    """
    names = [spec.name for spec in demo_symbols_resolve(symbols)]
    with transaction.atomic():
        # Fills first: deleting orders first would only null the fills' order links.
        fills, _ = Fill.objects.filter(symbol__name__in=names).delete()
        orders, _ = Order.objects.filter(symbol__name__in=names).delete()
        candles, _ = Candle.objects.filter(symbol__name__in=names).delete()
    return {"candles": candles, "orders": orders, "fills": fills}


def demo_seed(
    *, end: datetime, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED, symbols: list[str] | None = None,
    history_hours: int = DEFAULT_HISTORY_HOURS, progress: Callable[[DemoProgress], None] | None = None,
) -> DemoSummary:
    """Seed the demo set ending at the last full hour at or before `end`, then replay the recompute.

    Deterministic in (end, days, seed): a second call with the same arguments inserts nothing
    and recomputes only buckets not yet stored. `end` must be timezone-aware and not in the
    future. The snapshot history covers the last `history_hours` hourly buckets, plus the
    current recompute bucket when `end` is the current hour, so the latest factor is fresh;
    an `end` further back leaves the latest snapshot as old as `end` (stale for sizing).
    """
    if timezone.is_naive(end):
        raise ValueError("end must be timezone-aware (UTC).")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be within 1..{MAX_DAYS}, got {days}.")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    if history_hours < 0:
        raise ValueError(f"history_hours must be non-negative, got {history_hours}.")
    now = timezone.now()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if end > now:
        raise ValueError(f"end {end:%Y-%m-%d %H:%M} UTC is in the future.")
    start = end - days * HOUR * 24
    specs = demo_symbols_resolve(symbols)
    names = [spec.name for spec in specs]
    config = sizing_settings()

    def report(phase: str, done: int, total: int, label: str) -> None:
        if progress is not None:
            progress(DemoProgress(phase=phase, done=done, total=total, label=label))

    totals, created = [0, 0, 0], [0, 0, 0]
    for done, spec in enumerate(specs, start=1):
        symbol_totals, symbol_created = _symbol_seed(
            spec, start=start, end=end, days=days, seed=seed, capital_base=config.capital_base,
        )
        totals = [a + b for a, b in zip(totals, symbol_totals)]
        created = [a + b for a, b in zip(created, symbol_created)]
        report("symbols", done, len(specs), spec.name)

    snapshots_before = SizingSnapshot.objects.filter(symbol__name__in=names).count()
    buckets = demo_history_buckets(end=end, hours=min(history_hours, days * 24), now=now)
    runs = _snapshots_replay(names=names, buckets=buckets, report=report)
    snapshots_total = SizingSnapshot.objects.filter(symbol__name__in=names).count()

    latest = {name: selectors.snapshot_latest(symbol=name) for name in names}
    latest_as_of = max((snapshot.as_of for snapshot in latest.values() if snapshot), default=None)
    warnings = []
    if config.candle_interval != CANDLE_INTERVAL:
        warnings.append(
            f"SIZING_CANDLE_INTERVAL is {config.candle_interval!r}: the recompute ignores the demo's "
            f"{CANDLE_INTERVAL} candles."
        )
    return DemoSummary(
        start=start, end=end, seed=seed, symbols=names,
        candles=totals[0], orders=totals[1], fills=totals[2],
        created_candles=created[0], created_orders=created[1], created_fills=created[2],
        snapshots_total=snapshots_total, snapshots_created=snapshots_total - snapshots_before, runs=runs,
        latest_as_of=latest_as_of,
        stale=latest_as_of is None or snapshot_is_stale((timezone.now() - latest_as_of).total_seconds()),
        latest_factors={name: snapshot.size_factor for name, snapshot in latest.items() if snapshot},
        warnings=warnings,
    )
