"""A real worker runs a recompute: the dispatcher fans out chunks, every chunk is recorded once."""
from __future__ import annotations

import pytest

from sizing_app.models import RecomputeRun, SizingSnapshot
from sizing_app.recompute.tasks import recompute

from .conftest import make_market, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NAMES = ["BTCUSDC", "ETHUSDC", "SOLUSDC", "XRPUSDC", "ADAUSDC"]


def test_worker_loaded_the_project_configuration(worker):
    inspect = worker.inspect()
    conf = inspect.conf(with_defaults=True)[worker.hostname]
    assert conf["task_acks_late"] is False
    assert conf["worker_prefetch_multiplier"] == 1
    assert (conf["task_soft_time_limit"], conf["task_time_limit"]) == (240, 300)
    assert conf["task_serializer"] == "json"
    registered = set(inspect.registered()[worker.hostname])
    assert {"sizing_app.tasks.recompute", "sizing_app.tasks.recompute_chunk"} <= registered


def test_manual_recompute_runs_every_chunk_on_the_worker(worker):
    symbols = make_market(NAMES)

    sent = recompute.delay(trigger="manual", chunk_size=2)

    def finished_run():
        run = RecomputeRun.objects.filter(task_id=sent.id).first()
        return run if run is not None and run.status != RecomputeRun.Status.RUNNING else None

    run = wait_for(finished_run, what="the manual run to finish", processes=(worker.process,))
    assert run.trigger == "manual"
    assert run.status == RecomputeRun.Status.OK, run.errors
    assert (run.symbols_total, run.symbols_ok, run.symbols_failed) == (5, 5, 0)
    assert (run.chunks_total, run.chunks_done) == (3, [0, 1, 2])
    snapshots = SizingSnapshot.objects.filter(as_of=run.as_of)
    assert sorted(snapshots.values_list("symbol__name", flat=True)) == sorted(NAMES)
    assert set(snapshots.values_list("run_id", flat=True)) == {run.pk}
    assert SizingSnapshot.objects.count() == len(symbols)
    for snapshot in snapshots:
        assert snapshot.candle_count > 0
        assert 0.25 <= snapshot.size_factor <= 2.0
