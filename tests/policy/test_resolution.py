"""Policy resolution as sizing meets it: which override is in force, and its pinned factor within the clamp.

Modes, symbol modes and the effect of each policy change through the services: test_services.py.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sizing_app.signal_generator import size_decide, size_for
from tests.factories import make_override
from tests.fixtures.sizing import FACTOR, GROSS, only_row, stack


def test_active_pinned_override_wins(fresh_snapshot, btc):
    override = make_override(btc, pinned_factor=0.6, expires_at=timezone.now() + timedelta(hours=1))
    assert size_for("BTCUSDC", GROSS) == stack(GROSS, factor=0.6)
    row = only_row()
    assert (row.intel_factor, row.applied_factor) == (0.6, 0.6)
    assert row.override_id == override.pk
    assert row.snapshot_id == fresh_snapshot.pk


def test_pinned_override_without_expiry_wins_even_without_snapshot(btc):
    make_override(btc, pinned_factor=1.5)
    assert size_for("BTCUSDC", 100.0) == 150.0
    assert only_row().fallback_reason == ""


def test_expired_override_is_ignored(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6, expires_at=timezone.now() - timedelta(seconds=1))
    assert size_for("BTCUSDC", GROSS) == stack(GROSS)
    row = only_row()
    assert row.override_id is None and row.intel_factor == FACTOR


def test_newest_active_override_wins(fresh_snapshot, btc):
    make_override(btc, pinned_factor=0.6)
    newest = make_override(btc, pinned_factor=0.7)
    assert size_for("BTCUSDC", 100.0) == stack(100.0, factor=0.7)
    assert only_row().override_id == newest.pk


@pytest.mark.parametrize(("pinned", "applied"), [(5.0, 2.0), (2.0, 2.0), (0.1, 0.25), (0.0, 0.25), (0.25, 0.25)])
def test_pinned_factor_is_clamped(fresh_snapshot, btc, pinned, applied):
    make_override(btc, pinned_factor=pinned)
    assert size_for("BTCUSDC", 100.0) == stack(100.0, factor=applied)
    assert only_row().applied_factor == applied


def test_pinned_factor_honours_narrowed_clamp(fresh_snapshot, btc, settings):
    settings.SIZING_FACTOR_MAX = 1.5
    make_override(btc, pinned_factor=1.9)
    assert size_decide("BTCUSDC", 100.0).applied_factor == 1.5
