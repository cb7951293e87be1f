import pytest
from tests.test_seed_demo import *
@pytest.mark.parametrize("end", [END, END + timedelta(days=40, hours=7), END - timedelta(days=100, hours=3)])
@pytest.mark.parametrize("seed", [7, 1, 123, 2024])
def test_dump(end, seed):
    demo_seed(end=end, days=10, seed=seed, symbols=None, history_hours=4)
    prof = {s.name: (s.profile, s.ending) for s in DEMO_SYMBOLS}
    for n in DEMO_SYMBOL_NAMES:
        sn = selectors.snapshot_latest(symbol=n)
        print(f"{seed} {end:%m-%d} {n:10s} {prof[n][0]:5s} {prof[n][1]:5s} f={sn.size_factor:.2f} sc={sn.score:+.2f} sh={sn.sharpe_7d:+.1f} dd={sn.max_drawdown:.3f} atr={sn.atr_regime_ratio:.2f} slip={sn.slippage_bps:.1f} fr={sn.fill_rate:.2f} mk={sn.maker_ratio:.2f}")
