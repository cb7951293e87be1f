"""Django admin for compliance and risk: the read-only ledger, snapshots, runs and telemetry, and policy.

Nobody edits recorded rows here, superusers included; policy edits go through services.policy.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone as dt_timezone
from typing import Any

from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import EmptyResultSet, FullResultSet, PermissionDenied
from django.db import DatabaseError, models, transaction
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from . import exports, scoring
from .models import (
    Candle, Fill, GlobalPolicy, Order, Override, RecomputeRun, SizingDecision, SizingSnapshot, Symbol,
)
from .services import policy

admin.site.site_header = "Adaptive sizing administration"
admin.site.site_title = "Adaptive sizing admin"
admin.site.index_title = "Ledger, snapshots and policy"
admin.site.site_url = "/dashboard/"  # "View site" opens the Execution Health Overview

EMPTY = "—"
_ROW_ID = re.compile(r"[0-9]{1,18}")  # a 64-bit primary key


def utc_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return EMPTY if moment is None else moment.astimezone(dt_timezone.utc).strftime(fmt)


def number_text(value: Any) -> str:
    """A stored number exactly as recorded: floats by repr (round-trips), None as a dash."""
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return repr(value)
    return str(value)


def factor_text(value: float | None) -> str:
    return EMPTY if value is None else f"{value:.2f}x"


def components_table(components: Any, *, score: float | None = None):
    """A snapshot's `components` JSON as an HTML table, escaped, in the scoring's component order."""
    if not isinstance(components, dict) or not components:
        return "no components recorded"
    order = {component.name: index for index, component in enumerate(scoring.COMPONENTS)}
    names = sorted(components, key=lambda name: (order.get(name, len(order)), name))
    columns = ("value", "sample", "confidence", "weight", "contribution")
    rows = []
    for name in names:
        entry = components[name] if isinstance(components[name], dict) else {}
        rows.append((name, *(number_text(entry.get(column)) for column in columns)))
    body = format_html_join(
        "", '<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows
    )
    score_row = (
        format_html('<tr><th scope="row">score</th><td colspan="4"></td><td><strong>{}</strong></td></tr>',
                    number_text(score))
        if score is not None else ""
    )
    return format_html(
        '<table id="components" class="sizing-components"><thead><tr><th>component</th><th>value</th>'
        "<th>sample</th><th>confidence</th><th>weight</th><th>contribution</th></tr></thead>"
        "<tbody>{}{}</tbody></table>",
        body, score_row,
    )


def _adopt(target: models.Model, saved: models.Model) -> None:
    """Make the admin's form instance the row a service saved, so the admin's log and redirect use it."""
    for field in type(saved)._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class _DryRun(Exception):
    """Rolls back a service call made only to learn whether it would be refused."""


def service_refusal(call: Callable[[], Any]) -> str | None:
    """The ValueError message a service call would raise, or None; nothing it writes is kept.

    The services hold the policy rules; running them in a rolled-back transaction lets the admin
    show their refusal as a form error without repeating the rules here.
    """
    try:
        with transaction.atomic():
            call()
            raise _DryRun
    except _DryRun:
        return None
    except ValueError as error:
        return str(error)


# ---------------------------------------------------------------------------------------------
# Read-only tables and their CSV export


class LookupGuardMixin:
    """Hostile changelist parameters are "invalid lookup" (the admin's ?e=1 redirect), never a 500.

    The admin accepts any lookup on a model's own fields (?created_at__year=99999, ?symbol=%00);
    Django only wraps errors raised while filtering, not those raised when the query is compiled
    (a year out of range) or run (PostgreSQL refuses NUL in text).
    """

    def get_changelist_instance(self, request):
        if any("\x00" in text for key, values in request.GET.lists() for text in (key, *values)):
            raise IncorrectLookupParameters("NUL characters in the query string")
        try:
            with transaction.atomic():  # a savepoint: a refused query leaves the request's transaction usable
                changelist = super().get_changelist_instance(request)
                try:
                    changelist.queryset.query.sql_with_params()  # compile now, not half-way through a page or export
                except (EmptyResultSet, FullResultSet):
                    pass  # a filter that matches nothing (or everything) is fine: the queryset handles it
                if getattr(request, "_sizing_csv_export", False):
                    changelist.queryset.exists()  # run it too: a stream cannot turn into an error page later
        except (ValueError, OverflowError, DatabaseError) as exc:
            raise IncorrectLookupParameters(exc) from exc
        return changelist


class ReadOnlyAdminMixin(LookupGuardMixin):
    """Rows recorded by the service: nobody, superusers included, adds, changes or deletes them here."""

    def has_view_permission(self, request, obj=None):
        # Only the view permission opens these pages (ModelAdmin also accepts "change").
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ExportChangeList(ChangeList):
    """The changelist's filtered, searched and ordered queryset, without counting or paging it."""

    def get_results(self, request):
        self.result_count = self.full_result_count = 0
        self.result_list = self.queryset.none()
        self.can_show_all = self.multi_page = self.show_admin_actions = False
        self.paginator = None


class CsvExportAdminMixin:
    """An "Export CSV" link on the changelist streaming every row its current filters select."""

    csv_export: exports.CsvExport
    change_list_template = "admin/sizing_app/change_list_export.html"

    def _export_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_export_csv"

    def get_urls(self):
        export = path("export.csv", self.admin_site.admin_view(self.export_csv_view), name=self._export_url_name())
        return [export, *super().get_urls()]  # before the catch-all "<object_id>/"

    def changelist_view(self, request, extra_context=None):
        url = reverse(f"{self.admin_site.name}:{self._export_url_name()}")
        query = request.GET.urlencode()
        extra_context = {**(extra_context or {}), "export_csv_url": f"{url}?{query}" if query else url}
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request, **kwargs):
        if getattr(request, "_sizing_csv_export", False):
            return ExportChangeList
        return super().get_changelist(request, **kwargs)

    def export_csv_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The same ChangeList as the page, so filters, search, date drill-down and ordering match.
        request._sizing_csv_export = True
        try:
            queryset = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            changelist_url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist")
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        export = self.csv_export
        response = StreamingHttpResponse(
            exports.csv_chunks(export.header, export.rows(queryset)), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="{export.name}-{stamp}.csv"'
        response["Cache-Control"] = "no-store"
        return response


def factor_band_filter(field_name: str, title: str) -> type[admin.SimpleListFilter]:
    """A filter on bands of a multiplicative factor: < 0.75x, 0.75-1x, 1x, 1-1.5x, > 1.5x."""
    bands = (
        ("lt0.75", "below 0.75x", models.Q(**{f"{field_name}__lt": 0.75})),
        ("0.75-1", "0.75x to below 1x", models.Q(**{f"{field_name}__gte": 0.75, f"{field_name}__lt": 1.0})),
        ("1", "exactly 1x", models.Q(**{field_name: 1.0})),
        ("1-1.5", "above 1x to 1.5x", models.Q(**{f"{field_name}__gt": 1.0, f"{field_name}__lte": 1.5})),
        ("gt1.5", "above 1.5x", models.Q(**{f"{field_name}__gt": 1.5})),
    )

    class FactorBandFilter(admin.SimpleListFilter):
        parameter_name = f"{field_name}_band"

        def lookups(self, request, model_admin):
            return [(key, label) for key, label, _ in bands]

        def queryset(self, request, queryset):
            for key, _, condition in bands:
                if self.value() == key:
                    return queryset.filter(condition)
            return queryset

    FactorBandFilter.title = title
    FactorBandFilter.__name__ = f"{field_name.title().replace('_', '')}BandFilter"
    return FactorBandFilter


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


class PolicyHistoryAdmin(LookupGuardMixin, SimpleHistoryAdmin):
    """History is for reading: a revert would save around the policy services and their checks."""

    def revert_disabled(self, request, obj=None):
        return True

    @method_decorator(csp_update({"style-src-attr": ["'unsafe-inline'"]}))  # simple_history's table has one
    def history_view(self, request, object_id, extra_context=None):
        if not _ROW_ID.fullmatch(str(object_id)):  # simple_history would pass "abc" to an integer lookup
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        if not all(_ROW_ID.fullmatch(str(value)) for value in (object_id, version_id)):
            raise Http404("No such history entry.")  # simple_history would pass "abc" to an integer lookup
        return super().history_form_view(request, object_id, version_id, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Symbol)
class SymbolAdmin(PolicyHistoryAdmin):
    list_display = ("name", "mode_display", "is_active", "capital_base", "created_at")
    list_filter = ("mode", "is_active")
    search_fields = ("^name",)
    history_list_display = ("mode", "is_active")

    def get_readonly_fields(self, request, obj=None):
        # After creation only the mode changes here, through symbol_mode_set.
        return () if obj is None else ("name", "is_active", "capital_base", "created_at")

    @admin.display(description="mode", ordering="mode")
    def mode_display(self, symbol):
        return symbol.mode or "follows global"

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
        elif "mode" in form.changed_data:
            _adopt(obj, policy.symbol_mode_set(symbol=obj.name, mode=form.cleaned_data["mode"], user=request.user))


@admin.register(GlobalPolicy)
class GlobalPolicyAdmin(PolicyHistoryAdmin):
    list_display = ("__str__", "mode", "updated_at")
    fields = ("mode", "updated_at")
    readonly_fields = ("updated_at",)
    history_list_display = ("mode",)

    def has_add_permission(self, request):
        # One row (pk 1, the row global_mode_set writes); whoever may set the mode may create it.
        if GlobalPolicy.objects.filter(pk=1).exists():
            return False
        return super().has_add_permission(request) or self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        row = GlobalPolicy.objects.filter(pk=1).first()
        if row is not None and self.has_view_or_change_permission(request, row):
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:sizing_app_globalpolicy_change", args=[row.pk])
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        _adopt(obj, policy.global_mode_set(mode=form.cleaned_data["mode"], user=request.user))


class OverrideForm(forms.ModelForm):
    author = None  # the requesting user, set by OverrideAdmin.get_form

    class Meta:
        model = Override
        fields = ("symbol", "pinned_factor", "mode", "reason", "expires_at")

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            refusal = service_refusal(lambda: policy.override_create(**override_arguments(cleaned, author=self.author)))
            if refusal:
                raise forms.ValidationError(refusal)
        return cleaned


def override_arguments(cleaned: dict[str, Any], *, author) -> dict[str, Any]:
    return {
        "symbol": cleaned["symbol"].name, "reason": cleaned["reason"], "author": author,
        "pinned_factor": cleaned.get("pinned_factor"), "mode": cleaned.get("mode") or "",
        "expires_at": cleaned.get("expires_at"),
    }


class OverrideStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).filter(
                models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
            )
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Override)
class OverrideAdmin(PolicyHistoryAdmin):
    form = OverrideForm
    list_display = (
        "id", "symbol", "pinned_factor", "mode", "state", "author", "created_at", "expires_at", "revoked_at",
        "reason",
    )
    list_select_related = ("symbol", "author")
    list_filter = (OverrideStateFilter, "symbol", "mode", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("=symbol__name", "reason")
    actions = ("revoke_overrides",)
    history_list_display = ("pinned_factor", "mode", "expires_at", "revoked_at")
    add_fields = ("symbol", "pinned_factor", "mode", "reason", "expires_at")
    view_fields = (
        "symbol", "pinned_factor", "mode", "reason", "author", "created_at", "expires_at", "revoked_at", "state",
    )

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.view_fields

    def has_change_permission(self, request, obj=None):
        # An override is never edited: it is revoked (the action below) and a new one created.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"author": request.user})

    def save_model(self, request, obj, form, change):
        _adopt(obj, policy.override_create(**override_arguments(form.cleaned_data, author=request.user)))

    @admin.display(description="state")
    def state(self, override):
        if override.revoked_at is not None:
            return "revoked"
        if override.expires_at is not None and override.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.action(description="Revoke selected overrides", permissions=["change"])
    def revoke_overrides(self, request, queryset):
        override_ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for override_id in override_ids:
            policy.override_revoke(override_id=override_id, user=request.user)
        self.message_user(request, f"Revoked {len(override_ids)} override(s).", messages.SUCCESS)
