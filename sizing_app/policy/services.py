"""Policy changes: global and per-symbol mode, and overrides. Each is kept in history with its author.

A change takes effect in this process at once and in every other within the cache refresh period.
"""
from __future__ import annotations

import math
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..conf import sizing_settings
from ..models import GlobalPolicy, Mode, Override, Symbol
from ..sizing.hot_state import hot_state
from ..sizing.validation import validate_symbol


def _validate_mode(mode: str, *, allow_blank: bool) -> str:
    if mode == "" and allow_blank:
        return mode
    if mode not in Mode.values:
        raise ValueError(f"Unknown mode {mode!r}: expected one of {', '.join(Mode.values)}.")
    return mode


def _save_with_author(instance, user) -> None:
    instance._history_user = user  # simple_history records who made the change
    instance.save()
    hot_state.invalidate()
    transaction.on_commit(hot_state.invalidate)


@transaction.atomic
def global_mode_set(*, mode: str, user) -> GlobalPolicy:
    mode = _validate_mode(mode, allow_blank=False)
    # One history row per change, with its author, even for the very first one.
    policy = (GlobalPolicy.objects.select_for_update().filter(pk=GlobalPolicy.SINGLETON_PK).first()
              or GlobalPolicy(pk=GlobalPolicy.SINGLETON_PK))
    policy.mode = mode
    _save_with_author(policy, user)
    return policy


@transaction.atomic
def symbol_mode_set(*, symbol: str, mode: str, user) -> Symbol:
    """Set a symbol's own mode; "" makes it follow the global mode again."""
    record = Symbol.objects.select_for_update().filter(name=validate_symbol(symbol)).first()
    if record is None:
        raise ValueError(f"Unknown symbol {symbol!r}.")
    record.mode = _validate_mode(mode, allow_blank=True)
    _save_with_author(record, user)
    return record


@transaction.atomic
def override_create(
    *, symbol: str, reason: str, author, pinned_factor: float | None = None, mode: str = "",
    expires_at: datetime | None = None,
) -> Override:
    """Pin a symbol's factor and/or mode until `expires_at` (or until revoked)."""
    record = Symbol.objects.filter(name=validate_symbol(symbol)).first()
    if record is None:
        raise ValueError(f"Unknown symbol {symbol!r}.")
    if not (reason or "").strip():
        raise ValueError("An override needs a reason.")
    if pinned_factor is None and not mode:
        raise ValueError("An override pins a factor, a mode, or both.")
    if pinned_factor is not None:
        config = sizing_settings()
        if isinstance(pinned_factor, bool) or not isinstance(pinned_factor, (int, float)) or not math.isfinite(
            pinned_factor
        ) or not config.factor_min <= pinned_factor <= config.factor_max:
            raise ValueError(
                f"pinned_factor must be a number within [{config.factor_min}, {config.factor_max}], "
                f"got {pinned_factor!r}."
            )
        pinned_factor = float(pinned_factor)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("expires_at must be in the future.")
    override = Override(
        symbol=record, pinned_factor=pinned_factor, mode=_validate_mode(mode, allow_blank=True),
        reason=reason.strip(), author=author, expires_at=expires_at,
    )
    _save_with_author(override, author)
    return override


@transaction.atomic
def override_revoke(*, override_id: int, user) -> Override:
    override = Override.objects.select_for_update().filter(pk=override_id).first()
    if override is None:
        raise ValueError(f"Unknown override {override_id}.")
    if override.revoked_at is None:
        override.revoked_at = timezone.now()
        _save_with_author(override, user)
    return override
