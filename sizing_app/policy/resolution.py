"""Policy resolution: which mode and override are in force for a symbol, and what they do to its factor.

An active override's mode wins, then the symbol's own mode, then the global one. A pinned factor
replaces the persisted one; only live mode applies the factor (shadow and off apply 1.0 and keep
the factor on record). The hot state holds a PolicyState per process; policy/services.py writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from ..conf import sizing_settings
from ..domain.stack import checked_multiplier
from ..models import GlobalPolicy, Mode, Override, Symbol


@dataclass(frozen=True)
class EffectivePolicy:
    """The policy in force for one symbol at one instant."""

    mode: str
    override: Override | None
    pinned_factor: float | None


@dataclass(frozen=True)
class PolicyState:
    """Every symbol's policy inputs, read together; `effective` resolves one symbol's at an instant."""

    global_mode: str
    symbol_modes: dict[str, str]
    overrides: dict[str, tuple[Override, ...]]  # newest first, not revoked; expiry checked at read
    symbols_active: dict[str, bool]  # every registered symbol: whether it is active

    def effective(self, symbol: str, now: datetime) -> EffectivePolicy:
        override = next((o for o in self.overrides.get(symbol, ()) if o.is_active(now)), None)
        if override is not None and override.mode:
            mode = override.mode
        else:
            mode = self.symbol_modes.get(symbol) or self.global_mode
        return EffectivePolicy(mode=mode, override=override,
                               pinned_factor=override.pinned_factor if override else None)


def global_mode() -> str:
    """The global mode: GlobalPolicy's single row, or SIZING_DEFAULT_MODE before anyone set one."""
    mode = GlobalPolicy.objects.filter(pk=GlobalPolicy.SINGLETON_PK).values_list("mode", flat=True).first()
    return mode or sizing_settings().default_mode


def policy_state_load() -> PolicyState:
    symbols = list(Symbol.objects.values_list("name", "mode", "is_active"))
    overrides: dict[str, list[Override]] = {}
    for override in Override.objects.active(timezone.now()).select_related("symbol").order_by("-created_at", "-pk"):
        overrides.setdefault(override.symbol.name, []).append(override)
    return PolicyState(
        global_mode=global_mode(),
        symbol_modes={name: mode for name, mode, _ in symbols if mode},
        overrides={name: tuple(items) for name, items in overrides.items()},
        symbols_active={name: active for name, _, active in symbols},
    )


def policy_signature() -> tuple:
    """Changes whenever any policy row is written (every write goes through simple_history)."""
    signature = []
    for model in (GlobalPolicy, Symbol, Override):
        history = model.history.model.objects.aggregate(last=Max("history_id"), rows=Count("history_id"))
        signature.append((history["last"], history["rows"]))
    return tuple(signature)


def policy_apply(*, intel: dict[str, Any], policy: EffectivePolicy) -> tuple[float, float, str]:
    """(intel_factor, applied_factor, fallback_reason) for a persisted intel dict under a policy.

    A pinned override replaces the persisted factor (still within the clamp); only live mode
    applies the factor, shadow and off apply 1.0 and keep the factor on record.
    """
    config = sizing_settings()
    intel_factor = checked_multiplier("intel size_factor", intel.get("size_factor", 1.0))
    fallback_reason = intel.get("fallback_reason", "") or ""
    if policy.pinned_factor is not None:
        intel_factor = policy.pinned_factor
        fallback_reason = ""
    # The clamp in force now wins over whatever was persisted or pinned under another one.
    intel_factor = min(max(intel_factor, config.factor_min), config.factor_max)
    applied_factor = intel_factor if policy.mode == Mode.LIVE else 1.0
    return intel_factor, applied_factor, fallback_reason
