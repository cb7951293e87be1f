"""The plan's symbol-score tests (v5.10.2), verbatim but for the module prefix."""
from sizing_app.intel.symbol_score import symbol_size_factor


def test_symbol_size_factor_wraps_score_and_factor_execution_intelligence(monkeypatch):
    def fake_compute_symbol_score(symbol):
        return {"symbol": symbol, "score": 2.0, "components": {}}

    monkeypatch.setattr(
        "sizing_app.intel.symbol_score.compute_symbol_score",
        fake_compute_symbol_score,
    )

    sf = symbol_size_factor("BTCUSDC")
    assert sf["symbol"] == "BTCUSDC"
    assert sf["score"] == 2.0
    assert 1.0 < sf["size_factor"] <= 2.0  # high score -> >1x
