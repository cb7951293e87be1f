"""Latest factors (list in one query, one symbol from the hot state) and the snapshot history."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sizing_app.roles import DASHBOARD, ENGINE
from tests.factories import make_override, make_snapshot, make_symbol


@pytest.fixture
def engine(clients):
    return clients[ENGINE]


def test_latest_list_has_each_active_symbol_once_with_its_newest_snapshot(engine, market):
    btc = market["btc"]
    newest = make_snapshot(btc, as_of=market["now"] - timedelta(minutes=1), size_factor=1.5, score=0.9)
    body = engine.get("/api/v1/factors/latest/").json()
    assert [row["symbol"] for row in body] == ["BTCUSDC", "ETHUSDC"]  # OLDUSDC is inactive
    first = body[0]
    assert first["snapshot_id"] == newest.pk and first["size_factor"] == 1.5 and first["score"] == 0.9
    assert first["stale"] is False and 0 <= first["age_seconds"] < 3600
    assert set(first) == {"symbol", "snapshot_id", "as_of", "age_seconds", "stale", "status", "score", "size_factor",
                          "inverse_vol_multiplier", "regime_multiplier", "sharpe_multiplier", "sharpe_7d",
                          "atr_regime_ratio", "components", "mode", "override", "fallback_reason", "intel_factor",
                          "applied_factor", "total_multiplier"}


def test_latest_list_flags_stale_snapshots(engine, market, settings):
    settings.SIZING_MAX_AGE_SECONDS = 900  # the market's snapshots are 5 minutes old
    settings.SIZING_RECOMPUTE_SECONDS = 60
    make_snapshot(market["btc"], as_of=timezone.now() - timedelta(hours=2))  # older than the newest: ignored
    body = {row["symbol"]: row for row in engine.get("/api/v1/factors/latest/").json()}
    assert body["BTCUSDC"]["stale"] is False
    settings.SIZING_MAX_AGE_SECONDS = 120
    body = {row["symbol"]: row for row in engine.get("/api/v1/factors/latest/").json()}
    assert body["BTCUSDC"]["stale"] is True


def _symbols_with_history(count: int, start: int = 0):
    now = timezone.now()
    for index in range(start, start + count):
        symbol = make_symbol(f"SYM{index:03d}USDC")
        for age in (30, 20, 10):
            make_snapshot(symbol, as_of=now - timedelta(minutes=age), size_factor=1.0 + index / 100)


@pytest.mark.parametrize("count", [3, 30])
def test_latest_list_reads_no_snapshot_whatever_the_number_of_symbols(engine, count):
    _symbols_with_history(count)
    assert engine.get("/api/v1/factors/latest/").status_code == 200  # warms the token cache and the hot state
    with CaptureQueriesContext(connection) as queries:
        body = engine.get("/api/v1/factors/latest/").json()
    assert len(body) == count
    assert [row["size_factor"] for row in body] == [1.0 + index / 100 for index in range(count)]  # the newest
    # The hot state's change poll at most (a small query on runs and policy history), never the snapshots.
    assert not [q["sql"] for q in queries if "sizingsnapshot" in q["sql"].lower()]


def test_latest_one_symbol(engine, market):
    snapshot = market["snapshots"]["BTCUSDC"]
    body = engine.get("/api/v1/factors/latest/BTCUSDC/").json()
    assert body["snapshot_id"] == snapshot.pk
    assert body["size_factor"] == 1.2 and body["components"] == {"slippage": {"value": -3.0, "contribution": 0.1}}


def test_latest_one_symbol_reads_no_snapshot_when_warm(engine, market):
    assert engine.get("/api/v1/factors/latest/BTCUSDC/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert engine.get("/api/v1/factors/latest/BTCUSDC/").status_code == 200
    assert not [q["sql"] for q in queries if "sizingsnapshot" in q["sql"].lower()]


@pytest.mark.parametrize("symbol, code", [
    ("NOPEUSDC", "unknown_symbol"),
    ("OLDUSDC", "inactive_symbol"),  # known, inactive: sizing refuses it
    ("NEWUSDC", "no_snapshot"),  # known, active, never recomputed
    ("btcusdc", "unknown_symbol"),
    ("B", "unknown_symbol"),
    ("A" * 40, "unknown_symbol"),
    ("%27%3B%20DROP%20TABLE", "unknown_symbol"),
    ("%3Cscript%3E", "unknown_symbol"),
    ("%E2%82%BF", "unknown_symbol"),
    ("%00", "unknown_symbol"),
])
def test_latest_one_symbol_not_found(engine, market, symbol, code):
    make_symbol("NEWUSDC")
    response = engine.get(f"/api/v1/factors/latest/{symbol}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == code


def test_a_slash_in_the_symbol_is_a_json_404(engine, market):
    response = engine.get("/api/v1/factors/latest/BTC%2FUSDC/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


# History ------------------------------------------------------------------------------------------
def _walk(client, url: str) -> list[dict]:
    rows, pages = [], 0
    while url:
        body = client.get(url).json()
        rows += body["results"]
        url, pages = body["next"], pages + 1
        assert pages < 100
    return rows


def test_history_filters(engine, market):
    btc, now = market["btc"], market["now"]
    old = make_snapshot(btc, as_of=now - timedelta(days=2))
    mid = make_snapshot(btc, as_of=now - timedelta(days=1))
    recent = market["snapshots"]["BTCUSDC"]
    def ids(query):
        return [row["id"] for row in engine.get(f"/api/v1/factors/history/?{query}").json()["results"]]
    assert ids("symbol=BTCUSDC") == [recent.pk, mid.pk, old.pk]
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"symbol=BTCUSDC&since={since}") == [recent.pk, mid.pk]
    assert ids(f"symbol=BTCUSDC&until={since}") == [old.pk]
    assert set(ids("")) == {recent.pk, mid.pk, old.pk, market["snapshots"]["ETHUSDC"].pk}
    assert ids("symbol=NOPEUSDC") == []


@pytest.mark.parametrize("query, field", [
    ("since=yesterday", "since"),
    ("until=2024-13-01T00:00:00Z", "until"),
    ("since=9999-12-31T23:59:59-23:00", "since"),
    ("symbol=btc", "symbol"),
    ("page_size=0", "page_size"),
    ("page_size=abc", "page_size"),
    ("page_size=100000", "page_size"),
    ("cursor=garbage", "cursor"),
])
def test_history_rejects_malformed_parameters(engine, market, query, field):
    response = engine.get(f"/api/v1/factors/history/?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]


def test_history_rejects_a_forged_cursor_position(engine, market):
    forged = base64.b64encode(b"o=0&r=0&p=not-a-date").decode()
    response = engine.get(f"/api/v1/factors/history/?cursor={forged}")
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["details"]


def test_history_cursor_pages_are_complete_and_stable(engine, market):
    _symbols_with_history(5)  # 15 snapshots sharing three as_of values: ties broken by id
    url = "/api/v1/factors/history/?page_size=4"
    first_page = engine.get(url).json()
    expected = [row["id"] for row in _walk(engine, url)]
    assert len(expected) == len(set(expected)) == 17
    # Rows written after the walk started do not shift or repeat the pages still to come.
    make_snapshot(market["eth"], as_of=timezone.now())
    rest = [row["id"] for row in _walk(engine, first_page["next"])]
    assert [row["id"] for row in first_page["results"]] + rest == expected
    cursor = parse_qs(urlparse(first_page["next"]).query)["cursor"][0]
    assert cursor and "p=" not in cursor  # opaque


def test_history_order_is_newest_first_then_highest_id(engine, market):
    _symbols_with_history(3)
    rows = _walk(engine, "/api/v1/factors/history/?page_size=2")
    keys = [(row["as_of"], row["id"]) for row in rows]
    assert keys == sorted(keys, reverse=True)


def test_dashboard_reads_history(clients, market):
    assert clients[DASHBOARD].get("/api/v1/factors/history/?symbol=ETHUSDC").json()["results"][0]["symbol"] == "ETHUSDC"


@pytest.mark.parametrize("override", [False, True], ids=["plain", "override"])
def test_hot_path_json_is_what_the_serializer_and_renderer_produce(engine, market, override):
    from rest_framework.renderers import JSONRenderer

    from sizing_app.api.serializers import LatestFactorOutputSerializer

    pinned = None
    if override:
        pinned = make_override(market["btc"], pinned_factor=0.5, mode="shadow",
                               expires_at=timezone.now() + timedelta(days=1, microseconds=7))
    raw = engine.get("/api/v1/factors/latest/BTCUSDC/").content
    body = json.loads(raw)
    expected = JSONRenderer().render(LatestFactorOutputSerializer({
        **body, "as_of": market["snapshots"]["BTCUSDC"].as_of,
        "override": pinned and {**body["override"], "expires_at": pinned.expires_at}}).data)
    assert raw == expected  # byte for byte: key order, float text, escapes
    assert raw.startswith(b'{"symbol":"BTCUSDC","snapshot_id":') and b'"stale":false,' in raw


def test_hot_path_cache_follows_new_snapshots(engine, market):
    assert engine.get("/api/v1/factors/latest/ETHUSDC/").json()["size_factor"] == 0.8
    newer = make_snapshot(market["eth"], as_of=timezone.now(), size_factor=1.9)
    body = engine.get("/api/v1/factors/latest/ETHUSDC/").json()
    assert body["snapshot_id"] == newer.pk and body["size_factor"] == 1.9
