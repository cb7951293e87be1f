"""POST size/ and size/batch/ (the engine's entry point) and the decisions ledger they write."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from sizing_app import signal_generator
from sizing_app.models import SizingDecision
from sizing_app.roles import COMPLIANCE, ENGINE
from sizing_app.sizing import service as sizing_service


@pytest.fixture
def engine(clients):
    return clients[ENGINE]


def test_size_returns_the_decision_with_its_breakdown(engine, market):
    response = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1000, "order_ref": "ord-7"},
                           format="json")
    assert response.status_code == 201
    body = response.json()
    decision = SizingDecision.objects.get()
    assert body["id"] == decision.pk and body["seq"] == 1 and body["row_hash"] == decision.row_hash
    assert body["snapshot_id"] == market["snapshots"]["BTCUSDC"].pk
    assert body["gross_target"] == 1000.0 and body["intel_factor"] == 1.2 and body["applied_factor"] == 1.2
    assert body["final_size"] == pytest.approx(
        body["inverse_vol_size"] * body["regime_multiplier"] * body["sharpe_multiplier"] * body["applied_factor"]
    )
    assert body["mode"] == "live" and body["stale"] is False and body["fallback_reason"] == ""
    assert body["order_ref"] == "ord-7" and body["caller"] == "engine"


def test_order_ref_is_optional(engine, market):
    response = engine.post("/api/v1/size/", {"symbol": "ETHUSDC", "gross_target": 5.5}, format="json")
    assert response.status_code == 201 and response.json()["order_ref"] == ""


@pytest.mark.parametrize("body, field", [
    ({"gross_target": 1}, "symbol"),
    ({"symbol": "BTCUSDC"}, "gross_target"),
    ({"symbol": "NOPEUSDC", "gross_target": 1}, "symbol"),
    ({"symbol": "btcusdc", "gross_target": 1}, "symbol"),
    ({"symbol": "BTC'; DROP TABLE x;--", "gross_target": 1}, "symbol"),
    ({"symbol": "<b>BTC</b>", "gross_target": 1}, "symbol"),
    ({"symbol": "₿TCUSDC", "gross_target": 1}, "symbol"),
    ({"symbol": 42, "gross_target": 1}, "symbol"),
    ({"symbol": "BTCUSDC", "gross_target": -1}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": "NaN"}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": "100"}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": True}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": None}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": [1]}, "gross_target"),
    ('{"symbol": "BTCUSDC", "gross_target": 1e400}', "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": 10**400}, "gross_target"),
    ({"symbol": "BTCUSDC", "gross_target": 1, "order_ref": "x" * 129}, "order_ref"),
    ({"symbol": "BTCUSDC", "gross_target": 1, "order_ref": "a\x00b"}, "order_ref"),
    ({"symbol": "BTCUSDC", "gross_target": 1, "order_ref": "line\nbreak"}, "order_ref"),
    ('{"symbol": "BTCUSDC", "gross_target": 1, "order_ref": "\\ud800"}', "order_ref"),
    ({"symbol": "BTCUSDC", "gross_target": 1, "order_ref": 7}, "order_ref"),  # not coerced to "7"
])
def test_size_input_errors_name_the_field_and_write_nothing(engine, market, body, field):
    if isinstance(body, str):  # raw JSON the test client could not encode (1e400, a lone surrogate)
        response = engine.post("/api/v1/size/", body, content_type="application/json")
    else:
        response = engine.post("/api/v1/size/", body, format="json")
    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    # A well-formed symbol nobody registered has a code of its own: a client can tell it from a typo.
    unregistered = isinstance(body, dict) and body.get("symbol") == "NOPEUSDC"
    assert error["code"] == ("unknown_symbol" if unregistered else "invalid") and field in error["details"]
    assert not SizingDecision.objects.exists()


def test_unicode_sql_and_html_order_refs_are_kept_verbatim(engine, market):
    for order_ref in ("ordre-é-₿-😀", "'; DROP TABLE sizing_app_sizingdecision;--", "<script>alert(1)</script>"):
        response = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1, "order_ref": order_ref},
                               format="json")
        assert response.status_code == 201 and response.json()["order_ref"] == order_ref
    assert SizingDecision.objects.count() == 3


def test_huge_finite_target_is_a_400_when_the_stack_overflows(engine, market):
    response = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1.7e308}, format="json")
    assert response.status_code in (201, 400)
    assert response.json()["error"]["code"] == "invalid" if response.status_code == 400 else True


def test_value_error_from_sizing_is_a_400(engine, market, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("volatility_regime_scale must be finite")

    monkeypatch.setattr(sizing_service, "size_decide", broken)
    response = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "volatility_regime_scale must be finite"


def test_batch_sizes_all_in_order(engine, market):
    orders = [{"symbol": "BTCUSDC", "gross_target": 10, "order_ref": "a"},
              {"symbol": "ETHUSDC", "gross_target": 20, "order_ref": "b"},
              {"symbol": "BTCUSDC", "gross_target": 30}]
    response = engine.post("/api/v1/size/batch/", {"orders": orders}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert [(row["symbol"], row["gross_target"], row["order_ref"]) for row in body] == [
        ("BTCUSDC", 10.0, "a"), ("ETHUSDC", 20.0, "b"), ("BTCUSDC", 30.0, "")]
    assert [row["seq"] for row in body if row["symbol"] == "BTCUSDC"] == [1, 2]


def test_batch_is_all_or_nothing(engine, market):
    orders = [{"symbol": "BTCUSDC", "gross_target": 10}, {"symbol": "NOPEUSDC", "gross_target": 1},
              {"symbol": "ETHUSDC", "gross_target": -3}]
    response = engine.post("/api/v1/size/batch/", {"orders": orders}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]["orders"]
    assert "gross_target" in details[2]
    assert not SizingDecision.objects.exists()
    response = engine.post("/api/v1/size/batch/", {"orders": orders[:2]}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]["orders"]
    assert details[0] == {} and details[1]["symbol"][0].startswith("Unknown symbol 'NOPEUSDC'")
    assert not SizingDecision.objects.exists()


@pytest.mark.parametrize("body", [{"orders": []}, {"orders": {"symbol": "BTCUSDC"}}, {}, [],
                                  {"orders": [{"symbol": "BTCUSDC", "gross_target": 1}] * 1001}])
def test_batch_shape_errors(engine, market, body):
    response = engine.post("/api/v1/size/batch/", body, format="json")
    assert response.status_code == 400
    assert not SizingDecision.objects.exists()


# The ledger ---------------------------------------------------------------------------------------
@pytest.fixture
def ledger(market):
    made = []
    for index in range(6):
        symbol = "BTCUSDC" if index % 2 == 0 else "ETHUSDC"
        made.append(signal_generator.size_decide(symbol, 10.0 + index, order_ref=f"ref-{index}", caller="engine"))
    return made


def test_decisions_list_filters_and_detail(clients, ledger):
    client = clients[COMPLIANCE]
    def ids(query):
        return [row["id"] for row in client.get(f"/api/v1/decisions/?{query}").json()["results"]]
    assert ids("") == [decision.pk for decision in reversed(ledger)]
    assert ids("symbol=ETHUSDC") == [ledger[5].pk, ledger[3].pk, ledger[1].pk]
    assert ids("order_ref=ref-2") == [ledger[2].pk]
    assert ids("mode=live") == ids("")
    assert ids("mode=shadow") == []
    assert ids("stale=false") == ids("") and ids("stale=true") == []
    since = urlencode({"t": ledger[0].created_at.isoformat()})[2:]
    assert len(ids(f"since={since}")) == 6 and ids(f"until={since}") == []
    detail = client.get(f"/api/v1/decisions/{ledger[3].pk}/").json()
    assert detail["order_ref"] == "ref-3" and detail["row_hash"] == ledger[3].row_hash


@pytest.mark.parametrize("query", ["mode=on", "stale=maybe", "stale=1", "since=not-a-time", "order_ref=" + "x" * 200,
                                   "symbol=%00", "mode=", "stale=", "until=", "page_size="])
def test_decisions_list_rejects_malformed_filters(clients, ledger, query):
    response = clients[COMPLIANCE].get(f"/api/v1/decisions/?{query}")
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/decisions/999999/", "/api/v1/decisions/99999999999999999999999/",
                                  "/api/v1/decisions/-1/", "/api/v1/decisions/abc/"])
def test_unknown_decision_is_a_json_404(clients, ledger, path):
    response = clients[COMPLIANCE].get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_decisions_pages_hold_still_while_the_ledger_grows(clients, ledger):
    client = clients[COMPLIANCE]
    first = client.get("/api/v1/decisions/?page_size=4").json()
    signal_generator.size_decide("BTCUSDC", 99.0)
    second = client.get(first["next"]).json()
    assert [row["id"] for row in first["results"] + second["results"]] == [d.pk for d in reversed(ledger)]
    assert second["next"] is None


def test_decisions_are_newest_first_even_at_the_same_instant(clients, market):
    batch = signal_generator.size_decide_batch([("BTCUSDC", 1.0, ""), ("ETHUSDC", 2.0, ""), ("BTCUSDC", 3.0, "")])
    assert len({decision.created_at for decision in batch}) == 1
    body = clients[COMPLIANCE].get("/api/v1/decisions/?page_size=2").json()
    rest = clients[COMPLIANCE].get(body["next"]).json()["results"]
    assert [row["id"] for row in body["results"] + rest] == sorted((d.pk for d in batch), reverse=True)


# --- what an HTTP client needs to tell outcomes apart ------------------------------------------------

def test_the_api_and_size_for_key_a_padded_order_ref_alike(engine, market):
    body = {"symbol": "BTCUSDC", "gross_target": 10.0, "order_ref": " ord-1 "}
    assert engine.post("/api/v1/size/", body, format="json").json()["order_ref"] == " ord-1 "  # kept as given
    again = signal_generator.size_decide("BTCUSDC", 10.0, order_ref=" ord-1 ", caller="engine")  # the API's caller
    assert again.replayed and SizingDecision.objects.count() == 1


def test_an_order_ref_of_blanks_is_a_key_like_any_other(engine, market):
    body = {"symbol": "BTCUSDC", "gross_target": 10.0, "order_ref": "   "}
    first = engine.post("/api/v1/size/", body, format="json")
    again = engine.post("/api/v1/size/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200) and again.json()["id"] == first.json()["id"]


def test_a_conflict_names_the_order_and_its_original_decision(engine, market):
    first = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 10.0, "order_ref": "ord-2"},
                        format="json")
    conflict = engine.post("/api/v1/size/", {"symbol": "BTCUSDC", "gross_target": 11.0, "order_ref": "ord-2"},
                           format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["details"] == {"order_ref": "ord-2", "decision_id": first.json()["id"],
                                                   "journal_ref": ""}
    batch = engine.post("/api/v1/size/batch/", {"orders": [
        {"symbol": "BTCUSDC", "gross_target": 1.0, "order_ref": "new"},
        {"symbol": "BTCUSDC", "gross_target": 12.0, "order_ref": "ord-2"}]}, format="json")
    assert batch.status_code == 409 and batch.json()["error"]["details"]["order_ref"] == "ord-2"


def test_an_unknown_symbol_has_its_own_error_code(engine, market):
    unknown = engine.post("/api/v1/size/", {"symbol": "NOPEUSDC", "gross_target": 1.0}, format="json")
    malformed = engine.post("/api/v1/size/", {"symbol": "nope", "gross_target": 1.0}, format="json")
    assert unknown.json()["error"]["code"] == "unknown_symbol"
    assert malformed.json()["error"]["code"] == "invalid"
