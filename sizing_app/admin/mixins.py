"""Behaviour shared by the admin pages: read-only record pages, lookup guards, CSV export, service refusals."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import EmptyResultSet, FullResultSet, PermissionDenied
from django.db import DatabaseError, models, transaction
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from . import exports


def adopt_saved(target: models.Model, saved: models.Model) -> None:
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


def without_delete_action(actions: dict) -> dict:
    """Admin's bulk "delete selected" removed: nothing on record here is ever deleted."""
    actions.pop("delete_selected", None)
    return actions


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
        return without_delete_action(super().get_actions(request))


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
