"""Typed results: frozen dataclasses built from the service's JSON.

Fields the service adds later are ignored (the contract allows new fields); a field that is
missing or of the wrong type is an UnexpectedResponse, never a half-filled result.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from .errors import UnexpectedResponse

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """One ledger row: a size handed out. final_size = inverse_vol_size x regime x sharpe x applied_factor.

    replayed is True when this caller had already sized this order_ref with the same inputs: this
    is the original decision and nothing new was written.
    """

    id: int
    seq: int
    created_at: datetime
    symbol: str
    gross_target: float
    inverse_vol_size: float
    regime_multiplier: float
    sharpe_multiplier: float
    intel_factor: float
    applied_factor: float
    final_size: float
    mode: str
    stale: bool
    fallback_reason: str
    snapshot_id: int | None
    score: float | None
    override_id: int | None
    order_ref: str
    caller: str
    journal_ref: str
    prev_hash: str
    row_hash: str
    replayed: bool


@dataclass(frozen=True)
class LatestOverride:
    """The active override on a symbol: a pinned factor and/or a pinned mode ("" when it pins only a factor)."""

    id: int
    pinned_factor: float | None
    mode: str
    expires_at: datetime | None


@dataclass(frozen=True)
class LatestFactor:
    """What sizing applies to a symbol now: final size = gross target x total_multiplier."""

    symbol: str
    snapshot_id: int
    as_of: datetime
    status: str
    score: float
    size_factor: float
    sharpe_7d: float | None
    atr_regime_ratio: float | None
    # A dict cannot be hashed: left out of the hash so a LatestFactor still can be.
    components: dict[str, Any] = field(hash=False)
    mode: str
    override: LatestOverride | None
    stale: bool
    fallback_reason: str
    intel_factor: float
    applied_factor: float
    inverse_vol_multiplier: float
    regime_multiplier: float
    sharpe_multiplier: float
    total_multiplier: float
    age_seconds: float


@dataclass(frozen=True)
class Order:
    """One order of a batch. Without an order_ref the batch cannot be retried safely after a lost answer."""

    symbol: str
    gross_target: float
    order_ref: str | None = None


def _is_number(value: object) -> bool:
    # bool is an int in Python, never a number in JSON.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(value, inner, where)
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value, where=where)
    if hint is float and _is_number(value):
        return float(value)
    if hint is int and _is_number(value) and isinstance(value, int):
        return value
    if hint is datetime and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)  # 3.11 reads DRF's trailing "Z"
        except ValueError:
            pass
    elif (hint in (str, bool) and isinstance(value, hint)) or ((origin or hint) is dict and isinstance(value, dict)):
        return value
    expected = getattr(hint, "__name__", hint)
    raise UnexpectedResponse(f"the service answered {where} = {value!r}, which is not a {expected}")


def from_json(cls: type[T], body: Any, *, where: str = "") -> T:
    """An instance of the dataclass `cls` from a JSON object: unknown keys ignored, missing ones an error."""
    name = where or cls.__name__
    if not isinstance(body, dict):
        raise UnexpectedResponse(f"the service answered {name} as {type(body).__name__}, not a JSON object")
    hints = typing.get_type_hints(cls)
    values = {}
    for item in dataclasses.fields(cls):
        if item.name not in body:
            raise UnexpectedResponse(f"the service's {name} has no {item.name!r} field")
        values[item.name] = _convert(body[item.name], hints[item.name], f"{name}.{item.name}")
    return cls(**values)
