"""The ledger writer: one row per size, chained per symbol onto the head the database holds, in one INSERT."""
from __future__ import annotations

import re

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from sizing_app.ledger import chain as ledger
from sizing_app.models import SizingDecision
from sizing_app.signal_generator import size_decide_batch, size_for
from tests.factories import make_snapshot, make_symbol
from tests.fixtures.sizing import ledger_chain


def test_every_call_writes_exactly_one_row(fresh_snapshot):
    for expected_count in range(1, 6):
        size_for("BTCUSDC", 10.0 * expected_count)
        assert SizingDecision.objects.count() == expected_count


def test_chain_seq_and_hashes_per_symbol(fresh_snapshot):
    make_symbol("ETHUSDC")
    for symbol in ("BTCUSDC", "ETHUSDC", "BTCUSDC", "BTCUSDC", "ETHUSDC"):
        size_for(symbol, 100.0)
    for symbol, length in (("BTCUSDC", 3), ("ETHUSDC", 2)):
        rows = ledger_chain(symbol)
        assert [row["seq"] for row in rows] == list(range(1, length + 1))
        assert rows[0]["prev_hash"] == ledger.GENESIS_HASH
        for previous, row in zip(rows, rows[1:]):
            assert row["prev_hash"] == previous["row_hash"]
        for row in rows:
            assert row["row_hash"] == ledger.row_hash(row)  # recomputed from what the database holds
            assert re.fullmatch(r"[0-9a-f]{64}", row["row_hash"])
        assert ledger.verify_chain(symbol, rows) == []
    assert len({row["row_hash"] for row in ledger_chain("BTCUSDC") + ledger_chain("ETHUSDC")}) == 5


def test_chain_continues_after_process_cache_is_lost(fresh_snapshot):
    from sizing_app.ledger.writer import chain_heads

    size_for("BTCUSDC", 100.0)
    chain_heads.forget()  # a new worker process: the head is read back from the database
    size_for("BTCUSDC", 100.0)
    rows = ledger_chain("BTCUSDC")
    assert [row["seq"] for row in rows] == [1, 2]
    assert rows[1]["prev_hash"] == rows[0]["row_hash"]


def test_a_stale_chain_head_loses_to_the_database_and_the_call_retries(fresh_snapshot, monkeypatch):
    from sizing_app.ledger import writer as decisions

    size_for("BTCUSDC", 1.0)
    # This process believes the chain is empty (another writer appended since it last looked):
    # the fast-path INSERT of seq 1 is refused by the unique key and the call appends after the real head.
    monkeypatch.setattr(decisions.chain_heads, "get", lambda symbol: (0, ledger.GENESIS_HASH))
    size_for("BTCUSDC", 2.0)
    rows = ledger_chain("BTCUSDC")
    assert [(row["seq"], row["gross_target"]) for row in rows] == [(1, 1.0), (2, 2.0)]
    assert ledger.verify_chain("BTCUSDC", rows) == []


def test_ledger_insert_is_seen_by_execute_wrappers(fresh_snapshot):
    # The INSERT runs on a driver cursor for speed; tracing and debug tools must still see it.
    seen = []

    def trace(execute, sql, params, many, context):
        seen.append(sql.lower())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(trace):
        size_for("BTCUSDC", 100.0)
        size_decide_batch([("BTCUSDC", 1.0, "a"), ("BTCUSDC", 2.0, "b")])
    assert sum(sql.startswith("insert into") for sql in seen) == 2


def test_a_connection_used_from_another_thread_is_refused_before_anything_is_written(fresh_snapshot):
    # Django refuses to use one thread's connection object from another unless told it may;
    # the ledger INSERT runs on a driver cursor, and must refuse too.
    import threading

    from django.db import connections

    callers_connection = connections["default"]
    callers_connection.ensure_connection()
    outcome = {}

    def size_in_another_thread():
        connections["default"] = callers_connection
        try:
            size_for("BTCUSDC", 1.0)
        except DatabaseError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=size_in_another_thread)
    worker.start()
    worker.join()
    assert "can only be used in that same thread" in str(outcome.get("error"))
    assert SizingDecision.objects.count() == 0


def test_snapshot_unique_per_symbol_and_bucket(fresh_snapshot, btc):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_snapshot(btc, as_of=fresh_snapshot.as_of, size_factor=0.5)


def test_duplicate_chain_position_is_refused_by_the_database(fresh_snapshot):
    size_for("BTCUSDC", 100.0)
    fields = SizingDecision.objects.values().get()
    fields.pop("id")
    with pytest.raises(IntegrityError), transaction.atomic():
        SizingDecision(**fields).save()  # same (symbol, seq): two writers cannot fork the chain


@pytest.mark.parametrize("journal_ref", ["", "0b6c3a52-8f0e-4d6e-9a51-2f4f3c1d7e90"])
def test_each_row_is_sent_as_its_hashed_text_plus_its_hash(journal_ref):
    """PostgreSQL's INSERT receives the canonical text the hash covers: every column, exactly once."""
    import json

    from sizing_app.ledger import writer as decisions

    row = {"created_at": timezone.now(), "symbol": "BTCUSDC", "gross_target": 0.1, "inverse_vol_size": 1 / 3,
           "regime_multiplier": 0.9, "sharpe_multiplier": 1.1, "intel_factor": 2.0, "applied_factor": 2.0,
           "final_size": 1e-300, "snapshot_id": 7, "score": None, "mode": "live", "override_id": None,
           "stale": False, "fallback_reason": "", "order_ref": "Überweisung \"7\"", "caller": "注文",
           "journal_ref": journal_ref, "unbounded_size": 1e-300, "total_bounded": False}
    (chained,), (text,) = decisions.chain_rows([row], {"BTCUSDC": (4, "f" * 64)})
    sent = json.loads(text)
    assert set(sent) == set(decisions.INSERT_NAMES)
    assert sent == {**chained, "created_at": chained["created_at"].isoformat(timespec="microseconds")}
    assert chained["seq"] == 5 and chained["prev_hash"] == "f" * 64
    assert chained["row_hash"] == ledger.row_hash(chained)


def test_batch_continues_an_existing_chain(fresh_snapshot):
    size_for("BTCUSDC", 1.0)
    rows = size_decide_batch([("BTCUSDC", 2.0, "a"), ("BTCUSDC", 3.0, "b")])
    assert [row.seq for row in rows] == [2, 3]
    assert ledger.verify_chain("BTCUSDC", ledger_chain("BTCUSDC")) == []
