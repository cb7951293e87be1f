# tests/test_execution_intel_sizing.py
# The plan's adaptive-sizing tests (v5.10.2), verbatim but for the module prefix.

from sizing_app.signal_generator import size_for


def test_size_for_respects_symbol_size_factor_execution_intelligence(monkeypatch):
    # Make inverse-vol and regime scale neutral (1.0x)
    monkeypatch.setattr(
        "sizing_app.signal_generator.inverse_vol_size",
        lambda symbol, base_size: base_size,
    )
    monkeypatch.setattr(
        "sizing_app.signal_generator.volatility_regime_scale",
        lambda symbol: 1.0,
    )

    # Make Sharpe-based multiplier neutral (1.0x)
    monkeypatch.setattr(
        "sizing_app.signal_generator.size_multiplier",
        lambda symbol: 1.0,
    )

    # Low quality symbol factor 0.5x
    monkeypatch.setattr(
        "sizing_app.signal_generator.symbol_size_factor",
        lambda symbol: {"symbol": symbol, "score": -2.0, "size_factor": 0.5, "components": {}},
    )

    low = size_for("BTCUSDC", gross_target=100.0)
    assert low == 50.0

    # High quality symbol factor 1.5x
    monkeypatch.setattr(
        "sizing_app.signal_generator.symbol_size_factor",
        lambda symbol: {"symbol": symbol, "score": 2.0, "size_factor": 1.5, "components": {}},
    )

    high = size_for("BTCUSDC", gross_target=100.0)
    assert high == 150.0
    assert high > low


def test_size_for_still_applies_existing_stack_execution_intelligence(monkeypatch):
    # Inverse-vol halves size, regime doubles it, net 1x
    monkeypatch.setattr(
        "sizing_app.signal_generator.inverse_vol_size",
        lambda symbol, base_size: base_size * 0.5,
    )
    monkeypatch.setattr(
        "sizing_app.signal_generator.volatility_regime_scale",
        lambda symbol: 2.0,
    )
    # Sharpe multiplier 1.2x
    monkeypatch.setattr(
        "sizing_app.signal_generator.size_multiplier",
        lambda symbol: 1.2,
    )
    # Intel factor 0.8x
    monkeypatch.setattr(
        "sizing_app.signal_generator.symbol_size_factor",
        lambda symbol: {"symbol": symbol, "score": 0.0, "size_factor": 0.8, "components": {}},
    )

    size = size_for("BTCUSDC", gross_target=100.0)
    # 100 * 0.5 * 2.0 * 1.2 * 0.8 = 96.0
    assert size == 96.0
