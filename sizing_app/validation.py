"""Input checks shared by the Python API, the commands and the REST API.

Bad input raises ValueError with a message that says what is wrong, before anything is written.
"""
import math
import re
from decimal import Decimal
from numbers import Real

from .models import SYMBOL_PATTERN

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
MAX_TEXT = {"order_ref": 128, "caller": 64}
# Scanned with regular expressions: these run on every size handed out (the hot path).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")
_REFUSED_RE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control characters or lone surrogates: one scan


def validate_symbol(symbol) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        raise ValueError(f"Malformed symbol {symbol!r}: expected 2-32 upper-case letters or digits, e.g. 'BTCUSDC'.")
    return symbol


def validate_gross_target(gross_target) -> float:
    if type(gross_target) is float and 0.0 <= gross_target < math.inf:  # the common case, without the ABC check
        return gross_target + 0.0
    if isinstance(gross_target, bool) or not isinstance(gross_target, (Real, Decimal)):
        raise ValueError(f"gross_target must be a number, got {type(gross_target).__name__}.")
    try:
        value = float(gross_target)
    except OverflowError:
        raise ValueError(f"gross_target {gross_target!r} is too large.") from None
    except ValueError:  # Decimal('sNaN') refuses conversion
        raise ValueError(f"gross_target must be finite, got {gross_target!r}.") from None
    if not math.isfinite(value):
        raise ValueError(f"gross_target must be finite, got {value!r}.")
    if value < 0:
        raise ValueError(f"gross_target must be non-negative, got {value!r}.")
    # -0.0 passes the check above but SQLite stores it as 0.0, so a ledger row hashed with
    # "-0.0" would fail verify_ledger once read back: the ledger only ever sees +0.0.
    return value + 0.0


def validate_text(name: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}.")
    if len(value) > MAX_TEXT[name]:
        raise ValueError(f"{name} is longer than {MAX_TEXT[name]} characters.")
    if _REFUSED_RE.search(value):
        if _CONTROL_RE.search(value):
            raise ValueError(f"{name} must not contain control characters.")
        # A lone surrogate cannot be encoded as UTF-8: neither the database nor the row hash takes it.
        raise ValueError(f"{name} must be valid Unicode text (no lone surrogates).")
    return value
