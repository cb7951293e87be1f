"""Replaying the outage journal into the ledger: each journaled decision once, in order, chained afresh.

The journal itself (ledger/journal.py) keeps decisions durably while the database is unreachable;
this puts them on their chains once it answers, skipping what is there already.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ..models import SizingDecision
from . import writer
from .journal import JournalCorrupt, journal_replay
from .writer import INSERT_NAMES, LOOKUP_BATCH, chain_heads, chain_rows, ledger_originals, lock_chains, order_key

logger = logging.getLogger(__name__)

_DECISION_NAMES = [name for name in INSERT_NAMES if name not in ("seq", "prev_hash", "row_hash")]
# Journaled before the total bound existed: such a line has neither field, and replays without them.
_ADDED_LATER = {"unbounded_size": None, "total_bounded": None}


def _replayable(entry: dict[str, Any]) -> dict[str, Any]:
    """A journaled row as _decision_fields made it, or JournalCorrupt (say, a hand-repaired line)."""
    entry = {**_ADDED_LATER, **entry}
    missing = [name for name in _DECISION_NAMES if name not in entry]
    if missing or not isinstance(entry["created_at"], datetime) or not entry["journal_ref"]:
        raise JournalCorrupt(
            f"journaled row {entry.get('journal_ref')!r} is not a decision as journaled "
            f"(missing {missing or 'nothing'}; created_at must be a journaled time, journal_ref set); "
            "nothing was replayed. Move the file aside, repair or archive that row, and replay again."
        )
    return {name: entry[name] for name in _DECISION_NAMES}


def append_replayed(entries: list[dict[str, Any]]) -> tuple[int, list[tuple[dict[str, Any], str]]]:
    """Append journaled rows not yet in the ledger, in journal order, in one transaction.

    Returns (rows inserted, rows set aside with the reason). A row whose order the ledger already
    holds (sized again during the outage, on another host or after its first size's answer was lost)
    is set aside, not recorded twice: the journal's quarantine keeps it for an operator.
    """
    rows = [_replayable(entry) for entry in entries]
    refs = [row["journal_ref"] for row in rows]
    symbols = {row["symbol"] for row in rows}
    db = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic():
        lock_chains(db, symbols)
        done: set[str] = set()
        for start in range(0, len(refs), LOOKUP_BATCH):
            done.update(SizingDecision.objects.filter(journal_ref__in=refs[start:start + LOOKUP_BATCH])
                        .values_list("journal_ref", flat=True))
        missing = _not_committed_before_the_outage([row for row in rows if row["journal_ref"] not in done])
        originals = ledger_originals({key for row in missing if (key := order_key(row)) is not None})
        kept, set_aside = [], []
        for row in missing:
            original = originals.get(order_key(row)) if row["order_ref"] else None
            if original is None:
                kept.append(row)
            else:
                set_aside.append((row, f"order_ref {row['order_ref']!r} of caller {row['caller']!r} is on the ledger "
                                       f"already (decision {original['id']}); this second size for the same order "
                                       "was handed out during the outage and is kept here, not recorded twice"))
        heads = {symbol: chain_heads.reload(symbol) for symbol in symbols}
        chained, texts = chain_rows(kept, heads)
        if chained:
            writer.insert_rows(db, chained, texts)
        for symbol in symbols:
            chain_heads.forget(symbol)
    return len(chained), set_aside


_DECISION_IDENTITY = ("symbol", "created_at", "order_ref", "caller", "gross_target", "final_size")


def _not_committed_before_the_outage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows minus those the database committed although the connection broke before saying so.

    Such a decision was journaled too (its outcome was unknown), under a fresh journal_ref, but its
    row is already on the ledger, unjournaled, with the same decision time to the microsecond and
    the same content: replaying it would record one size twice.
    """
    if not rows:
        return rows
    committed: Counter = Counter()
    times = sorted({row["created_at"] for row in rows})
    for start in range(0, len(times), LOOKUP_BATCH):
        committed.update(SizingDecision.objects.filter(
            journal_ref="", symbol__in={row["symbol"] for row in rows},
            created_at__in=times[start:start + LOOKUP_BATCH],
        ).values_list(*_DECISION_IDENTITY))
    kept = []
    for row in rows:
        identity = tuple(row[name] for name in _DECISION_IDENTITY)
        if committed[identity] > 0:
            committed[identity] -= 1
            logger.warning("journaled decision %s was committed before the outage; not replayed", row["journal_ref"])
        else:
            kept.append(row)
    return kept


def journal_replay_pending() -> int:
    """Replay the outage journal into the ledger (see sizing_app.journal); returns rows inserted."""
    return journal_replay(append_replayed)
