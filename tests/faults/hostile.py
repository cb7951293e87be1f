"""Hostile values and a fingerprint of everything a request or command could change.

Shared by test_hostile_input.py and test_security.py: the strategies generate the inputs an
attacker or a broken client sends; `fingerprint()` digests the rows of every table such an
input must leave alone, so "nothing changed" is one equality.
"""
from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal

from django.apps import apps
from hypothesis import strategies as st

from sizing_app.models import SYMBOL_PATTERN

SQL = "'; DROP TABLE sizing_app_sizingdecision; --"
HTML = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
HOSTILE_STRINGS = (
    "", " ", SQL, "1 OR 1=1", HTML, "\u202eCDSUTB",  # right-to-left override
    "B\u0301TCUSDC", "BTC\u200dUSDC", "😀", "BTCUSDC😀", "\x00", "BTC\x00USDC", "\ud800", "a\udfffb",
    "BTCUSDC\n", " BTCUSDC", "btcusdc", "ＢＴＣＵＳＤＣ",  # full-width letters
    "١٢٣", "NaN", "nan", "Infinity", "-inf", "1e308", "-0.0", "0x10", "1_000", "null", "true",
    "A" * 33, "X" * 10_000, "../../etc/passwd", "%00", "${jndi:ldap://x}", "{{7*7}}",
)
HOSTILE_FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, -5e-324, -1e308)
EDGE_FLOATS = (0.0, -0.0, 5e-324, 1e-300, 1e308, 1.7976931348623157e308)

hostile_text = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=200))
# A JSON value of any shape: wrong types, deep-ish nesting, edge numbers, hostile strings.
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EDGE_FLOATS), hostile_text,
)
any_json = st.recursive(
    json_leaf, lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=12,
)


def malformed_symbols():
    """Text that is not a symbol name (SYMBOL_PATTERN) — the regex, not a sample, decides."""
    import re

    pattern = re.compile(SYMBOL_PATTERN)
    return hostile_text.filter(lambda text: not pattern.fullmatch(text))


def bad_numbers():
    """Not a finite non-negative number: NaN, infinities, negatives, strings, booleans, containers."""
    return st.one_of(
        st.sampled_from(HOSTILE_FLOATS),
        st.floats(max_value=-5e-324),
        st.integers(max_value=-1),
        st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("-1"), 10**400]),
        hostile_text, st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.just({}),
        st.just(b"1"), st.just(1j),
    )


def bad_json_numbers():
    """What a JSON client can send where a finite non-negative number belongs (NaN/Infinity are not JSON)."""
    return st.one_of(
        st.floats(max_value=-5e-324, allow_infinity=False), st.integers(max_value=-1, min_value=-(10**30)),
        st.just(10**400), hostile_text, st.booleans(), st.none(),
        st.lists(st.integers(), max_size=2), st.dictionaries(hostile_text, st.integers(), max_size=2),
    )


def _canonical(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def table_digest(model) -> str:
    """sha256 of every row of a table (all concrete columns, ordered by primary key)."""
    columns = [field.attname for field in model._meta.concrete_fields]
    digest = hashlib.sha256()
    for row in model._base_manager.order_by("pk").values_list(*columns):
        digest.update(json.dumps([_canonical(value) for value in row], default=str).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


WATCHED = (
    "sizing_app.SizingDecision", "sizing_app.SizingSnapshot", "sizing_app.RecomputeRun", "sizing_app.Override",
    "sizing_app.GlobalPolicy", "sizing_app.Symbol", "sizing_app.Candle", "sizing_app.Order", "sizing_app.Fill",
    "auth.User", "authtoken.Token",
)
RECORD = ("sizing_app.SizingDecision", "sizing_app.SizingSnapshot")


def fingerprint(models=WATCHED) -> dict[str, str]:
    """{model label: digest of all its rows}: equal before and after means nothing was written."""
    return {label: table_digest(apps.get_model(label)) for label in models}


def record_rows() -> dict[str, dict]:
    """The ledger and snapshots, row by row ({label: {pk: row}}), to check existing rows are untouched."""
    rows = {}
    for label in RECORD:
        model = apps.get_model(label)
        columns = [field.attname for field in model._meta.concrete_fields]
        rows[label] = {row[0]: tuple(_canonical(v) for v in row)
                       for row in model._base_manager.order_by("pk").values_list(*columns)}
    return rows


def assert_record_only_grew(before: dict[str, dict], context: str = "") -> None:
    """Every ledger and snapshot row present before is still there, identical (appends are allowed)."""
    after = record_rows()
    for label, rows in before.items():
        for pk, row in rows.items():
            assert after[label].get(pk) == row, f"{label} row {pk} changed or vanished {context}"
