"""The record compliance reviews: sizing decisions (the ledger), snapshots and recompute runs, read-only."""
from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ..models import RecomputeRun, SizingDecision, SizingSnapshot
from . import exports
from .mixins import CsvExportAdminMixin, ReadOnlyAdminMixin, factor_band_filter
from .render import EMPTY, components_table, factor_text, number_text, utc_text


@admin.register(SizingDecision)
class SizingDecisionAdmin(CsvExportAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    csv_export = exports.DECISIONS
    list_display = (
        "created", "symbol", "order_ref", "gross_target", "final_size", "applied_factor_display",
        "intel_factor_display", "mode_code", "stale", "fallback_reason", "caller", "snapshot_bucket",
    )
    list_select_related = ("snapshot",)
    date_hierarchy = "created_at"
    list_filter = (
        "symbol", factor_band_filter("applied_factor", "applied factor"), "mode", "stale", "fallback_reason",
        "caller", factor_band_filter("intel_factor", "proposed factor"), "created_at",
    )
    search_fields = ("=order_ref", "^order_ref", "=symbol")
    search_help_text = "Order reference (exact or prefix) or symbol (e.g. BTCUSDC)."
    show_full_result_count = False  # no COUNT(*) over the whole ledger on every page
    list_per_page = 100
    fieldsets = (
        ("Decision", {"fields": (
            "created_at", "symbol", "order_ref", "caller", "mode", "override_link", "stale", "fallback_reason",
            "score",
        )}),
        ("From gross target to final size", {"fields": ("breakdown",)}),
        ("Snapshot used", {"fields": ("snapshot_link", "snapshot_components")}),
        ("Hash chain", {"fields": ("seq", "prev_hash", "row_hash")}),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("snapshot__symbol")

    @admin.display(description="time (UTC)", ordering="created_at")
    def created(self, decision):
        return utc_text(decision.created_at)

    @admin.display(description="mode", ordering="mode")
    def mode_code(self, decision):
        return decision.mode

    @admin.display(description="applied", ordering="applied_factor")
    def applied_factor_display(self, decision):
        return factor_text(decision.applied_factor)

    @admin.display(description="proposed", ordering="intel_factor")
    def intel_factor_display(self, decision):
        return factor_text(decision.intel_factor)

    @admin.display(description="snapshot bucket", ordering="snapshot__as_of")
    def snapshot_bucket(self, decision):
        snapshot = decision.snapshot
        return EMPTY if snapshot is None else utc_text(snapshot.as_of, "%Y-%m-%d %H:%M")

    @admin.display(description="override")
    def override_link(self, decision):
        if decision.override_id is None:
            return "none"
        url = reverse(f"{self.admin_site.name}:sizing_app_override_change", args=[decision.override_id])
        return format_html('<a href="{}">override #{}</a>', url, decision.override_id)

    @admin.display(description="breakdown")
    def breakdown(self, decision):
        # Same order of multiplication as services.decisions, so the products match the record.
        after_regime = decision.inverse_vol_size * decision.regime_multiplier
        after_sharpe = after_regime * decision.sharpe_multiplier
        after_intel = after_sharpe * decision.applied_factor
        inverse_vol = (
            f"× {decision.inverse_vol_size / decision.gross_target:.6g}" if decision.gross_target else EMPTY
        )
        notes = [f"proposed {number_text(decision.intel_factor)}", f"mode {decision.mode}"]
        if decision.stale:
            notes.append("stale snapshot")
        if decision.fallback_reason:
            notes.append(f"fallback {decision.fallback_reason}")
        if decision.override_id is not None:
            notes.append(f"override #{decision.override_id}")
        steps = (
            ("gross target", "", number_text(decision.gross_target)),
            ("after inverse volatility", inverse_vol, number_text(decision.inverse_vol_size)),
            ("× volatility regime", f"× {number_text(decision.regime_multiplier)}", number_text(after_regime)),
            ("× Sharpe", f"× {number_text(decision.sharpe_multiplier)}", number_text(after_sharpe)),
            ("× intel factor applied", format_html("× {} <span class=\"help\">({})</span>",
                                                   number_text(decision.applied_factor), ", ".join(notes)),
             number_text(after_intel)),
            ("final size", "", format_html("<strong>{}</strong>", number_text(decision.final_size))),
        )
        rows = format_html_join(
            "", '<tr><th scope="row">{}</th><td>{}</td><td class="size">{}</td></tr>', steps
        )
        mismatch = "" if after_intel == decision.final_size else format_html(
            '<p class="errornote">The recorded final size differs from the product of its steps ({}).</p>',
            number_text(after_intel),
        )
        return format_html(
            '<table class="sizing-breakdown"><thead><tr><th>step</th><th>multiplier</th><th>size</th></tr>'
            "</thead><tbody>{}</tbody></table>{}",
            rows, mismatch,
        )

    @admin.display(description="snapshot")
    def snapshot_link(self, decision):
        if decision.snapshot_id is None:
            return "none: neutral factors were used"
        url = reverse(f"{self.admin_site.name}:sizing_app_sizingsnapshot_change", args=[decision.snapshot_id])
        snapshot = decision.snapshot
        return format_html(
            '<a href="{}">{} @ {} UTC, size factor {}</a> (<a href="{}#components">components</a>)',
            url, snapshot.symbol.name, utc_text(snapshot.as_of, "%Y-%m-%d %H:%M"), number_text(snapshot.size_factor),
            url,
        )

    @admin.display(description="components")
    def snapshot_components(self, decision):
        if decision.snapshot is None:
            return EMPTY
        return components_table(decision.snapshot.components, score=decision.snapshot.score)


@admin.register(SizingSnapshot)
class SizingSnapshotAdmin(CsvExportAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    csv_export = exports.SNAPSHOTS
    list_display = (
        "as_of", "symbol", "size_factor_display", "raw_size_factor", "score", "inverse_vol_multiplier",
        "regime_multiplier", "sharpe_multiplier", "status", "fill_count", "candle_count", "run",
    )
    list_select_related = ("symbol", "run")
    date_hierarchy = "as_of"
    list_filter = ("symbol", "status", factor_band_filter("size_factor", "size factor"), "as_of")
    search_fields = ("=symbol__name",)
    search_help_text = "Symbol (e.g. BTCUSDC)."
    show_full_result_count = False
    list_per_page = 100
    fieldsets = (
        ("Snapshot", {"fields": ("symbol", "as_of", "computed_at", "run", "status", "decisions_link")}),
        ("Intelligence layer", {"fields": ("score", "raw_size_factor", "size_factor", "components_view")}),
        ("Existing stack", {"fields": ("inverse_vol_multiplier", "regime_multiplier", "sharpe_multiplier")}),
        ("Metrics", {"fields": (
            "candle_count", "fill_count", "order_count", "active_days", "last_close", "atr_pct", "atr_regime_ratio",
            "realized_volatility", "sharpe_7d", "market_sharpe_7d", "max_drawdown", "slippage_bps", "fill_rate",
            "maker_ratio",
        )}),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    @admin.display(description="size factor", ordering="size_factor")
    def size_factor_display(self, snapshot):
        return factor_text(snapshot.size_factor)

    @admin.display(description="components")
    def components_view(self, snapshot):
        return components_table(snapshot.components, score=snapshot.score)

    @admin.display(description="decisions")
    def decisions_link(self, snapshot):
        url = reverse(f"{self.admin_site.name}:sizing_app_sizingdecision_changelist")
        return format_html('<a href="{}?snapshot__id__exact={}">decisions sized with this snapshot</a>',
                           url, snapshot.pk)


@admin.register(RecomputeRun)
class RecomputeRunAdmin(CsvExportAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    csv_export = exports.RUNS
    list_display = (
        "started_at", "as_of", "trigger", "status", "symbols_total", "symbols_ok", "symbols_failed",
        "symbols_existing", "chunks_progress", "duration",
    )
    date_hierarchy = "started_at"
    list_filter = ("status", "trigger", "as_of")
    search_fields = ("=task_id",)
    list_per_page = 100
    readonly_fields = (
        "trigger", "as_of", "started_at", "finished_at", "duration", "status", "symbols_total", "symbols_ok",
        "symbols_failed", "symbols_existing", "errors", "chunks_total", "chunks_done", "task_id",
    )
    fields = readonly_fields

    @admin.display(description="chunks")
    def chunks_progress(self, run):
        return f"{len(run.chunks_done or [])}/{run.chunks_total}"

    @admin.display(description="duration (s)")
    def duration(self, run):
        return number_text(run.duration_seconds)


# ---------------------------------------------------------------------------------------------
# Market data and execution telemetry: read-only lists
