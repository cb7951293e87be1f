"""Policy that risk edits, through the policy services, with history: symbols' modes, the global mode, overrides."""
from __future__ import annotations

from typing import Any

from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from simple_history.admin import SimpleHistoryAdmin

from ..models import GlobalPolicy, Override, Symbol
from ..policy import services as policy
from .mixins import LookupGuardMixin, adopt_saved, service_refusal, without_delete_action
from .render import ROW_ID


class PolicyHistoryAdmin(LookupGuardMixin, SimpleHistoryAdmin):
    """History is for reading: a revert would save around the policy services and their checks."""

    def revert_disabled(self, request, obj=None):
        return True

    @method_decorator(csp_update({"style-src-attr": ["'unsafe-inline'"]}))  # simple_history's table has one
    def history_view(self, request, object_id, extra_context=None):
        if not ROW_ID.fullmatch(str(object_id)):  # simple_history would pass "abc" to an integer lookup
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        if not all(ROW_ID.fullmatch(str(value)) for value in (object_id, version_id)):
            raise Http404("No such history entry.")  # simple_history would pass "abc" to an integer lookup
        return super().history_form_view(request, object_id, version_id, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return without_delete_action(super().get_actions(request))


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
            adopt_saved(obj, policy.symbol_mode_set(symbol=obj.name, mode=form.cleaned_data["mode"], user=request.user))


@admin.register(GlobalPolicy)
class GlobalPolicyAdmin(PolicyHistoryAdmin):
    list_display = ("__str__", "mode", "updated_at")
    fields = ("mode", "updated_at")
    readonly_fields = ("updated_at",)
    history_list_display = ("mode",)

    def has_add_permission(self, request):
        # One row (pk 1, the row global_mode_set writes); whoever may set the mode may create it.
        if GlobalPolicy.objects.filter(pk=GlobalPolicy.SINGLETON_PK).exists():
            return False
        return super().has_add_permission(request) or self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        row = GlobalPolicy.objects.filter(pk=GlobalPolicy.SINGLETON_PK).first()
        if row is not None and self.has_view_or_change_permission(request, row):
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:sizing_app_globalpolicy_change", args=[row.pk])
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        adopt_saved(obj, policy.global_mode_set(mode=form.cleaned_data["mode"], user=request.user))


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
            return queryset.active(now)
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
        adopt_saved(obj, policy.override_create(**override_arguments(form.cleaned_data, author=request.user)))

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
