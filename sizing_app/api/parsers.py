"""The API's only request parser: JSON, size-limited, with exact decimals and no NaN/Infinity.

DRF's JSONParser reads the stream directly and so bypasses DATA_UPLOAD_MAX_MEMORY_SIZE; this one
enforces it (413) whether or not the client sent a Content-Length.
"""
from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import PayloadTooLarge


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge()
        try:
            text = body.decode(encoding)
            # Floats parse as Decimal so money columns keep every digit sent.
            return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, LookupError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
