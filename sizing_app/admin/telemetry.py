"""Telemetry as it arrived: candles, orders and fills, read-only."""
from __future__ import annotations

from django.contrib import admin

from ..models import Candle, Fill, Order
from .mixins import ReadOnlyAdminMixin


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("open_time", "symbol", "interval", "open", "high", "low", "close", "volume")
    list_select_related = ("symbol",)
    list_filter = ("symbol", "interval", "open_time")
    date_hierarchy = "open_time"
    search_fields = ("=symbol__name",)
    search_help_text = "Symbol (e.g. BTCUSDC)."
    show_full_result_count = False
    list_per_page = 100


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "submitted_at", "symbol", "client_order_id", "side", "liquidity", "maker_fallback", "requested_qty",
        "filled_qty", "arrival_price", "limit_price", "status", "closed_at",
    )
    list_select_related = ("symbol",)
    list_filter = ("symbol", "side", "status", "liquidity", "maker_fallback", "submitted_at")
    date_hierarchy = "submitted_at"
    search_fields = ("=symbol__name", "=client_order_id", "=exchange_order_id")
    search_help_text = "Symbol, client order id or exchange order id (exact)."
    show_full_result_count = False
    list_per_page = 100


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "executed_at", "symbol", "trade_id", "side", "qty", "price", "arrival_price", "is_maker", "fee",
        "fee_asset", "realized_pnl", "order",
    )
    list_select_related = ("symbol", "order")
    list_filter = ("symbol", "side", "is_maker", "executed_at")
    date_hierarchy = "executed_at"
    search_fields = ("=symbol__name", "=trade_id", "=order__client_order_id")
    search_help_text = "Symbol, trade id or client order id (exact)."
    show_full_result_count = False
    list_per_page = 100


# ---------------------------------------------------------------------------------------------
# Policy: every change goes through services.policy and is kept in simple_history
