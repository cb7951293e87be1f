"""The ledger's hash chain: canonical row content, row hashes, and chain verification.

Each SizingDecision hashes its own content together with its predecessor's hash in the same
symbol's chain, so editing, deleting, inserting or reordering any row breaks a link.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS_HASH = "0" * 64

# The fields a row hash covers, in a fixed order; adding one is a ledger format change.
HASHED_FIELDS = (
    "symbol", "seq", "prev_hash", "created_at", "gross_target", "inverse_vol_size", "regime_multiplier",
    "sharpe_multiplier", "intel_factor", "applied_factor", "final_size", "snapshot_id", "score", "mode",
    "override_id", "stale", "fallback_reason", "order_ref", "caller",
)


def _canonical(value):
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="microseconds")
    return value


def row_hash(fields: dict) -> str:
    """sha256 over the canonical JSON of the hashed fields (floats in repr, exact round trip)."""
    payload = {name: _canonical(fields[name]) for name in HASHED_FIELDS}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    symbol: str
    seq: int | None
    row_id: int | None
    kind: str  # edited | missing | inserted | reordered
    detail: str

    def __str__(self):
        where = f"{self.symbol} seq {self.seq}" + (f" (row id {self.row_id})" if self.row_id else "")
        return f"{self.kind}: {where}: {self.detail}"


def verify_chain(symbol: str, rows: Iterable[dict]) -> list[ChainProblem]:
    """Check one symbol's rows, given in ascending seq order, and list every broken link."""
    problems: list[ChainProblem] = []
    expected_seq, expected_prev, previous_time = 1, GENESIS_HASH, None
    for row in rows:
        seq, row_id = row["seq"], row.get("id")
        if seq > expected_seq:
            problems.append(ChainProblem(symbol, expected_seq, None, "missing",
                                         f"rows {expected_seq}..{seq - 1} are gone"))
        elif seq < expected_seq:
            problems.append(ChainProblem(symbol, seq, row_id, "inserted", "sequence number repeats"))
        if row_hash(row) != row["row_hash"]:
            problems.append(ChainProblem(symbol, seq, row_id, "edited", "content does not match its hash"))
        if row["prev_hash"] != expected_prev and seq == expected_seq:
            problems.append(ChainProblem(symbol, seq, row_id, "inserted",
                                         "does not link to the row before it"))
        if previous_time is not None and row["created_at"] < previous_time:
            problems.append(ChainProblem(symbol, seq, row_id, "reordered", "timestamp earlier than its predecessor"))
        expected_seq, expected_prev, previous_time = seq + 1, row["row_hash"], row["created_at"]
    return problems
