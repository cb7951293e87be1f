"""Input checks shared by the Python API, the commands and the REST API.

Bad input raises ValueError with a message that says what is wrong, before anything is written.
Every entry point calls these same functions, so one input is refused everywhere with one message.
"""
import math
import re
import sys
from decimal import Decimal
from numbers import Integral, Real

from ..conf import sizing_settings
from ..models import SYMBOL_PATTERN

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
MAX_TEXT = {"order_ref": 128, "caller": 64}
# Scanned with regular expressions: these run on every size handed out (the hot path).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")
_REFUSED_RE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control characters or lone surrogates: one scan
# The smallest positive normal float: below it a number has lost precision (a subnormal) and
# multiplied through the stack it rounds to zeros that mean nothing.
SMALLEST_NORMAL = sys.float_info.min


def validate_symbol(symbol) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        raise ValueError(f"Malformed symbol {symbol!r}: expected 2-32 upper-case letters or digits, e.g. 'BTCUSDC'.")
    return symbol


def max_gross() -> float:
    """SIZING_MAX_GROSS: the largest gross_target accepted (checked at start-up, see conf)."""
    return sizing_settings().max_gross


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def gross_target_error(value) -> str | None:
    """Why `value` is not an acceptable gross_target, or None when it is.

    Accepted: 0, or a positive normal float up to SIZING_MAX_GROSS (ints and Decimals that convert
    to one). Refused: booleans, strings and other non-numbers, NaN, infinities, negatives,
    subnormals and values above the maximum. Numbers are shown as floats, so the JSON number
    1e-320 (a Decimal once parsed), the float 1e-320 and the command-line "1e-320" read alike.
    """
    if isinstance(value, bool) or not isinstance(value, (Real, Decimal)):
        shown = _shown(value) if isinstance(value, (str, bool, type(None))) else f"a {type(value).__name__}"
        return f"gross_target must be a number, got {shown}."
    if isinstance(value, Decimal):
        finite, not_a_number = value.is_finite(), value.is_nan()
    else:
        finite = isinstance(value, Integral) or math.isfinite(value)
        not_a_number = not finite and math.isnan(value)
    if not finite:
        shown = "nan" if not_a_number else ("inf" if value > 0 else "-inf")
        return f"gross_target must be a finite number, got {shown}."
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf if value > 0 else -math.inf
    # Finite, yet beyond float range (a huge int or Decimal): shown as what was sent.
    shown = _shown(number) if math.isfinite(number) else f"{Decimal(value):.3e}"
    if number < 0:
        return f"gross_target must be zero or positive, got {shown}."
    limit = max_gross()
    if number > limit:
        return f"gross_target {shown} is above the maximum SIZING_MAX_GROSS={limit:g}."
    if 0 < number < SMALLEST_NORMAL:
        return (f"gross_target {shown} is too small to size: use 0 or a number of at least "
                f"{SMALLEST_NORMAL!r} (the smallest normal float).")
    return None


def validate_gross_target(gross_target) -> float:
    if type(gross_target) is float and (gross_target == 0.0 or SMALLEST_NORMAL <= gross_target <= max_gross()):
        return gross_target + 0.0  # the common case; -0.0 becomes 0.0 (see below)
    problem = gross_target_error(gross_target)
    if problem is not None:
        raise ValueError(problem)
    # -0.0 passes the checks but SQLite stores it as 0.0, so a ledger row hashed with "-0.0"
    # would fail verify_ledger once read back: the ledger only ever sees +0.0.
    return float(gross_target) + 0.0


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
