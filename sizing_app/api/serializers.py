"""Small input and output serializers, one pair per operation; they hold shapes, never business rules."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..domain.metrics import normalize_interval, on_interval_grid
from ..models import Mode, Order, Override, RecomputeRun, Side, SizingDecision, SizingSnapshot, Symbol
from ..sizing.validation import MAX_TEXT
from .fields import (
    FiniteFloatField,
    GrossTargetField,
    MoneyField,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    SymbolField,
    TextField,
    UtcDateTimeField,
)

MAX_SIZE_BATCH = 1000


# Errors ------------------------------------------------------------------------------------------
class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable error code, e.g. invalid, not_found, throttled.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.JSONField(
        allow_null=True, help_text="Field errors ({field: [messages]}), row errors ({errors: [...]}), or null."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# Symbols -----------------------------------------------------------------------------------------
class SymbolOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Symbol
        fields = ["name", "is_active", "mode", "capital_base"]


# Factors -----------------------------------------------------------------------------------------
@extend_schema_field({"type": "object", "additionalProperties": {"type": "object", "additionalProperties": True},
                      "description": "Score components: {name: {value, contribution, weight, ...}}."})
class ComponentsField(serializers.JSONField):
    pass


class LatestOverrideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pinned_factor = serializers.FloatField(allow_null=True, help_text="The factor pinned instead of the persisted one.")
    mode = serializers.CharField(help_text='The mode pinned ("" when the override pins only a factor).')
    expires_at = serializers.DateTimeField(allow_null=True)


class LatestFactorOutputSerializer(serializers.Serializer):
    """What size_for applies to the symbol now: final size = gross target x total_multiplier."""

    symbol = serializers.CharField()
    snapshot_id = serializers.IntegerField()
    as_of = serializers.DateTimeField(help_text="Start of the snapshot's recompute bucket.")
    status = serializers.ChoiceField(choices=SizingSnapshot.Status.choices)
    score = serializers.FloatField()
    size_factor = serializers.FloatField(help_text="The snapshot's persisted intelligence factor, before policy.")
    sharpe_7d = serializers.FloatField(allow_null=True)
    atr_regime_ratio = serializers.FloatField(allow_null=True)
    components = ComponentsField()
    mode = serializers.ChoiceField(choices=Mode.choices, help_text="The mode in force (override, symbol, global).")
    override = LatestOverrideSerializer(allow_null=True, help_text="The active override, if any.")
    stale = serializers.BooleanField(
        help_text="Too old (SIZING_MAX_AGE_SECONDS) to trust: the factor falls back to 1.0.")
    fallback_reason = serializers.CharField(allow_blank=True, help_text='Why a neutral factor is used ("" if none).')
    intel_factor = serializers.FloatField(
        help_text="The factor proposed: persisted or pinned, within the clamp in force (1.0 when stale).")
    applied_factor = serializers.FloatField(help_text="The factor multiplied in: intel_factor in live mode, else 1.0.")
    inverse_vol_multiplier = serializers.FloatField()
    regime_multiplier = serializers.FloatField()
    sharpe_multiplier = serializers.FloatField()
    total_multiplier = serializers.FloatField(
        help_text="inverse_vol x regime x sharpe x applied_factor: final size / gross target.")
    age_seconds = serializers.FloatField(help_text="Seconds since as_of.")


class SnapshotOutputSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="symbol.name")
    components = ComponentsField()

    class Meta:
        model = SizingSnapshot
        exclude = ["run"]


# Decisions (the ledger) --------------------------------------------------------------------------
class DecisionOutputSerializer(serializers.ModelSerializer):
    snapshot_id = serializers.IntegerField(allow_null=True)
    override_id = serializers.IntegerField(allow_null=True)
    replayed = serializers.BooleanField(
        read_only=True, help_text="True when this order (caller, order_ref) was sized before: the original decision.")

    class Meta:
        model = SizingDecision
        fields = [
            "id", "seq", "created_at", "symbol", "gross_target", "inverse_vol_size", "regime_multiplier",
            "sharpe_multiplier", "intel_factor", "applied_factor", "final_size", "mode", "stale",
            "fallback_reason", "snapshot_id", "score", "override_id", "order_ref", "caller", "journal_ref",
            "unbounded_size", "total_bounded", "prev_hash", "row_hash", "replayed",
        ]


NEUTRAL_IF_UNKNOWN_HELP = ("Size an unknown or inactive symbol at x1.0 instead of refusing it (an unknown one is "
                           "registered, so it is recomputed from then on). Default false: refused with a 400.")


class OrderInputSerializer(StrictInputSerializer):
    symbol = SymbolField(help_text="A registered, active symbol, e.g. BTCUSDC.")
    gross_target = GrossTargetField(help_text="The engine's gross target size: 0, or a positive normal number up to "
                                              "SIZING_MAX_GROSS (default 1e15).")
    order_ref = TextField(max_length=MAX_TEXT["order_ref"], required=False, allow_blank=True, default="",
                          trim_whitespace=False,  # kept as given: it is a key, the same as size_for's
                          help_text="The engine's order reference, kept on the ledger row; with it, a retry of the "
                                    "same order returns the original decision instead of sizing twice.")


class SizeInputSerializer(OrderInputSerializer):
    neutral_if_unknown = StrictBooleanField(required=False, default=False, help_text=NEUTRAL_IF_UNKNOWN_HELP)


class SizeBatchInputSerializer(StrictInputSerializer):
    orders = OrderInputSerializer(many=True, min_length=1, max_length=MAX_SIZE_BATCH,
                                  help_text=f"1 to {MAX_SIZE_BATCH} orders, sized all or none.")
    neutral_if_unknown = StrictBooleanField(required=False, default=False, help_text=NEUTRAL_IF_UNKNOWN_HELP)


# Execution health --------------------------------------------------------------------------------
class HealthExecutionSerializer(serializers.Serializer):
    slippage_bps = serializers.FloatField(allow_null=True)
    fill_rate = serializers.FloatField(allow_null=True)
    maker_ratio = serializers.FloatField(allow_null=True)
    fill_count = serializers.IntegerField()
    order_count = serializers.IntegerField()


class HealthMarketSerializer(serializers.Serializer):
    atr_pct = serializers.FloatField(allow_null=True)
    atr_regime_ratio = serializers.FloatField(allow_null=True)
    realized_volatility = serializers.FloatField(allow_null=True)
    market_sharpe_7d = serializers.FloatField(allow_null=True)


class HealthPositionSerializer(serializers.Serializer):
    """The symbol's position at the snapshot's as_of, by average cost, in its quote currency."""

    quote_asset = serializers.CharField(allow_blank=True)
    qty = serializers.FloatField(allow_null=True, help_text="Signed: long > 0.")
    avg_cost = serializers.FloatField(allow_null=True)
    realized_pnl = serializers.FloatField(allow_null=True, help_text="Before fees.")
    unrealized_pnl = serializers.FloatField(allow_null=True, help_text="Marked at the last closed candle.")
    fees = serializers.FloatField(allow_null=True, help_text="Converted into the quote currency.")
    unconverted_fee_count = serializers.IntegerField(help_text="Fees with no price in the quote currency, left out.")
    equity = serializers.FloatField(allow_null=True, help_text="capital + realized - fees + unrealized.")
    capital = serializers.FloatField(allow_null=True)
    source_realized_pnl = serializers.FloatField(allow_null=True,
                                                 help_text="What the sources reported, where they did.")


class HealthInputsSerializer(serializers.Serializer):
    last_candle_at = serializers.DateTimeField(allow_null=True, help_text="When the newest closed candle closed.")
    last_fill_at = serializers.DateTimeField(allow_null=True)
    computed_live = serializers.BooleanField(allow_null=True, help_text="False for a backfilled snapshot.")


class HealthSizingSerializer(serializers.Serializer):
    sharpe_7d = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField(allow_null=True)
    size_multiplier = serializers.FloatField()
    regime_multiplier = serializers.FloatField()
    inverse_vol_multiplier = serializers.FloatField()
    score = serializers.FloatField(allow_null=True)
    raw_intel_size_factor = serializers.FloatField()
    intel_size_factor = serializers.FloatField()
    applied_intel_size_factor = serializers.FloatField()
    final_size_factor = serializers.FloatField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    override_id = serializers.IntegerField(allow_null=True)
    fallback_reason = serializers.CharField(allow_blank=True)


class SymbolHealthOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    as_of = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.FloatField(allow_null=True)
    stale = serializers.BooleanField()
    status = serializers.CharField(help_text="Snapshot status (ok, partial, stale_input, no_data) or no_snapshot.")
    execution = HealthExecutionSerializer()
    market = HealthMarketSerializer()
    position = HealthPositionSerializer()
    inputs = HealthInputsSerializer()
    sizing = HealthSizingSerializer()


class LatestRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    as_of = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=RecomputeRun.Status.choices)
    started_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField(allow_null=True)
    symbols_ok = serializers.IntegerField()
    symbols_failed = serializers.IntegerField()
    symbols_existing = serializers.IntegerField(
        help_text="Computed, but the bucket already had their snapshot: kept, not counted as ok.")


class HealthOverviewOutputSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    latest_run = LatestRunSerializer(allow_null=True)
    symbols = serializers.DictField(child=SymbolHealthOutputSerializer(), help_text="Active symbols by name.")


# Telemetry intake (bulk) -------------------------------------------------------------------------
MAX_BULK_ROWS = 5000
# Nothing tradable is older than 2009; a time more than a day ahead is a clock or unit error.
EARLIEST_EVENT = datetime(2009, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


def _money(**kwargs) -> MoneyField:
    return MoneyField(**kwargs)


class EventTimeField(UtcDateTimeField):
    """An ISO 8601 event time between 2009-01-01 and one day from now."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if moment < EARLIEST_EVENT:
            raise serializers.ValidationError("Before 2009-01-01: not a trading time (unit mix-up?).")
        if moment > timezone.now() + FUTURE_SLACK:
            raise serializers.ValidationError("More than a day in the future.")
        return moment


def _positive(value: Decimal | float | None, name: str):
    if value is not None and value <= 0:
        raise serializers.ValidationError({name: "Must be greater than zero."})


class FillRowSerializer(StrictInputSerializer):
    """One exchange fill. Key: (symbol, trade_id)."""

    symbol = SymbolField()
    trade_id = TextField(max_length=64, help_text="The exchange's trade id.")
    client_order_id = TextField(max_length=64, required=False, allow_blank=True, default="",
                                help_text="The order this fill belongs to (must already be posted), or empty.")
    side = serializers.ChoiceField(choices=Side.choices)
    qty = _money()
    price = _money()
    arrival_price = _money(required=False, allow_null=True, default=None,
                           help_text="Slippage benchmark when the fill has no order.")
    fee = _money(required=False, default=Decimal(0))
    fee_asset = TextField(max_length=16, required=False, allow_blank=True, default="")
    is_maker = StrictBooleanField(required=False, default=False)
    realized_pnl = _money(required=False, allow_null=True, default=None)
    executed_at = EventTimeField()

    def validate(self, attrs):
        for name in ("qty", "price", "arrival_price"):
            _positive(attrs.get(name), name)
        return attrs


class OrderRowSerializer(StrictInputSerializer):
    """One order, new or updated. Key: (symbol, client_order_id)."""

    symbol = SymbolField()
    client_order_id = TextField(max_length=64)
    exchange_order_id = TextField(max_length=64, required=False, allow_blank=True, default="")
    side = serializers.ChoiceField(choices=Side.choices)
    liquidity = serializers.ChoiceField(choices=Order.Liquidity.choices, required=False,
                                        default=Order.Liquidity.TAKER)
    maker_fallback = StrictBooleanField(required=False, default=False)
    requested_qty = _money()
    filled_qty = _money(required=False, default=Decimal(0), min_value=Decimal(0))
    arrival_price = _money()
    limit_price = _money(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False, default=Order.Status.NEW)
    submitted_at = EventTimeField()
    closed_at = EventTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        for name in ("requested_qty", "arrival_price", "limit_price"):
            _positive(attrs.get(name), name)
        if attrs["filled_qty"] > attrs["requested_qty"]:
            raise serializers.ValidationError({"filled_qty": "Cannot exceed requested_qty."})
        if attrs["closed_at"] is not None and attrs["closed_at"] < attrs["submitted_at"]:
            raise serializers.ValidationError({"closed_at": "Cannot be before submitted_at."})
        return attrs


class CandleRowSerializer(StrictInputSerializer):
    """One OHLCV bar. Key: (symbol, interval, open_time)."""

    symbol = SymbolField()
    interval = StrictCharField(max_length=8, help_text='Exchange interval, e.g. "1m", "1h", "1d".')
    open_time = EventTimeField()
    open = FiniteFloatField(min_value=0)
    high = FiniteFloatField(min_value=0)
    low = FiniteFloatField(min_value=0)
    close = FiniteFloatField(min_value=0)
    volume = FiniteFloatField(min_value=0)

    def validate_interval(self, value):
        try:
            return normalize_interval(value)  # "60m" is stored, and read, as "1h"
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs):
        open_us = int(attrs["open_time"].timestamp()) * 1_000_000 + attrs["open_time"].microsecond
        if not on_interval_grid(np.array([open_us]), attrs["interval"])[0]:
            raise serializers.ValidationError({"open_time": (
                f"Off the {attrs['interval']} grid: a {attrs['interval']} bar opens on whole multiples of "
                f"{attrs['interval']} since 1970-01-01 UTC.")})
        for name in ("open", "high", "low", "close"):
            _positive(attrs[name], name)
        if attrs["high"] < max(attrs["open"], attrs["close"], attrs["low"]):
            raise serializers.ValidationError({"high": "Must be at least open, close and low."})
        if attrs["low"] > min(attrs["open"], attrs["close"]):
            raise serializers.ValidationError({"low": "Must be at most open and close."})
        return attrs


class BulkResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Rows in the request.")
    created = serializers.IntegerField(help_text="New rows written.")
    updated = serializers.IntegerField(help_text="Existing rows moved forward (orders only).")
    unchanged = serializers.IntegerField(help_text="Rows already recorded with identical values (re-posts).")


# Runs --------------------------------------------------------------------------------------------
class RunOutputSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(allow_null=True, read_only=True)
    errors = serializers.DictField(child=serializers.CharField(), help_text="{symbol: reason} per failure.")
    chunks_done = serializers.ListField(child=serializers.IntegerField())

    class Meta:
        model = RecomputeRun
        fields = [
            "id", "trigger", "as_of", "started_at", "finished_at", "duration_seconds", "status", "symbols_total",
            "symbols_ok", "symbols_failed", "symbols_existing", "errors", "chunks_total", "chunks_done", "task_id",
        ]


class RunTriggerOutputSerializer(serializers.Serializer):
    message = serializers.CharField()
    task_id = serializers.CharField(help_text="Celery id of the queued recompute task.")


# Policy and overrides ----------------------------------------------------------------------------
class SymbolModeSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    mode = serializers.CharField(
        help_text='The symbol\'s own mode: live, shadow, off, or "" to follow the global mode.')


class PolicyOutputSerializer(serializers.Serializer):
    global_mode = serializers.ChoiceField(choices=Mode.choices)
    symbols = SymbolModeSerializer(many=True, help_text="Every symbol with its own mode.")


class GlobalModeInputSerializer(StrictInputSerializer):
    mode = serializers.ChoiceField(choices=Mode.choices)


class SymbolModeInputSerializer(StrictInputSerializer):
    mode = serializers.ChoiceField(choices=[*Mode.choices, ("", "follow the global mode")],
                                   help_text='live, shadow, off, or "" to follow the global mode.')


class OverrideOutputSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="symbol.name")
    author = serializers.CharField(source="author.get_username")
    active = serializers.BooleanField(help_text="Not revoked and not expired.")

    class Meta:
        model = Override
        fields = ["id", "symbol", "pinned_factor", "mode", "reason", "author", "created_at", "expires_at",
                  "revoked_at", "active"]


class OverrideCreateInputSerializer(StrictInputSerializer):
    symbol = SymbolField()
    pinned_factor = FiniteFloatField(required=False, allow_null=True, default=None,
                                     help_text="Factor to use instead of the persisted one (within the clamp).")
    mode = serializers.ChoiceField(choices=[*Mode.choices, ("", "no mode pin")], required=False, default="")
    reason = TextField(max_length=2000, multiline=True, help_text="Why; kept in the override's history.")
    expires_at = UtcDateTimeField(required=False, allow_null=True, default=None)

    def validate_reason(self, value):
        if not value.strip():
            raise serializers.ValidationError("An override needs a reason.")
        return value
