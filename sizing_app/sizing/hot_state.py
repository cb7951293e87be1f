"""Per-process, in-memory view of every symbol's latest snapshot and of the policy in force.

Sizing reads only this (a dict lookup). It is kept fresh by a cheap poll, every
REFRESH_SECONDS, from a background thread (or inline when the thread is off), so a snapshot
or policy change committed by any process is seen within a second.

Change detection is exact, not time-based: snapshots are only written together with their
run's `chunks_done` in one transaction, so a run whose chunk count grew has new snapshots to
read; policy tables are watched through their history tables' (max id, row count).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Max, Min, OuterRef, Subquery
from django.utils import timezone

from ..conf import sizing_settings
from ..models import RecomputeRun, SizingSnapshot, Symbol
from ..policy.resolution import EffectivePolicy, PolicyState, policy_signature, policy_state_load

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 0.5
LATEST_FIELDS = (
    "id", "symbol__name", "as_of", "score", "size_factor", "components", "inverse_vol_multiplier",
    "regime_multiplier", "sharpe_multiplier", "sharpe_7d", "atr_regime_ratio", "status",
)


@dataclass(frozen=True)
class LatestFactor:
    """The fields of a symbol's latest snapshot that sizing reads, detached from the ORM."""

    snapshot_id: int
    symbol: str
    as_of: datetime
    score: float
    size_factor: float
    components: dict[str, Any]
    inverse_vol_multiplier: float
    regime_multiplier: float
    sharpe_multiplier: float
    sharpe_7d: float | None
    atr_regime_ratio: float | None
    status: str


def _latest_factor(row: tuple) -> LatestFactor:
    return LatestFactor(*row)


def servable_until() -> datetime:
    """The latest as_of sizing may serve: now plus the allowed clock skew.

    A snapshot dated later (a mistyped --as-of, a worker whose clock ran ahead) is never the latest:
    append-only rows cannot be removed, and it would otherwise shadow every fresh snapshot after it.
    """
    return timezone.now() + timedelta(seconds=sizing_settings().max_clock_skew_seconds)


def _load_latest_all() -> dict[str, LatestFactor]:
    limit = servable_until()
    newest = (
        SizingSnapshot.objects.filter(symbol=OuterRef("symbol"), as_of__lte=limit)
        .order_by("-as_of", "-id").values("id")[:1]
    )
    rows = SizingSnapshot.objects.filter(id=Subquery(newest)).values_list(*LATEST_FIELDS)
    return {row[1]: _latest_factor(row) for row in rows}


def _first_future_as_of() -> datetime | None:
    return SizingSnapshot.objects.filter(as_of__gt=servable_until()).aggregate(first=Min("as_of"))["first"]


def _newest(latest: dict[str, LatestFactor]) -> datetime:
    return max((factor.as_of for factor in latest.values()), default=datetime.min.replace(tzinfo=UTC))


class HotState:
    """Latest factors and policy for this process. Reads never touch the database once warm."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything (tests; or after a restore): the next read reloads from scratch."""
        self._latest: dict[str, LatestFactor] = {}
        self._newest_as_of = _newest({})
        self._future_from: datetime | None = None  # the earliest snapshot left out as dated in the future
        self._policy: PolicyState | None = None
        self._policy_signature: tuple | None = None
        self._run_chunks: dict[int, int] = {}  # run id -> chunks already read, for unsettled runs
        self._watch_from_run = 0
        self._refreshed_at = float("-inf")
        self._dirty = True

    def invalidate(self) -> None:
        """This process just wrote snapshots or policy: reload everything on the next read."""
        self._dirty = True

    # Reads ---------------------------------------------------------------------------------
    def latest(self, symbol: str) -> LatestFactor | None:
        self._ensure_fresh()
        return self._latest.get(symbol)

    def latest_all(self) -> dict[str, LatestFactor]:
        self._ensure_fresh()
        return self._latest

    def symbol_active(self, symbol: str) -> bool | None:
        """True for an active symbol, False for an inactive one, None for one that is not registered.

        A name this process has not seen is looked up once: a symbol registered by another process
        is known here before the next poll would have told.
        """
        self._ensure_fresh()
        active = self._policy.symbols_active.get(symbol)
        if active is None:
            active = Symbol.objects.filter(name=symbol).values_list("is_active", flat=True).first()
            if active is not None:
                self.invalidate()
        return active

    def policy(self, symbol: str, now: datetime | None = None) -> EffectivePolicy:
        """The policy in force for symbol at `now` (default: this instant; sizing passes its decision time)."""
        self._ensure_fresh()
        return self._policy.effective(symbol, timezone.now() if now is None else now)

    # Refresh ---------------------------------------------------------------------------------
    def _ensure_fresh(self) -> None:
        if self._dirty:
            with self._lock:  # our own write must be visible to our next read: wait for it
                if self._dirty:
                    self._reload_all()
            return
        if time.monotonic() - self._refreshed_at < self.refresh_seconds:
            return
        if self._thread is None and getattr(settings, "SIZING_BACKGROUND_REFRESH", False):
            self._start_thread()
        if self._thread is not None and self._thread.is_alive():
            return  # the thread polls; a read never waits on the database
        with self._lock:
            if time.monotonic() - self._refreshed_at >= self.refresh_seconds:
                self._poll()

    def _reload_all(self) -> None:
        # Cleared first so that a write landing while we load marks us dirty again; set back if
        # the load fails (database down), or the next read would trust an empty, policy-less state.
        self._dirty = False
        try:
            watch_from = RecomputeRun.objects.aggregate(last=Max("id"))["last"] or 0
            unsettled = dict(
                RecomputeRun.objects.filter(status=RecomputeRun.Status.RUNNING).values_list("id", "chunks_done")
            )
            latest = _load_latest_all()
            future_from = _first_future_as_of()
            signature = policy_signature()
            policy = policy_state_load()
        except BaseException:
            self._dirty = True
            raise
        self._latest, self._policy_signature, self._policy = latest, signature, policy
        self._newest_as_of = _newest(latest)
        self._future_from = future_from
        self._run_chunks = {run_id: len(done) for run_id, done in unsettled.items()}
        self._watch_from_run = min([*self._run_chunks, watch_from + 1])
        self._refreshed_at = time.monotonic()

    def _poll(self) -> None:
        """One or two small queries when nothing changed; reads only what did."""
        limit = servable_until()
        if self._newest_as_of > limit or (self._future_from is not None and self._future_from <= limit):
            # The clock went back behind a snapshot we hold (the newest one not in the future is not
            # in memory), or a snapshot left out as future is no longer ahead: read them all again.
            self._reload_all()
            return
        runs = list(
            RecomputeRun.objects.filter(pk__gte=self._watch_from_run)
            .values_list("id", "status", "chunks_done", "chunks_total")
        )
        changed_runs = [run_id for run_id, _, done, _ in runs if len(done) > self._run_chunks.get(run_id, 0)]
        if changed_runs:
            latest = dict(self._latest)
            rows = SizingSnapshot.objects.filter(run_id__in=changed_runs).values_list(*LATEST_FIELDS)
            for row in rows:
                if row[2] > limit:  # dated ahead of this clock: left out until its time (see _reload_all)
                    self._future_from = row[2] if self._future_from is None else min(self._future_from, row[2])
                    continue
                current = latest.get(row[1])
                if current is None or (row[2], row[0]) > (current.as_of, current.snapshot_id):
                    latest[row[1]] = _latest_factor(row)
            self._latest = latest  # one assignment: readers see the old or the new map, never half
            self._newest_as_of = _newest(latest)
        running = {run_id: len(done) for run_id, status, done, _ in runs if status == RecomputeRun.Status.RUNNING}
        self._run_chunks = running
        newest = max((run_id for run_id, *_ in runs), default=self._watch_from_run - 1)
        self._watch_from_run = min([*running, newest + 1])
        signature = policy_signature()
        if signature != self._policy_signature:
            self._policy_signature = signature
            self._policy = policy_state_load()
        self._refreshed_at = time.monotonic()

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._refresh_forever, name="sizing-hot-state", daemon=True)
            self._thread.start()

    def _refresh_forever(self) -> None:
        while True:
            time.sleep(self.refresh_seconds / 2)
            try:
                close_old_connections()
                with self._lock:
                    if self._dirty:
                        self._reload_all()
                    else:
                        self._poll()
            except Exception:  # the database may be down: keep serving what we have, staleness applies
                logger.warning("hot state refresh failed; serving the last known factors", exc_info=True)


hot_state = HotState()
