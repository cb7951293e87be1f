"""latest_factor against a real server: what it says sizing applies is what the next size records.

SOLUSDC carries an override pinning 0.5 (made before the server starts, so every gunicorn worker
loads it with its hot state); BTCUSDC is sized on its snapshot as computed.
"""
from __future__ import annotations

import dataclasses

import pytest
from sizing_client import NotFound

from sizing_app.models import SizingDecision
from tests.factories import make_override

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GROSS = 1000.0


@pytest.fixture()
def market(market: dict) -> dict:
    """The conftest's market, with SOLUSDC's factor pinned at 0.5 by an override."""
    return {**market, "override": make_override(market["SOLUSDC"].symbol, pinned_factor=0.5)}


@pytest.mark.parametrize("symbol", ["SOLUSDC", "BTCUSDC"])
def test_latest_factor_is_what_the_following_size_applied(sizing, market, symbol):
    latest = sizing.latest_factor(symbol)
    decision = sizing.size(symbol, GROSS, order_ref=f"latest-{symbol}")
    row = SizingDecision.objects.get(pk=decision.id)
    assert (latest.applied_factor, latest.intel_factor, latest.mode, latest.stale, latest.fallback_reason) == (
        row.applied_factor, row.intel_factor, row.mode, row.stale, row.fallback_reason)
    assert latest.snapshot_id == row.snapshot_id == market[symbol].pk
    assert (latest.override.id if latest.override else None) == row.override_id
    assert (latest.inverse_vol_multiplier, latest.regime_multiplier, latest.sharpe_multiplier) == (
        row.inverse_vol_size / GROSS, row.regime_multiplier, row.sharpe_multiplier)
    assert latest.total_multiplier == pytest.approx(row.final_size / row.gross_target, rel=1e-12)
    assert latest.size_factor == market[symbol].size_factor  # the persisted factor, before the policy


def test_the_pinned_factor_is_the_one_applied(sizing, market):
    latest = sizing.latest_factor("SOLUSDC")
    assert latest.override is not None and latest.override.id == market["override"].pk
    assert (latest.override.pinned_factor, latest.intel_factor, latest.applied_factor) == (0.5, 0.5, 0.5)
    assert sizing.size("SOLUSDC", GROSS).applied_factor == 0.5


def test_latest_factors_lists_every_active_symbol_with_a_snapshot(sizing):
    listed = {factor.symbol: factor for factor in sizing.latest_factors()}
    assert set(listed) == {"SOLUSDC", "BTCUSDC"}  # OLDUSDC is inactive, NEWUSDC has no snapshot
    for symbol, factor in listed.items():
        # Everything but the age (it is measured at each answer) is the single-symbol route's.
        assert dataclasses.replace(factor, age_seconds=0.0) == dataclasses.replace(
            sizing.latest_factor(symbol), age_seconds=0.0)


@pytest.mark.parametrize(("symbol", "code"), [("ZZZUSDT", "unknown_symbol"), ("OLDUSDC", "inactive_symbol"),
                                              ("NEWUSDC", "no_snapshot")])
def test_latest_factor_of_a_symbol_sizing_does_not_apply_is_not_found_with_its_reason(sizing, symbol, code):
    with pytest.raises(NotFound) as raised:
        sizing.latest_factor(symbol)
    assert (raised.value.status, raised.value.code) == (404, code)
