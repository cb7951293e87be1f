"""Sizing decisions: apply the policy to a sized order and append it to the hash-chained ledger.

The size is returned only after its ledger row is committed, so no size handed to the engine
is ever unrecorded. Chains are per symbol, so writers on different symbols never contend.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..conf import sizing_settings
from ..latest import hot_state
from ..ledger import GENESIS_HASH, row_hash
from ..models import SizingDecision
from ..selectors import EffectivePolicy

CHAIN_RETRIES = 20


class SizingUnavailable(RuntimeError):
    """The ledger could not record the decision, so no size is given: sizing fails closed.

    The engine catches this and decides what to do (retry, skip the order, use its own fallback).
    """


class SizingError(ValueError):
    """A stack step returned something that is not a finite, non-negative multiplier."""


class ChainHeads:
    """This process's view of each symbol's chain head: (seq, hash) of the last committed row.

    A stale view is harmless: the unique (symbol, seq) key refuses the insert and we reload.
    """

    def __init__(self):
        self._heads: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def get(self, symbol: str) -> tuple[int, str]:
        head = self._heads.get(symbol)
        return head if head is not None else self.reload(symbol)

    def reload(self, symbol: str) -> tuple[int, str]:
        row = (
            SizingDecision.objects.filter(symbol=symbol).order_by("-seq").values_list("seq", "row_hash").first()
        )
        return row if row is not None else (0, GENESIS_HASH)

    def remember(self, symbol: str, seq: int, hash_: str) -> None:
        with self._lock:
            current = self._heads.get(symbol)
            if current is None or current[0] < seq:
                self._heads[symbol] = (seq, hash_)

    def forget(self, symbol: str | None = None) -> None:
        with self._lock:
            if symbol is None:
                self._heads.clear()
            else:
                self._heads.pop(symbol, None)


chain_heads = ChainHeads()


@dataclass(frozen=True)
class SizingRequest:
    """One order to size, with the stack's outputs already computed by the caller."""

    symbol: str
    gross_target: float
    inverse_vol_size: float
    regime_multiplier: float
    sharpe_multiplier: float
    intel: dict[str, Any]
    order_ref: str = ""
    caller: str = ""


def _checked_multiplier(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SizingError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise SizingError(f"{name} must be finite and non-negative, got {number!r}")
    return number


def policy_apply(*, intel: dict[str, Any], policy: EffectivePolicy) -> tuple[float, float, str]:
    """(intel_factor, applied_factor, fallback_reason) for a persisted intel dict under a policy.

    A pinned override replaces the persisted factor (still within the clamp); only live mode
    applies the factor, shadow and off apply 1.0 and keep the factor on record.
    """
    config = sizing_settings()
    intel_factor = _checked_multiplier("intel size_factor", intel.get("size_factor", 1.0))
    fallback_reason = intel.get("fallback_reason", "") or ""
    if policy.pinned_factor is not None:
        intel_factor = policy.pinned_factor
        fallback_reason = ""
    # The clamp in force now wins over whatever was persisted or pinned under another one.
    intel_factor = min(max(intel_factor, config.factor_min), config.factor_max)
    applied_factor = intel_factor if policy.mode == "live" else 1.0
    return intel_factor, applied_factor, fallback_reason


def _decision_fields(request: SizingRequest, created_at) -> dict[str, Any]:
    """Everything but the chain position: policy applied, multipliers multiplied in plan order."""
    intel = request.intel
    policy = hot_state.policy(request.symbol)
    intel_factor, applied_factor, fallback_reason = policy_apply(intel=intel, policy=policy)
    inverse_vol_size = _checked_multiplier("inverse_vol_size", request.inverse_vol_size)
    regime = _checked_multiplier("volatility_regime_scale", request.regime_multiplier)
    sharpe = _checked_multiplier("size_multiplier", request.sharpe_multiplier)
    # Same order as the engine's stack: inverse vol, then regime, then Sharpe, then intel.
    base_size = inverse_vol_size
    base_size *= regime
    base_size *= sharpe
    final_size = base_size * applied_factor
    if not math.isfinite(final_size):
        raise SizingError(f"final size overflowed for {request.symbol}: {final_size!r}")
    return {
        "created_at": created_at, "symbol": request.symbol, "gross_target": float(request.gross_target),
        "inverse_vol_size": inverse_vol_size, "regime_multiplier": regime, "sharpe_multiplier": sharpe,
        "intel_factor": intel_factor, "applied_factor": applied_factor, "final_size": final_size,
        "snapshot_id": intel.get("snapshot_id"), "score": intel.get("score"), "mode": policy.mode,
        "override_id": policy.override.pk if policy.override is not None else None,
        "stale": bool(intel.get("stale", False)), "fallback_reason": fallback_reason,
        "order_ref": request.order_ref, "caller": request.caller,
    }


def _chain(rows: list[dict[str, Any]], heads: dict[str, tuple[int, str]]) -> list[dict[str, Any]]:
    chained = []
    for fields in rows:
        seq, prev_hash = heads[fields["symbol"]]
        fields = {**fields, "seq": seq + 1, "prev_hash": prev_hash}
        fields["row_hash"] = row_hash(fields)
        heads[fields["symbol"]] = (fields["seq"], fields["row_hash"])
        chained.append(fields)
    return chained


# Ledger rows go in with one multi-row INSERT ... RETURNING: one statement is atomic on its
# own, so a size costs one round trip like a bare INSERT, and a batch costs one too. The
# ORM's bulk_create spends tens of microseconds per row compiling; this path is the hot one.
_INSERT_FIELDS = [field for field in SizingDecision._meta.concrete_fields if not field.primary_key]
_INSERT_BATCH = 500


def _insert(chained: list[dict[str, Any]]) -> list[int]:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _INSERT_FIELDS)
    postgres = connection.vendor == "postgresql"
    # PostgreSQL: the VALUES feed a SELECT, so each parameter says its type (NULLs would be text).
    casts = [f"::{field.cast_db_type(connection)}" if postgres else "" for field in _INSERT_FIELDS]
    placeholder = "(" + ", ".join(f"%s{cast}" for cast in casts) + ")"
    adapt_time = connection.ops.adapt_datetimefield_value
    names = [field.attname for field in _INSERT_FIELDS]
    table = quote(SizingDecision._meta.db_table)
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(chained), _INSERT_BATCH):
            batch = chained[start:start + _INSERT_BATCH]
            params = []
            for fields in batch:
                params.extend(adapt_time(fields[name]) if name == "created_at" else fields[name] for name in names)
            values = ", ".join([placeholder] * len(batch))
            if postgres:
                # Still one statement, but it holds its chains' append locks (_lock_chains) while it
                # inserts: a writer that lost a race and queued on them can never lose again.
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) WITH chain_lock AS (SELECT pg_advisory_xact_lock(key) "
                    "FROM (SELECT hashtextextended(name, 0) AS key FROM unnest(%s::text[]) AS name ORDER BY 1) AS keys) "
                    f"SELECT v.* FROM (VALUES {values}) AS v, (SELECT count(*) FROM chain_lock) AS held "
                    f"RETURNING {quote('id')}",
                    [sorted({fields["symbol"] for fields in batch}), *params],
                )
            else:
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values} RETURNING {quote('id')}", params)
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _lock_chains(symbols: set[str]) -> None:
    """Queue behind every other writer of these chains until this transaction ends.

    PostgreSQL: one transaction-scoped advisory lock per symbol, always taken in the same order so
    two batches cannot deadlock. SQLite: the IMMEDIATE transaction already holds the write lock.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for symbol in sorted(symbols):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [symbol])


def _append(chained: list[dict[str, Any]]) -> list[int]:
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint, so a lost race leaves the caller's transaction usable
            return _insert(chained)
    if len(chained) > _INSERT_BATCH:
        with transaction.atomic():  # several statements: all rows or none
            return _insert(chained)
    return _insert(chained)


def decisions_record(*, requests: list[SizingRequest]) -> list[SizingDecision]:
    """Apply policy to each request and append the rows to their chains: all rows or none."""
    if not requests:
        return []
    created_at = timezone.now()
    rows = [_decision_fields(request, created_at) for request in requests]
    symbols = {row["symbol"] for row in rows}
    heads = {symbol: chain_heads.get(symbol) for symbol in symbols}
    for attempt in range(CHAIN_RETRIES):
        try:
            if attempt == 0:
                # Fast path: one INSERT on the heads this process saw last.
                chained = _chain(rows, dict(heads))
                ids = _append(chained)
            else:
                # Another writer appended first. Racing again can lose again, without end under
                # load: queue on the chains' locks instead, then read the heads and append.
                with transaction.atomic():
                    _lock_chains(symbols)
                    heads = {symbol: chain_heads.reload(symbol) for symbol in symbols}
                    chained = _chain(rows, dict(heads))
                    ids = _insert(chained)
        except IntegrityError:
            if attempt == CHAIN_RETRIES - 1:
                raise
            continue
        break
    decisions = []
    for pk, fields in zip(ids, chained):
        decision = SizingDecision(id=pk, **fields)
        decision._state.adding = False
        decision._state.db = connection.alias
        decisions.append(decision)
    if connection.in_atomic_block:
        # Inside the caller's transaction: trust the new heads only once that commits.
        for decision in decisions:
            chain_heads.forget(decision.symbol)
            transaction.on_commit(lambda d=decision: chain_heads.remember(d.symbol, d.seq, d.row_hash))
    else:
        for decision in decisions:
            chain_heads.remember(decision.symbol, decision.seq, decision.row_hash)
    return decisions


def decision_record(*, request: SizingRequest) -> SizingDecision:
    return decisions_record(requests=[request])[0]
