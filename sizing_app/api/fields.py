"""Serializer fields with the API's input rules: well-formed symbols, finite numbers, UTC datetimes."""
from __future__ import annotations

import math
import re
from datetime import UTC
from decimal import Decimal

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import SYMBOL_PATTERN
from ..sizing.validation import gross_target_error

SYMBOL_EXAMPLE = "BTCUSDC"


class StrictCharField(serializers.CharField):
    """A JSON string: DRF's CharField would turn 7 or true into "7" or "True"."""

    default_error_messages = {"not_a_string": "Must be a JSON string, not {type}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", type=type(data).__name__)
        return super().to_internal_value(data)


class SymbolField(StrictCharField):
    """A symbol name ("BTCUSDC"): 2-32 upper-case letters or digits. Existence is checked by the view."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("min_length", 2)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(SYMBOL_PATTERN, "A symbol is 2-32 upper-case letters or digits, e.g. BTCUSDC.")
        )


class TextField(StrictCharField):
    """Free text without control characters (they have no place in references and reasons)."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str):
            # Checked before CharField trims whitespace: "\x1f" would otherwise pass as "" and
            # "ref\x1c" be recorded as "ref", not refused.
            allowed = "\n\r\t" if self.multiline else ""
            if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in data):
                raise serializers.ValidationError("Control characters are not allowed.")
        return super().run_validation(data)


class FiniteFloatField(serializers.FloatField):
    """A JSON number (not a string, not a boolean) that is finite once converted to float."""

    default_error_messages = {
        "invalid": "A valid finite number is required.",
        "not_a_number": "Must be a JSON number, not {type}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float, Decimal)):
            self.fail("not_a_number", type=type(data).__name__)
        try:
            value = float(data)
        except (OverflowError, ValueError):
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return super().to_internal_value(value)


MONEY_PATTERN = r"^-?[0-9]{1,18}(\.[0-9]{1,12})?$"
_MONEY_RE = re.compile(MONEY_PATTERN)


@extend_schema_field({
    "oneOf": [{"type": "string", "pattern": MONEY_PATTERN}, {"type": "number"}],
    "description": 'Exact decimal: a string such as "0.000123" (preferred) or a JSON number; '
                   "at most 18 integer digits and 12 decimal places, never rounded.",
})
class MoneyField(serializers.DecimalField):
    """A decimal with the money columns' precision (30 digits, 12 places); extra places are refused."""

    default_error_messages = {"format": "Must be a decimal string like \"12.5\" or a JSON number."}

    def __init__(self, **kwargs):
        super().__init__(max_digits=30, decimal_places=12, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float, Decimal)):
            self.fail("format")
        if isinstance(data, str) and not _MONEY_RE.fullmatch(data):
            self.fail("format")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime (naive means UTC), returned in UTC; rejects values that overflow in UTC."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise serializers.ValidationError("Datetime is out of range.") from None


class StrictBooleanField(serializers.BooleanField):
    """true or false, nothing else ("yes", 1 and "on" are not booleans in a JSON API)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field({"type": "number", "minimum": 0, "description":
                      "0, or a positive normal number up to SIZING_MAX_GROSS (default 1e15)."})
class GrossTargetField(serializers.Field):
    """gross_target, checked by the same rule, with the same message, as size_for and `manage.py size`."""

    default_error_messages = {"null": gross_target_error(None)}

    def to_internal_value(self, data):
        problem = gross_target_error(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return float(data) + 0.0

    def to_representation(self, value):
        return value


class StrictInputSerializer(serializers.Serializer):
    """A request body's object: a field it does not declare is a 400 naming it, never silently dropped.

    A misspelt "order_ref" would otherwise be lost, and the order sized without its idempotency key.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(self.fields)
                raise serializers.ValidationError(
                    {str(name)[:100]: [f"Unknown field (allowed: {allowed})."] for name in unknown[:20]})
        return super().to_internal_value(data)
