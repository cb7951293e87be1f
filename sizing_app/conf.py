"""The sizing knobs from Django settings, validated once and cached.

Settings may narrow the factor clamp [0.25, 2.0], never widen it; a bad value stops start-up.
"""
import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .domain import metrics, scoring, stack
from .models import Mode

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class SizingSettings:
    recompute_seconds: int
    max_age_seconds: int
    factor_min: float
    factor_max: float
    max_step_per_hour: float
    candle_interval: str
    max_candle_age_seconds: int
    lookback_days: int
    target_volatility: float
    capital_base: float | None
    default_mode: str
    max_gross: float
    total_min: float
    total_max: float
    max_clock_skew_seconds: int


@lru_cache(maxsize=1)
def sizing_settings() -> SizingSettings:
    values = SizingSettings(
        recompute_seconds=int(settings.SIZING_RECOMPUTE_SECONDS),
        max_age_seconds=int(settings.SIZING_MAX_AGE_SECONDS),
        factor_min=float(settings.SIZING_FACTOR_MIN),
        factor_max=float(settings.SIZING_FACTOR_MAX),
        max_step_per_hour=float(settings.SIZING_MAX_STEP_PER_HOUR),
        candle_interval=metrics.normalize_interval(str(settings.SIZING_CANDLE_INTERVAL)),
        max_candle_age_seconds=int(settings.SIZING_MAX_CANDLE_AGE_SECONDS or 0),
        lookback_days=int(settings.SIZING_LOOKBACK_DAYS),
        target_volatility=float(settings.SIZING_TARGET_VOLATILITY),
        capital_base=None if settings.SIZING_CAPITAL_BASE in (None, "") else float(settings.SIZING_CAPITAL_BASE),
        default_mode=str(settings.SIZING_DEFAULT_MODE),
        max_gross=float(settings.SIZING_MAX_GROSS),
        total_min=float(settings.SIZING_TOTAL_MIN),
        total_max=float(settings.SIZING_TOTAL_MAX),
        max_clock_skew_seconds=int(settings.SIZING_MAX_CLOCK_SKEW_SECONDS),
    )
    problems = []
    if not scoring.FACTOR_FLOOR <= values.factor_min <= 1.0:
        problems.append(f"SIZING_FACTOR_MIN={values.factor_min} must be within [{scoring.FACTOR_FLOOR}, 1.0]")
    if not 1.0 <= values.factor_max <= scoring.FACTOR_CEILING:
        problems.append(f"SIZING_FACTOR_MAX={values.factor_max} must be within [1.0, {scoring.FACTOR_CEILING}]")
    if not 0.0 < values.max_step_per_hour <= 1.0:
        problems.append(f"SIZING_MAX_STEP_PER_HOUR={values.max_step_per_hour} must be in (0, 1] "
                        "(0.10 means at most x1.10 or /1.10 per hour)")
    if hasattr(settings, "SIZING_MAX_STEP"):
        problems.append("SIZING_MAX_STEP (a step per recompute) is replaced by SIZING_MAX_STEP_PER_HOUR "
                        "(a step per hour, whatever the recompute interval): set that instead")
    if values.recompute_seconds < 10:
        problems.append(f"SIZING_RECOMPUTE_SECONDS={values.recompute_seconds} must be at least 10")
    if values.max_age_seconds < values.recompute_seconds:
        problems.append("SIZING_MAX_AGE_SECONDS must be at least SIZING_RECOMPUTE_SECONDS")
    if values.lookback_days < 8:
        problems.append(f"SIZING_LOOKBACK_DAYS={values.lookback_days} must be at least 8 (the Sharpe window)")
    if not values.target_volatility > 0:
        problems.append("SIZING_TARGET_VOLATILITY must be positive")
    if values.capital_base is not None and not values.capital_base > 0:
        problems.append("SIZING_CAPITAL_BASE must be positive, or unset for each symbol's largest notional held")
    if not 0 <= values.max_clock_skew_seconds <= 3_600:
        problems.append(f"SIZING_MAX_CLOCK_SKEW_SECONDS={values.max_clock_skew_seconds} must be within [0, 3600]")
    if not stack.TOTAL_FLOOR <= values.total_min <= 1.0 <= values.total_max <= stack.TOTAL_CEILING:
        problems.append(f"SIZING_TOTAL_MIN={values.total_min} and SIZING_TOTAL_MAX={values.total_max} must satisfy "
                        f"{stack.TOTAL_FLOOR} <= min <= 1 <= max <= {stack.TOTAL_CEILING} (they may narrow, not widen)")
    if not 1.0 <= values.max_gross <= 1e15:
        problems.append(f"SIZING_MAX_GROSS={values.max_gross} must be within [1, 1e15]")
    if values.default_mode not in Mode.values:
        problems.append(f"SIZING_DEFAULT_MODE={values.default_mode!r} must be one of {', '.join(Mode.values)}")
    try:
        interval_ms = metrics.interval_milliseconds(values.candle_interval)
    except ValueError as exc:
        problems.append(f"SIZING_CANDLE_INTERVAL: {exc}")
    else:
        if HOUR_MS % interval_ms:
            problems.append(f"SIZING_CANDLE_INTERVAL={values.candle_interval!r} must divide an hour (1m, 3m, 5m, "
                            "15m, 30m or 1h): the metrics read hourly bars built from the candles")
        elif not values.max_candle_age_seconds:
            values = dataclasses.replace(values, max_candle_age_seconds=3 * interval_ms // 1000)
    if values.max_candle_age_seconds < 0:
        problems.append("SIZING_MAX_CANDLE_AGE_SECONDS must be positive (blank: 3 candle intervals)")
    if problems:
        raise ImproperlyConfigured("Invalid sizing settings: " + "; ".join(problems))
    return values


def snapshot_is_stale(age_seconds: float) -> bool:
    """Too old to trust, or dated ahead of this clock by more than one recompute interval.

    A snapshot from the future was computed while some clock ran fast; once the clock is put
    right it would otherwise look fresh for as long as it had run ahead, hiding every snapshot
    computed since. Either way sizing falls back to a neutral factor until a recompute succeeds.
    """
    config = sizing_settings()
    return age_seconds > config.max_age_seconds or age_seconds < -config.recompute_seconds


@receiver(setting_changed)
def _forget_cached_settings(*, setting, **kwargs):
    if setting.startswith("SIZING_"):
        sizing_settings.cache_clear()
