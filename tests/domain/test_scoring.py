"""Tests for sizing_app.scoring: the score-to-factor map, the step limit, the stack multipliers,
the score components and a symbol's evaluation, on plain arrays (no database needed).
"""
from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sizing_app.domain.metrics import atr_pct
from sizing_app.domain.scoring import (
    COMPONENTS,
    FACTOR_CEILING,
    FACTOR_FLOOR,
    MAX_ABS_SCORE,
    SymbolInputs,
    compute_metrics,
    evaluate,
    limit_step,
    score_components,
    score_to_size_factor,
)
from sizing_app.domain.stack import inverse_vol_multiplier, regime_multiplier, sharpe_multiplier

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
# A UTC midnight, so the 7 UTC days before it are complete: 2024-02-23 .. 2024-02-29.
AS_OF = datetime(2024, 3, 1, tzinfo=UTC)
AS_OF_MS = int(AS_OF.timestamp() * 1000)
NON_FINITE = [math.nan, math.inf, -math.inf]

any_float = st.floats(allow_nan=True, allow_infinity=True)
finite_float = st.floats(allow_nan=False, allow_infinity=False)
# d/ds 2**(s/2) = ln2/2 * 2**(s/2) <= ln2/2 * 2.0 (the ceiling) = ln2 on [-4, 2]; flat outside.
FACTOR_LIPSCHITZ = math.log(2.0)
FLOAT_SLACK = 1e-15  # two correctly rounded results of size <= 2 differ from exact by < 2 ulp


# --- score_to_size_factor --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, 1.0),                # 2**(0/2)
        (0.0, 1.0),
        (2.0, 2.0),              # 2**(2/2): the ceiling, reached exactly
        (-2.0, 0.5),             # 2**(-2/2)
        (-4.0, 0.25),            # 2**(-4/2): the floor, reached exactly
        (1.0, math.sqrt(2.0)),   # 2**(1/2)
        (-1.0, math.sqrt(0.5)),  # 2**(-1/2), correctly rounded
        (MAX_ABS_SCORE, 2.0),    # the best possible score (4.75) is clamped
        (-MAX_ABS_SCORE, 0.25),  # the worst possible score is clamped
        (1e308, 2.0),            # no overflow on huge scores
        (-1e308, 0.25),
        (np.float64(2.0), 2.0),
        (np.int64(-2), 0.5),
    ],
)
def test_score_to_size_factor_exact_values(score, expected):
    assert score_to_size_factor(score) == expected


def test_score_to_size_factor_both_clamp_ends_reachable_from_a_real_score():
    # Each end is reached by a finite score the components can produce (|score| <= 4.75).
    assert score_to_size_factor(2.0) == FACTOR_CEILING
    assert score_to_size_factor(-4.0) == FACTOR_FLOOR
    assert 2.0 <= MAX_ABS_SCORE and -4.0 >= -MAX_ABS_SCORE
    # ...and not earlier: just inside the ends it is strictly inside.
    assert score_to_size_factor(1.99) < FACTOR_CEILING
    assert score_to_size_factor(-3.99) > FACTOR_FLOOR


@pytest.mark.parametrize("score", NON_FINITE + [np.float64("nan"), np.float64("inf")])
def test_score_to_size_factor_non_finite_is_neutral(score):
    assert score_to_size_factor(score) == 1.0


@pytest.mark.parametrize("score", ["1.0", None, True, False, [1.0], {"score": 1}, object()])
def test_score_to_size_factor_rejects_non_numbers(score):
    with pytest.raises(TypeError):
        score_to_size_factor(score)


def test_score_to_size_factor_honours_narrowed_bounds():
    assert score_to_size_factor(10.0, 0.5, 1.5) == 1.5
    assert score_to_size_factor(-10.0, 0.5, 1.5) == 0.5
    assert score_to_size_factor(0.0, 0.5, 1.5) == 1.0
    assert score_to_size_factor(1.0, 0.5, 1.5) == math.sqrt(2.0)  # 1.414 is inside [0.5, 1.5]
    # 2*log2(1.5) is where the narrowed ceiling starts.
    assert score_to_size_factor(2 * math.log2(1.5) + 1e-9, 0.5, 1.5) == 1.5


def test_score_to_size_factor_never_widens_bounds():
    assert score_to_size_factor(10.0, 0.01, 10.0) == FACTOR_CEILING
    assert score_to_size_factor(-10.0, 0.01, 10.0) == FACTOR_FLOOR


@given(any_float)
def test_score_to_size_factor_always_within_clamp(score):
    factor = score_to_size_factor(score)
    assert FACTOR_FLOOR <= factor <= FACTOR_CEILING
    if not math.isfinite(score):
        assert factor == 1.0


@given(any_float, st.floats(0.0, 1.0), st.floats(1.0, 5.0))
def test_score_to_size_factor_within_narrowed_clamp(score, factor_min, factor_max):
    factor = score_to_size_factor(score, factor_min, factor_max)
    assert max(FACTOR_FLOOR, factor_min) <= factor <= min(FACTOR_CEILING, factor_max)


@given(finite_float, finite_float)
def test_score_to_size_factor_monotonic_non_decreasing(a, b):
    low, high = sorted((a, b))
    assert score_to_size_factor(low) <= score_to_size_factor(high)


@given(finite_float, finite_float)
def test_score_to_size_factor_is_lipschitz_continuous(a, b):
    # No jumps anywhere (the public implementation jumps at -1 and +1.5): the factor moves at
    # most ln2 per unit of score.
    gap = abs(score_to_size_factor(a) - score_to_size_factor(b))
    assert gap <= FACTOR_LIPSCHITZ * abs(a - b) + FLOAT_SLACK


@given(st.floats(-4.0, 2.0))
def test_score_to_size_factor_is_the_exponential_inside_the_clamp(score):
    assert score_to_size_factor(score) == pytest.approx(2.0 ** (score / 2.0), rel=1e-15)


# --- limit_step ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("previous", "proposed", "hours", "expected"),
    [
        (1.0, 2.0, 1.0, 1.1),            # up at most x1.10 in an hour
        (1.0, 0.25, 1.0, 1 / 1.1),       # down at most /1.10
        (1.0, 1.05, 1.0, 1.05),          # inside the band: taken as is
        (1.0, 2.0, 2.0, 1.1**2),         # compounding: two hours allow x1.21
        (1.0, 2.0, 0.1, 1.1**0.1),       # a 6-minute recompute allows x1.10^0.1
        (None, 2.0, 1.0, 1.1),           # no previous: the walk starts from neutral 1.0
        (None, 1.0, 1.0, 1.0),
        (math.nan, 2.0, 1.0, 1.1),       # an unusable previous counts as no previous
        (0.0, 2.0, 1.0, 1.1),
        (-1.0, 0.25, 1.0, 1 / 1.1),
        (1.9, 2.0, 1.0, 2.0),            # band up to 2.09 but the ceiling is 2.0
        (0.26, 0.25, 1.0, 0.25),         # the floor
        (5.0, 1.0, 1.0, 2.0),            # a previous outside the clamp still yields a clamped factor
        (1.0, math.inf, 1.0, 1.1),
        (1.0, -math.inf, 1.0, 1 / 1.1),
        (1.2, 2.0, 0.0, 1.2),            # no time elapsed: no move
        (1.2, 2.0, -3.0, 1.2),           # a previous dated later (clock skew) never widens the band
        (1.0, 2.0, 1e9, 2.0),            # long gaps: any factor reachable, no overflow
    ],
)
def test_limit_step_exact_values(previous, proposed, hours, expected):
    assert limit_step(previous, proposed, hours=hours, step_per_hour=0.10) == pytest.approx(expected, rel=1e-15)


def test_limit_step_honours_narrowed_clamp():
    assert limit_step(1.4, 2.0, hours=10, step_per_hour=0.25, factor_min=0.5, factor_max=1.5) == 1.5
    assert limit_step(0.6, 0.25, hours=10, step_per_hour=0.25, factor_min=0.5, factor_max=1.5) == 0.5


@given(st.none() | st.floats(FACTOR_FLOOR, FACTOR_CEILING), st.floats(FACTOR_FLOOR, FACTOR_CEILING),
       st.floats(0.0, 48.0), st.sampled_from([0.05, 0.1, 0.5]))
def test_limit_step_moves_at_most_one_step_per_hour_compounding(previous, proposed, hours, step):
    start = 1.0 if previous is None else previous
    result = limit_step(previous, proposed, hours=hours, step_per_hour=step)
    reach = (1.0 + step) ** hours
    low, high = max(FACTOR_FLOOR, start / reach), min(FACTOR_CEILING, start * reach)
    assert low * (1 - 1e-12) <= result <= high * (1 + 1e-12)
    if low <= proposed <= high:
        assert result == proposed


@settings(max_examples=200)
@given(st.floats(FACTOR_FLOOR, FACTOR_CEILING), st.lists(st.tuples(st.floats(FACTOR_FLOOR, FACTOR_CEILING),
                                                                     st.floats(0.0, 5.0)), min_size=1, max_size=20))
def test_limit_step_same_walk_whatever_the_recompute_interval(start, proposals):
    # However the elapsed time is cut into recomputes, the factor never moves faster than (1 + s)^dt.
    factor, elapsed = start, 0.0
    for proposed, hours in proposals:
        factor = limit_step(factor, proposed, hours=hours, step_per_hour=0.10)
        elapsed += hours
    reach = 1.1 ** elapsed
    assert start / reach * (1 - 1e-9) <= factor <= start * reach * (1 + 1e-9)


@given(st.none() | any_float, st.floats(allow_nan=False, allow_infinity=True), st.floats(0.0, 1e6))
def test_limit_step_never_leaves_the_clamp(previous, proposed, hours):
    assert FACTOR_FLOOR <= limit_step(previous, proposed, hours=hours, step_per_hour=0.1) <= FACTOR_CEILING


def test_limit_step_with_nan_proposal_holds_the_previous_factor():
    # evaluate() never proposes NaN today, but limit_step is the last guard before the database
    # and the contract says a factor is always inside [0.25, 2.0].
    assert limit_step(1.2, math.nan, hours=1, step_per_hour=0.1) == 1.2
    assert limit_step(None, math.nan, hours=1, step_per_hour=0.1) == 1.0


# --- stack multipliers -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("vol", "expected"),
    [(0.3, 2.0), (0.6, 1.0), (1.2, 0.5), (6.0, 0.25), (0.4, 1.5), (0.0, 1.0), (-0.5, 1.0), (None, 1.0),
     (math.nan, 1.0), (math.inf, 1.0), (5e-324, 2.0)],
)
def test_inverse_vol_multiplier_exact_values(vol, expected):
    # target / vol with target 0.6, clamped to [0.25, 2.0]; no data or non-positive vol: neutral.
    assert inverse_vol_multiplier(vol, 0.6) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(1.0, 1.0), (2.0, 0.5), (4.0, 0.5), (1.6, 0.625), (0.5, 1.25), (0.9, 1 / 0.9), (0.0, 1.0),
     (-1.0, 1.0), (None, 1.0), (math.nan, 1.0), (math.inf, 1.0), (5e-324, 1.25)],
)
def test_regime_multiplier_exact_values(ratio, expected):
    assert regime_multiplier(ratio) == expected


@pytest.mark.parametrize(
    ("sharpe", "expected"),
    [(0.0, 1.0), (2.0, 1.0 + 0.5 * math.tanh(1.0)), (-2.0, 1.0 - 0.5 * math.tanh(1.0)), (1e6, 1.5),
     (-1e6, 0.5), (None, 1.0), (math.nan, 1.0), (math.inf, 1.0), (-math.inf, 1.0)],
)
def test_sharpe_multiplier_exact_values(sharpe, expected):
    assert sharpe_multiplier(sharpe) == expected


@given(st.none() | any_float, st.floats(0.01, 5.0))
def test_inverse_vol_multiplier_bounded(vol, target):
    assert 0.25 <= inverse_vol_multiplier(vol, target) <= 2.0


@given(st.none() | any_float)
def test_regime_and_sharpe_multipliers_bounded(value):
    assert 0.5 <= regime_multiplier(value) <= 1.25
    assert 0.5 <= sharpe_multiplier(value) <= 1.5
    if value is None or not math.isfinite(value):
        assert regime_multiplier(value) == 1.0
        assert sharpe_multiplier(value) == 1.0
        assert inverse_vol_multiplier(value, 0.6) == 1.0


# --- score_components ------------------------------------------------------------------------

METRIC_KEYS = ("sharpe_7d", "max_drawdown", "atr_regime_ratio", "slippage_bps", "fill_rate", "maker_ratio")
SAMPLE_KEYS = ("active_days", "benchmarked_fill_count", "order_count", "fill_count")
WEIGHTS = {component.name: component.weight for component in COMPONENTS}

metric_dicts = st.fixed_dictionaries(
    {},
    optional={
        **{key: st.none() | any_float | st.integers(-10**6, 10**6) for key in METRIC_KEYS},
        **{key: st.none() | st.integers(-5, 10**6) | any_float for key in SAMPLE_KEYS},
    },
)


def test_score_components_of_nothing_is_zero():
    score, components = score_components({})
    assert score == 0.0
    assert set(components) == set(WEIGHTS)
    assert all(c["contribution"] == 0.0 and c["value"] is None for c in components.values())


def test_score_components_exact_slippage_contribution():
    # 12 bps of cost against a 2 bps centre and a 10 bps scale, direction -1 (cost is bad), 30
    # fills (full sample): 1.0 * 1.0 * tanh(-(12 - 2) / 10) = -tanh(1).
    score, components = score_components({"slippage_bps": 12.0, "benchmarked_fill_count": 30})
    assert components["slippage_bps"]["contribution"] == -math.tanh(1.0)
    assert score == -math.tanh(1.0)


def test_score_components_exact_full_house():
    values = {
        "sharpe_7d": 2.0, "active_days": 7,                      # 1.0 * tanh(2/2)
        "max_drawdown": 0.07,                                     # 1.0 * tanh(-(0.07-0.02)/0.05) = -tanh(1)
        "atr_regime_ratio": 0.5,                                  # 0.75 * tanh(-log2(0.5)/1) = 0.75 tanh(1)
        "slippage_bps": 2.0, "benchmarked_fill_count": 40,        # tanh(0) = 0
        "fill_rate": 1.0, "order_count": 20,                      # 0.5 * tanh((1.0-0.9)/0.1) ~ 0.5 tanh(1)
        "maker_ratio": 0.75, "fill_count": 30,                    # 0.5 * tanh((0.75-0.5)/0.25) = 0.5 tanh(1)
    }
    score, components = score_components(values)
    t1 = math.tanh(1.0)
    assert components["sharpe_7d"]["contribution"] == t1
    assert components["max_drawdown"]["contribution"] == pytest.approx(-t1, rel=1e-12)
    assert components["atr_regime"]["contribution"] == 0.75 * t1
    assert components["slippage_bps"]["contribution"] == 0.0
    assert components["fill_rate"]["contribution"] == pytest.approx(0.5 * t1, rel=1e-12)
    assert components["maker_ratio"]["contribution"] == 0.5 * t1
    assert score == pytest.approx(t1 - t1 + 0.75 * t1 + 0.0 + 0.5 * t1 + 0.5 * t1, rel=1e-12)


@pytest.mark.parametrize(
    ("metric", "value", "sample_key", "full_sample"),
    [("slippage_bps", 9.0, "benchmarked_fill_count", 30), ("fill_rate", 0.7, "order_count", 20),
     ("maker_ratio", 0.8, "fill_count", 30), ("sharpe_7d", 1.3, "active_days", 5)],
)
def test_score_components_shrink_small_samples_linearly(metric, value, sample_key, full_sample):
    def contribution(sample):
        name = "atr_regime" if metric == "atr_regime_ratio" else metric
        return score_components({metric: value, sample_key: sample})[1][name]["contribution"]

    full = contribution(full_sample)
    assert full != 0.0
    # Half the sample, exactly half the weight (multiplying by 0.5 is exact in binary floating point).
    if full_sample % 2 == 0:
        assert contribution(full_sample // 2) == full / 2
    assert contribution(0) == 0.0
    assert contribution(full_sample * 10) == full  # confidence caps at 1
    assert abs(contribution(1)) < abs(full)


def test_score_components_slippage_15_fills_is_exactly_half_of_30():
    half = score_components({"slippage_bps": 9.0, "benchmarked_fill_count": 15})[0]
    full = score_components({"slippage_bps": 9.0, "benchmarked_fill_count": 30})[0]
    assert full == math.tanh(-(9.0 - 2.0) / 10.0)
    assert half == full / 2


@pytest.mark.parametrize("metric", METRIC_KEYS)
@pytest.mark.parametrize("bad", NON_FINITE + [None])
def test_score_components_non_finite_metric_contributes_exactly_zero(metric, bad):
    samples = {"active_days": 7, "benchmarked_fill_count": 30, "order_count": 20, "fill_count": 30}
    good = {"sharpe_7d": 1.0, "max_drawdown": 0.01, "atr_regime_ratio": 0.8, "slippage_bps": 1.0,
            "fill_rate": 0.95, "maker_ratio": 0.6}
    without = {**samples, **{k: v for k, v in good.items() if k != metric}}
    with_bad = {**without, metric: bad}
    assert score_components(with_bad)[0] == score_components(without)[0]
    assert math.isfinite(score_components(with_bad)[0])


@settings(max_examples=300)
@given(metric_dicts)
def test_score_components_bounded_and_never_nan(values):
    score, components = score_components(values)
    assert math.isfinite(score)
    assert abs(score) <= MAX_ABS_SCORE
    assert set(components) == set(WEIGHTS)
    for name, component in components.items():
        contribution = component["contribution"]
        assert math.isfinite(contribution)
        assert abs(contribution) <= WEIGHTS[name]
        if component["value"] is None:
            assert contribution == 0.0
        else:
            assert math.isfinite(component["value"])
    assert score == pytest.approx(sum(c["contribution"] for c in components.values()), abs=1e-12)


@pytest.mark.parametrize("bad_count", [math.nan, math.inf, -math.inf, None, -3])
def test_score_components_non_finite_sample_count_contributes_zero(bad_count):
    # Regression: at e8aa433 `int(sample or 0)` raised on a NaN/inf count instead of contributing 0.
    score, components = score_components({"sharpe_7d": 1.0, "active_days": bad_count})
    assert components["sharpe_7d"]["contribution"] == 0.0
    assert score == 0.0


# --- compute_metrics / evaluate --------------------------------------------------------------

def _inputs(**arrays) -> SymbolInputs:
    return SymbolInputs(symbol="TESTUSDC", as_of_ms=AS_OF_MS, lookback_days=30, base_asset="TEST",
                        quote_asset="USDC", **arrays)


def _evaluate(inputs: SymbolInputs, previous_factor=None, hours=1.0):
    return evaluate(inputs, previous_factor=previous_factor, hours_since_previous=hours, target_volatility=0.6,
                    step_per_hour=0.10)


def _fills(times_ms, *, side=None, qty=None, price=None, arrival=None, maker=None, fee=None) -> dict:
    count = len(times_ms)
    return {
        "fill_time_ms": np.asarray(times_ms, dtype=np.int64),
        "fill_side": np.asarray(side if side is not None else [1.0] * count, dtype=np.float64),
        "fill_qty": np.asarray(qty if qty is not None else [1.0] * count, dtype=np.float64),
        "fill_price": np.asarray(price if price is not None else [100.0] * count, dtype=np.float64),
        "fill_arrival": np.asarray(arrival if arrival is not None else [np.nan] * count, dtype=np.float64),
        "fill_is_maker": np.asarray(maker if maker is not None else [False] * count, dtype=bool),
        "fill_fee": np.asarray(fee if fee is not None else [0.0] * count, dtype=np.float64),
    }


def _hourly_candles(close: np.ndarray, *, end_ms: int = AS_OF_MS) -> dict:
    times = end_ms - np.arange(close.size, 0, -1, dtype=np.int64) * MS_PER_HOUR
    return {"candle_open_ms": times, "open": close.copy(), "high": close * 1.01, "low": close * 0.99,
            "close": close, "volume": np.ones(close.size)}


def test_evaluate_without_data_is_neutral():
    evaluation = _evaluate(_inputs())
    assert evaluation.status == "no_data"
    assert evaluation.score == 0.0
    assert evaluation.raw_size_factor == 1.0
    assert evaluation.size_factor == 1.0
    assert (evaluation.inverse_vol_multiplier, evaluation.regime_multiplier, evaluation.sharpe_multiplier) == (
        1.0, 1.0, 1.0)
    assert evaluation.metrics["candle_count"] == 0 and evaluation.metrics["fill_count"] == 0
    assert evaluation.metrics["sharpe_7d"] is None and evaluation.metrics["atr_pct"] is None


def test_evaluate_without_data_walks_a_previous_factor_back_toward_neutral_in_time():
    evaluation = _evaluate(_inputs(), previous_factor=1.6, hours=2.0)
    assert evaluation.raw_size_factor == 1.0
    assert evaluation.size_factor == pytest.approx(1.6 / 1.1**2, rel=1e-15)  # two hours: /1.21, not straight to 1.0


# Seven daily returns, one of them a day without any fill (0 return), on a 100,000 base.
DAILY_RETURNS = np.array([0.01, -0.005, 0.02, 0.0, 0.015, -0.01, 0.005])
CAPITAL = 100_000.0


def _seven_day_equity_inputs() -> SymbolInputs:
    """One round trip a day (buy 1,000 at 100 at 10:00, sell at 11:00) whose PnL makes DAILY_RETURNS.

    Flat at every day's end, so the equity there is the capital plus the realized PnL so far.
    """
    levels = CAPITAL * np.cumprod(1.0 + DAILY_RETURNS)
    pnl = np.diff(np.concatenate(([CAPITAL], levels)))
    times, sides, prices = [], [], []
    for day in (i for i in range(7) if DAILY_RETURNS[i] != 0.0):
        day_start = AS_OF_MS - (7 - day) * MS_PER_DAY
        times += [day_start + 10 * MS_PER_HOUR, day_start + 11 * MS_PER_HOUR]
        sides += [1.0, -1.0]
        prices += [100.0, 100.0 + pnl[day] / 1_000.0]
    inputs = _inputs(**_fills(times, side=sides, qty=[1_000.0] * len(times), price=prices))
    inputs.capital_base = CAPITAL
    return inputs


def test_compute_metrics_counts_exposure_days_in_the_seven_day_window():
    metrics = compute_metrics(_seven_day_equity_inputs())
    assert metrics["active_days"] == 6  # 7 days, one without a fill or a position
    assert metrics["sharpe_7d"] is not None


def test_compute_metrics_counts_a_day_holding_a_position_as_exposed():
    # One buy 10 days ago, held since: every day of the window is exposed, none has a fill.
    metrics = compute_metrics(_inputs(**_fills([AS_OF_MS - 10 * MS_PER_DAY])))
    assert metrics["active_days"] == 7
    assert metrics["position_qty"] == 1.0


def test_compute_metrics_sharpe_7d_matches_definition():
    # Regression: at e8aa433 the window started one UTC day early, so sharpe_7d was the Sharpe of
    # 8 returns (a leading 0 return): 8.2308 here instead of 8.8439.
    # Definition: simple daily returns of the equity at each UTC day's end over the 7 UTC days,
    # quiet days 0, mean / std(ddof=1) * sqrt(365).
    expected = DAILY_RETURNS.mean() / DAILY_RETURNS.std(ddof=1) * math.sqrt(365)  # 8.8439
    metrics = compute_metrics(_seven_day_equity_inputs())
    assert metrics["sharpe_7d"] == pytest.approx(expected, rel=1e-9)
    assert metrics["realized_pnl"] == pytest.approx(CAPITAL * (np.prod(1 + DAILY_RETURNS) - 1), rel=1e-12)


def test_compute_metrics_max_drawdown_of_the_equity_path():
    levels = CAPITAL * np.cumprod(1.0 + DAILY_RETURNS)
    # The worst fall: peak after day 5 (1.01*0.995*1.02*1.0*1.015) to the close of day 6 (-1%).
    expected = 0.01
    metrics = compute_metrics(_seven_day_equity_inputs())
    assert metrics["max_drawdown"] == pytest.approx(expected, rel=1e-9)
    assert levels.max() == levels[4]


def test_compute_metrics_marks_an_open_losing_position():
    # Bought 10 at 100 two days ago; the market fell to 80: unrealized -200 shows in equity and drawdown.
    close = np.concatenate((np.full(100, 100.0), np.full(47, 80.0)))
    inputs = _inputs(**_hourly_candles(close), **_fills([AS_OF_MS - 48 * MS_PER_HOUR], qty=[10.0], price=[100.0]))
    inputs.capital_base = 1_000.0
    metrics = compute_metrics(inputs)
    assert metrics["unrealized_pnl"] == pytest.approx(-200.0, rel=1e-12)
    assert metrics["realized_pnl"] == 0.0
    assert metrics["equity"] == pytest.approx(800.0, rel=1e-12)
    assert metrics["max_drawdown"] == pytest.approx(0.2, rel=1e-12)


def test_compute_metrics_default_capital_is_the_largest_notional_held():
    # No capital set: the same trades in BTC or in satoshi units give the same returns.
    def metrics_for(scale):
        close = np.full(200, 100.0 * scale)
        close[-30:] = 110.0 * scale
        return compute_metrics(_inputs(**_hourly_candles(close),
                                       **_fills([AS_OF_MS - 60 * MS_PER_HOUR], qty=[5.0], price=[100.0 * scale])))
    small, large = metrics_for(1e-5), metrics_for(1e3)
    assert small["capital"] == pytest.approx(5 * 100.0 * 1e-5, rel=1e-12)
    assert small["max_drawdown"] == pytest.approx(large["max_drawdown"], abs=1e-12)
    assert small["sharpe_7d"] == pytest.approx(large["sharpe_7d"], rel=1e-9)


def test_evaluate_sharpe_multiplier_follows_sharpe_7d_shrunk_by_exposure():
    inputs = _seven_day_equity_inputs()
    candles = _hourly_candles(np.full(300, 100.0))
    for name, values in candles.items():
        setattr(inputs, name, values)
    inputs.last_candle_close_ms = AS_OF_MS
    evaluation = _evaluate(inputs)
    confidence = evaluation.components["sharpe_7d"]["confidence"]
    assert confidence == 1.0  # 6 exposure days >= 5
    assert evaluation.sharpe_multiplier == 1.0 + 0.5 * math.tanh(evaluation.metrics["sharpe_7d"] / 2.0)
    assert evaluation.status == "partial"  # no orders or benchmarks


def test_fills_without_any_candle_are_stale_input():
    evaluation = _evaluate(_seven_day_equity_inputs())
    assert evaluation.status == "stale_input"  # no market to mark the position against
    assert evaluation.sharpe_multiplier == 1.0


def test_one_fill_barely_moves_the_stack_sharpe_multiplier():
    # A single profitable round trip: a 7-day Sharpe of +7.2 that used to give x1.499.
    day = AS_OF_MS - MS_PER_DAY
    close = np.full(400, 100.0)
    inputs = _inputs(**_hourly_candles(close), **_fills([day, day + MS_PER_HOUR], side=[1.0, -1.0],
                                                         qty=[1.0, 1.0], price=[100.0, 101.0]))
    evaluation = _evaluate(inputs)
    assert evaluation.metrics["sharpe_7d"] == pytest.approx(math.sqrt(365 / 7), rel=1e-9)  # one non-zero day of 7
    assert evaluation.metrics["active_days"] == 1
    expected = 1.0 + 0.5 * math.tanh(evaluation.metrics["sharpe_7d"] / 2.0) * (1 / 5)
    assert evaluation.sharpe_multiplier == pytest.approx(expected, rel=1e-15)
    assert evaluation.sharpe_multiplier < 1.1


def test_compute_metrics_slippage_sign_buys_above_and_sells_below_arrival_are_costs():
    now = AS_OF_MS - MS_PER_HOUR
    # buy 1 at 101 vs arrival 100: +1 * 1 / 100 * 1e4 = +100 bps (cost)
    # sell 3 at 99 vs arrival 100: -1 * -1 / 100 * 1e4 = +100 bps (cost)
    costs = compute_metrics(_inputs(**_fills(
        [now, now], side=[1.0, -1.0], qty=[1.0, 3.0], price=[101.0, 99.0], arrival=[100.0, 100.0])))
    assert costs["slippage_bps"] == pytest.approx(100.0, rel=1e-12)
    # buy 1 at 101 (+100 bps) and sell 3 at 100.5 (-50 bps, an improvement): qty-weighted
    # (100 * 1 - 50 * 3) / 4 = -12.5 bps
    mixed = compute_metrics(_inputs(**_fills(
        [now, now], side=[1.0, -1.0], qty=[1.0, 3.0], price=[101.0, 100.5], arrival=[100.0, 100.0])))
    assert mixed["slippage_bps"] == pytest.approx(-12.5, rel=1e-12)
    assert mixed["benchmarked_fill_count"] == 2


def test_compute_metrics_slippage_ignores_fills_without_arrival_and_old_fills():
    now, old = AS_OF_MS - MS_PER_HOUR, AS_OF_MS - 8 * MS_PER_DAY
    metrics = compute_metrics(_inputs(**_fills(
        [old, now, now], side=[1.0, 1.0, 1.0], price=[200.0, 150.0, 101.0], arrival=[100.0, np.nan, 100.0])))
    assert metrics["fill_count"] == 2  # the 8-day-old fill is outside the 7-day execution window
    assert metrics["benchmarked_fill_count"] == 1
    assert metrics["slippage_bps"] == pytest.approx(100.0, rel=1e-12)


def test_compute_metrics_fill_rate_and_maker_ratio():
    now = AS_OF_MS - MS_PER_HOUR
    metrics = compute_metrics(_inputs(
        **_fills([now, now, now], qty=[1.0, 1.0, 2.0], maker=[True, False, True]),
        order_requested_qty=np.array([2.0, 2.0]), order_filled_qty=np.array([2.0, 1.0]),
    ))
    assert metrics["maker_ratio"] == 0.75  # (1 + 2) / 4
    assert metrics["fill_rate"] == 0.75    # (2 + 1) / (2 + 2)
    assert metrics["order_count"] == 2


def test_compute_metrics_atr_pct_is_the_last_atr_pct_of_the_hourly_bars():
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    candles = _hourly_candles(close)
    metrics = compute_metrics(_inputs(**candles))
    assert metrics["atr_pct"] == atr_pct(candles["high"], candles["low"], close, 14)[-1]
    assert metrics["last_close"] == close[-1]
    assert metrics["candle_count"] == 200
    assert metrics["atr_regime_ratio"] is not None  # 200 bars > 168 + 1


def test_the_window_is_a_span_of_hours_not_a_count_of_bars():
    # 30 days of hourly candles and more before: the window holds exactly 720 hours at any minute of the hour.
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.01, 900)))
    counts = set()
    for minute in (0, 1, 30, 59):
        inputs = _inputs(**_hourly_candles(close, end_ms=AS_OF_MS))
        inputs.as_of_ms = AS_OF_MS + minute * 60_000
        counts.add(compute_metrics(inputs)["candle_count"])
    assert counts == {720}


def test_a_fill_after_as_of_is_not_seen():
    base = _inputs(**_fills([AS_OF_MS - MS_PER_HOUR], qty=[1.0], price=[100.0]))
    later = _inputs(**_fills([AS_OF_MS - MS_PER_HOUR, AS_OF_MS, AS_OF_MS + 1], qty=[1.0, 9.0, 9.0],
                             price=[100.0, 50.0, 50.0]))
    assert compute_metrics(base) == compute_metrics(later)


def test_stale_candles_give_a_neutral_stale_input_evaluation():
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.02, 400)))
    fresh = _evaluate(_inputs(**_hourly_candles(close)))
    stopped = _evaluate(_inputs(**_hourly_candles(close, end_ms=AS_OF_MS - 48 * MS_PER_HOUR)), previous_factor=1.5)
    assert fresh.status != "stale_input"
    assert stopped.status == "stale_input"
    assert stopped.metrics["last_candle_at_ms"] == AS_OF_MS - 48 * MS_PER_HOUR
    assert (stopped.inverse_vol_multiplier, stopped.regime_multiplier, stopped.sharpe_multiplier) == (1.0, 1.0, 1.0)
    assert stopped.raw_size_factor == 1.0
    assert stopped.size_factor == pytest.approx(1.5 / 1.1, rel=1e-15)  # walks toward neutral in time


# Arrival prices: realistic positives plus the unusable ones (NaN, inf, 0, negative) the loader can pass.
arrival_prices = st.floats(1e-6, 1e6) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, -1.0]), st.floats(1e-6, 1e4), st.floats(1e-4, 1e4),
                          arrival_prices), min_size=0, max_size=40),
       st.none() | st.floats(FACTOR_FLOOR, FACTOR_CEILING), st.floats(0.0, 10.0))
def test_evaluate_always_yields_a_clamped_factor(fills, previous, hours):
    # Arbitrary sides, quantities, prices and arrivals (incl. NaN/inf) in the execution window.
    times = [AS_OF_MS - (i + 1) * MS_PER_HOUR for i in range(len(fills))][::-1]
    evaluation = _evaluate(_inputs(**_fills(times, side=[f[0] for f in fills], qty=[f[1] for f in fills],
                                            price=[f[2] for f in fills], arrival=[f[3] for f in fills])),
                           previous_factor=previous, hours=hours)
    assert math.isfinite(evaluation.score) and abs(evaluation.score) <= MAX_ABS_SCORE
    assert FACTOR_FLOOR <= evaluation.raw_size_factor <= FACTOR_CEILING
    assert FACTOR_FLOOR <= evaluation.size_factor <= FACTOR_CEILING
    start = 1.0 if previous is None else previous
    reach = 1.1**hours
    assert start / reach * (1 - 1e-12) <= evaluation.size_factor <= start * reach * (1 + 1e-12)


def test_evaluate_survives_losses_larger_than_the_capital_base():
    # Regression: at e8aa433 a negative equity level made metrics.max_drawdown raise, so evaluate()
    # failed and the worst-performing symbol never got a new (smaller) factor.
    # capital 1,000; bought 100 at 100 and sold at 85 an hour before as_of: a 1,500 loss, equity -500.
    close = np.full(300, 100.0)
    inputs = _inputs(**_hourly_candles(close), **_fills([AS_OF_MS - 3 * MS_PER_HOUR, AS_OF_MS - MS_PER_HOUR],
                                                        side=[1.0, -1.0], qty=[100.0, 100.0], price=[100.0, 85.0]))
    inputs.capital_base = 1_000.0
    evaluation = _evaluate(inputs)
    assert evaluation.metrics["max_drawdown"] == 1.0
    assert evaluation.components["max_drawdown"]["contribution"] < 0
    assert evaluation.size_factor < 1.0
