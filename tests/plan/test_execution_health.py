"""Execution health exposes the intel size factor beside the Sharpe multiplier (plan commit 3)."""
import pytest

from sizing_app.models import GlobalPolicy
from sizing_app.utils.execution_health import compute_execution_health


@pytest.fixture
def deterministic_sizing(monkeypatch):
    monkeypatch.setattr(
        "sizing_app.utils.execution_health.symbol_size_factor",
        lambda symbol: {"symbol": symbol, "score": 1.0, "size_factor": 1.5, "components": {}},
    )
    monkeypatch.setattr("sizing_app.utils.execution_health.size_multiplier", lambda symbol: 1.2)


def test_execution_health_sizing_section_has_intel_keys_execution_intelligence(deterministic_sizing):
    sizing = compute_execution_health("BTCUSDC")["sizing"]
    for key in ("sharpe_7d", "size_multiplier", "intel_size_factor", "final_size_factor"):
        assert key in sizing
    assert sizing["size_multiplier"] == 1.2
    assert sizing["intel_size_factor"] == 1.5
    assert sizing["final_size_factor"] == pytest.approx(1.2 * 1.5, rel=0, abs=1e-15)


def test_execution_health_shadow_mode_applies_neutral_factor(deterministic_sizing):
    GlobalPolicy.objects.create(pk=1, mode="shadow")
    sizing = compute_execution_health("BTCUSDC")["sizing"]
    assert sizing["mode"] == "shadow"
    assert sizing["intel_size_factor"] == 1.5  # recorded
    assert sizing["applied_intel_size_factor"] == 1.0  # not applied
    assert sizing["final_size_factor"] == 1.2


def test_execution_health_rejects_malformed_symbol():
    with pytest.raises(ValueError, match="Malformed symbol"):
        compute_execution_health("btc/usdc; DROP TABLE")
