"""The sizing knobs from Django settings, validated once and cached.

Settings may narrow the factor clamp [0.25, 2.0], never widen it; a bad value stops start-up.
"""
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .domain import metrics, scoring, stack
from .models import Mode


@dataclass(frozen=True)
class SizingSettings:
    recompute_seconds: int
    max_age_seconds: int
    factor_min: float
    factor_max: float
    max_step: float
    candle_interval: str
    lookback_days: int
    target_volatility: float
    capital_base: float
    default_mode: str
    max_gross: float
    total_min: float
    total_max: float


@lru_cache(maxsize=1)
def sizing_settings() -> SizingSettings:
    values = SizingSettings(
        recompute_seconds=int(settings.SIZING_RECOMPUTE_SECONDS),
        max_age_seconds=int(settings.SIZING_MAX_AGE_SECONDS),
        factor_min=float(settings.SIZING_FACTOR_MIN),
        factor_max=float(settings.SIZING_FACTOR_MAX),
        max_step=float(settings.SIZING_MAX_STEP),
        candle_interval=str(settings.SIZING_CANDLE_INTERVAL),
        lookback_days=int(settings.SIZING_LOOKBACK_DAYS),
        target_volatility=float(settings.SIZING_TARGET_VOLATILITY),
        capital_base=float(settings.SIZING_CAPITAL_BASE),
        default_mode=str(settings.SIZING_DEFAULT_MODE),
        max_gross=float(settings.SIZING_MAX_GROSS),
        total_min=float(settings.SIZING_TOTAL_MIN),
        total_max=float(settings.SIZING_TOTAL_MAX),
    )
    problems = []
    if not scoring.FACTOR_FLOOR <= values.factor_min <= 1.0:
        problems.append(f"SIZING_FACTOR_MIN={values.factor_min} must be within [{scoring.FACTOR_FLOOR}, 1.0]")
    if not 1.0 <= values.factor_max <= scoring.FACTOR_CEILING:
        problems.append(f"SIZING_FACTOR_MAX={values.factor_max} must be within [1.0, {scoring.FACTOR_CEILING}]")
    if not 0.0 < values.max_step <= 1.0:
        problems.append(f"SIZING_MAX_STEP={values.max_step} must be in (0, 1] (0.25 means +/-25% per recompute)")
    if values.recompute_seconds < 10:
        problems.append(f"SIZING_RECOMPUTE_SECONDS={values.recompute_seconds} must be at least 10")
    if values.max_age_seconds < values.recompute_seconds:
        problems.append("SIZING_MAX_AGE_SECONDS must be at least SIZING_RECOMPUTE_SECONDS")
    if values.lookback_days < 8:
        problems.append(f"SIZING_LOOKBACK_DAYS={values.lookback_days} must be at least 8 (the Sharpe window)")
    if not values.target_volatility > 0 or not values.capital_base > 0:
        problems.append("SIZING_TARGET_VOLATILITY and SIZING_CAPITAL_BASE must be positive")
    if not stack.TOTAL_FLOOR <= values.total_min <= 1.0 <= values.total_max <= stack.TOTAL_CEILING:
        problems.append(f"SIZING_TOTAL_MIN={values.total_min} and SIZING_TOTAL_MAX={values.total_max} must satisfy "
                        f"{stack.TOTAL_FLOOR} <= min <= 1 <= max <= {stack.TOTAL_CEILING} (they may narrow, not widen)")
    if not 1.0 <= values.max_gross <= 1e15:
        problems.append(f"SIZING_MAX_GROSS={values.max_gross} must be within [1, 1e15]")
    if values.default_mode not in Mode.values:
        problems.append(f"SIZING_DEFAULT_MODE={values.default_mode!r} must be one of {', '.join(Mode.values)}")
    try:
        metrics.bars_per_year(values.candle_interval)
    except ValueError as exc:
        problems.append(f"SIZING_CANDLE_INTERVAL: {exc}")
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
