"""django-filter sets for the history lists; a malformed value is a 400 naming the parameter."""
from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms

from ..models import SYMBOL_PATTERN, Mode, RecomputeRun, SizingDecision, SizingSnapshot


class NonBlankMixin:
    """`?until=` (present but empty) is an error, not "no filter": only a missing parameter means that."""

    def clean(self, value):
        if value == "":
            raise forms.ValidationError("Empty value: give one or leave the parameter out.")
        return super().clean(value)


class UtcIsoDateTimeField(NonBlankMixin, django_filters.fields.IsoDateTimeField):
    def clean(self, value):
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)  # SQLite compares in UTC: overflow must fail here
        except (OverflowError, ValueError):
            raise forms.ValidationError("Datetime is out of range.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class SymbolFilter(django_filters.CharFilter):
    field_class = forms.RegexField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("regex", SYMBOL_PATTERN)
        kwargs.setdefault("help_text", "Symbol name, e.g. BTCUSDC.")
        super().__init__(*args, **kwargs)


class NonBlankChoiceField(NonBlankMixin, django_filters.fields.ChoiceField):
    pass


class NonBlankChoiceFilter(django_filters.ChoiceFilter):
    field_class = NonBlankChoiceField


class StrictBooleanField(NonBlankMixin, forms.Field):
    """Only "true" or "false": Django's NullBooleanField would silently ignore "stale=maybe"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError('Use "true" or "false".')
        return value == "true"


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


def _since(field: str):
    return UtcIsoDateTimeFilter(field_name=field, lookup_expr="gte",
                                help_text=f"Only rows with {field} at or after this ISO 8601 time.")


def _until(field: str):
    return UtcIsoDateTimeFilter(field_name=field, lookup_expr="lt",
                                help_text=f"Only rows with {field} before this ISO 8601 time.")


class SnapshotFilter(django_filters.FilterSet):
    symbol = SymbolFilter(field_name="symbol__name")
    since = _since("as_of")
    until = _until("as_of")

    class Meta:
        model = SizingSnapshot
        fields = ["symbol", "since", "until"]


class DecisionFilter(django_filters.FilterSet):
    symbol = SymbolFilter(field_name="symbol")
    since = _since("created_at")
    until = _until("created_at")
    mode = NonBlankChoiceFilter(choices=Mode.choices)
    stale = StrictBooleanFilter(help_text="true or false.")
    order_ref = django_filters.CharFilter(max_length=128, help_text="Exact order reference.")

    class Meta:
        model = SizingDecision
        fields = ["symbol", "since", "until", "mode", "stale", "order_ref"]


class RunFilter(django_filters.FilterSet):
    status = NonBlankChoiceFilter(choices=RecomputeRun.Status.choices)
    since = _since("started_at")
    until = _until("started_at")

    class Meta:
        model = RecomputeRun
        fields = ["status", "since", "until"]
