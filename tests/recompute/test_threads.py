"""recompute_run on several threads (PostgreSQL, outside a transaction) writes what one thread writes.

Inside a transaction, or on SQLite, it stays on the caller's thread: other connections could not
see the caller's uncommitted rows, and SQLite has a single writer anyway.
"""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from sizing_app.models import RecomputeRun, SizingSnapshot
from sizing_app.recompute import service as recompute
from tests.recompute.test_service import AS_OF, build_symbol

NAMES = ["BTCUSDC", "ETHUSDC", "SOLUSDC", "XRPUSDC", "ADAUSDC"]
VOLATILE_FIELDS = {"id", "run_id", "computed_at", "symbol_id"}


def snapshot_rows() -> dict[str, dict]:
    rows = SizingSnapshot.objects.values("symbol__name", *(field.attname for field in SizingSnapshot._meta.fields))
    return {row.pop("symbol__name"): {k: v for k, v in row.items() if k not in VOLATILE_FIELDS} for row in rows}


def spy_on_chunk_threads(monkeypatch) -> list[str]:
    names: list[str] = []
    chunk_recompute = recompute.chunk_recompute

    def recording(**kwargs):
        names.append(threading.current_thread().name)
        return chunk_recompute(**kwargs)

    monkeypatch.setattr(recompute, "chunk_recompute", recording)
    return names


@pytest.mark.django_db(transaction=True)
def test_threads_write_the_same_snapshots_as_one_thread(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("chunks share the work on PostgreSQL only (DATABASE_URL=postgres://...)")
    # Two identical markets (snapshots are append-only: the second run needs symbols of its own).
    threaded_names = [f"T{name}" for name in NAMES]
    sequential_names = [f"S{name}" for name in NAMES]
    for seed, (threaded_name, sequential_name) in enumerate(zip(threaded_names, sequential_names)):
        build_symbol(threaded_name, seed=seed, candles=300)
        build_symbol(sequential_name, seed=seed, candles=300)
    threads = spy_on_chunk_threads(monkeypatch)
    progress: list[tuple[int, int]] = []

    run = recompute.recompute_run(symbol_names=threaded_names, as_of=AS_OF, chunk_size=2, workers=2,
                                  progress=lambda done, total: progress.append((done, total)))
    assert run.status == RecomputeRun.Status.OK, run.errors
    assert (run.symbols_ok, run.chunks_total, run.chunks_done) == (5, 3, [0, 1, 2])
    assert len(threads) == 3 and all(name.startswith("recompute") for name in threads)
    assert max(progress) == (5, 5)

    threads.clear()
    run = recompute.recompute_run(symbol_names=sequential_names, as_of=AS_OF, chunk_size=2, workers=1)
    assert run.status == RecomputeRun.Status.OK
    assert threads == [threading.current_thread().name] * 3

    rows = snapshot_rows()
    assert len(rows) == 10
    for name in NAMES:
        assert rows[f"T{name}"] == rows[f"S{name}"]


def test_inside_a_transaction_chunks_stay_on_the_callers_thread(monkeypatch):
    for seed, name in enumerate(NAMES[:3]):
        build_symbol(name, seed=seed, candles=60)
    threads = spy_on_chunk_threads(monkeypatch)
    run = recompute.recompute_run(as_of=AS_OF, chunk_size=1, workers=2)
    assert run.status == RecomputeRun.Status.OK
    assert threads == [threading.current_thread().name] * 3
    assert SizingSnapshot.objects.filter(as_of=AS_OF).count() == 3
