"""Tests for fill import: Binance myTrades, ccxt, freqtrade trade lists and the project CSV; rules; real files.

Small files are written per test; the real ones come from ../shared/data (see shared_data_file).
"""
from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from sizing_app.models import Fill, Order, Symbol
from sizing_app.telemetry.importers.fills import fills_import
from tests.shared_data import shared_data_file

T0 = 1_672_531_200_000  # 2023-01-01T00:00Z in ms
CSV_HEADER = "symbol,trade_id,order_id,side,qty,price,fee,fee_asset,is_maker,realized_pnl,arrival_price,executed_at\n"


def write(tmp_path: Path, name: str, content: str | bytes, *, gz: bool = False) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def binance_trade(**changes):
    trade = {
        "symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1, "price": "4.00000100",
        "qty": "12.00000000", "quoteQty": "48.000012", "commission": "10.10000000", "commissionAsset": "BNB",
        "time": T0, "isBuyer": True, "isMaker": False, "isBestMatch": True,
    }
    trade.update(changes)
    return trade


def ccxt_trade(**changes):
    trade = {
        "info": {}, "id": "12345-67890", "timestamp": T0 + 500, "datetime": "2023-01-01T00:00:00.500Z",
        "symbol": "ETH/BTC", "order": "12345-67890:09876/54321", "type": "limit", "side": "sell",
        "takerOrMaker": "maker", "price": 0.06917684, "amount": 1.5, "cost": 0.10376526,
        "fee": {"cost": 0.0015, "currency": "ETH"},
    }
    trade.update(changes)
    return trade


def fills(symbol=None):
    queryset = Fill.objects.order_by("executed_at", "trade_id")
    if symbol:
        queryset = queryset.filter(symbol__name=symbol)
    return list(queryset.values_list(
        "symbol__name", "trade_id", "order_id", "side", "qty", "price", "fee", "fee_asset", "is_maker",
        "realized_pnl", "arrival_price", "executed_at",
    ))


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def errors_of(report):
    return [(error.line, error.reason) for error in report.errors]


def make_order(symbol: str, client_id: str, exchange_id: str = "") -> Order:
    return Order.objects.create(
        symbol=Symbol.objects.get_or_create(name=symbol)[0], client_order_id=client_id,
        exchange_order_id=exchange_id, side="buy", requested_qty=Decimal("12"), arrival_price=Decimal("4"),
        submitted_at=utc_ms(T0 - 1000),
    )


# --- formats -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_binance_my_trades(tmp_path, gz):
    order = make_order("BNBBTC", "my-client-id", exchange_id="100234")
    trades = [binance_trade(), binance_trade(id=28458, orderId=100235, isBuyer=False, isMaker=True, time=T0 + 1)]
    path = write(tmp_path, "myTrades.json" + (".gz" if gz else ""), json.dumps(trades, indent=2), gz=gz)

    report = fills_import(path=path)

    assert report.committed and report.format == "binance-json"
    assert (report.inserted, report.linked_orders, report.symbol) == (2, 1, "BNBBTC")
    assert fills() == [
        ("BNBBTC", "28457", order.pk, "buy", Decimal("12"), Decimal("4.000001"), Decimal("10.1"), "BNB", False,
         None, None, utc_ms(T0)),
        ("BNBBTC", "28458", None, "sell", Decimal("12"), Decimal("4.000001"), Decimal("10.1"), "BNB", True,
         None, None, utc_ms(T0 + 1)),
    ]
    # The order id is kept even where no Order row matches: nothing in the file is dropped.
    assert list(Fill.objects.order_by("trade_id").values_list("order_ref", flat=True)) == ["100234", "100235"]


def test_ccxt_trades(tmp_path):
    trades = [
        ccxt_trade(),
        ccxt_trade(id="2", side="buy", takerOrMaker="taker", fee=None, order=None),
        ccxt_trade(id="3", symbol="BTC/USDT:USDT", takerOrMaker=None, fee={"cost": None, "currency": None}),
    ]
    report = fills_import(path=write(tmp_path, "trades.json", json.dumps(trades)))

    assert report.committed and report.format == "ccxt-json"
    assert report.symbol == "BTCUSDT,ETHBTC" and sorted(report.created_symbols) == ["BTCUSDT", "ETHBTC"]
    assert [row[:1] + row[3:] for row in fills()] == [
        ("ETHBTC", "sell", Decimal("1.5"), Decimal("0.06917684"), Decimal("0.0015"), "ETH", True, None, None,
         utc_ms(T0 + 500)),
        ("ETHBTC", "buy", Decimal("1.5"), Decimal("0.06917684"), Decimal("0"), "", False, None, None,
         utc_ms(T0 + 500)),
        ("BTCUSDT", "sell", Decimal("1.5"), Decimal("0.06917684"), Decimal("0"), "", False, None, None,
         utc_ms(T0 + 500)),
    ]


def test_ccxt_order_ids_link_to_stored_orders(tmp_path):
    order = make_order("ETHBTC", "client-7", exchange_id="12345-67890:09876/54321")
    report = fills_import(path=write(tmp_path, "trades.json", json.dumps([ccxt_trade()])))
    assert report.linked_orders == 1 and Fill.objects.get().order_id == order.pk


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_freqtrade_trade_list_takes_its_symbol_from_the_file_name(tmp_path, gz):
    rows = [[T0, "101", None, "buy", 0.00141342, 23.0, 0.03250866], [T0 + 5, "102", "limit", "sell", 0.5, 2, 1.0]]
    path = write(tmp_path, "XRP_ETH-trades.json" + (".gz" if gz else ""), json.dumps(rows), gz=gz)

    report = fills_import(path=path)

    assert report.committed and report.format == "freqtrade-json" and report.symbol == "XRPETH"
    assert [row[:2] + row[3:9] for row in fills()] == [
        ("XRPETH", "101", "buy", Decimal("23"), Decimal("0.00141342"), Decimal("0"), "", False),
        ("XRPETH", "102", "sell", Decimal("2"), Decimal("0.5"), Decimal("0"), "", False),
    ]


def test_freqtrade_trade_list_needs_a_symbol(tmp_path):
    path = write(tmp_path, "trades.json", json.dumps([[T0, "1", None, "buy", 1, 1, 1]]))
    report = fills_import(path=path)
    assert report.file_error == (
        "a freqtrade trades list carries no symbol and the file name is not PAIR-trades.json(.gz): pass --symbol"
    )
    assert fills_import(path=path, symbol="XRP/ETH").inserted == 1
    assert fills()[0][0] == "XRPETH"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_project_csv(tmp_path, gz):
    order = make_order("BTCUSDC", "engine-42")
    body = (
        CSV_HEADER
        + "BTCUSDC,t-1,engine-42,buy,0.015,42000.50,0.0315,USDC,true,,41990.00,2023-01-01T00:00:01.250Z\n"
        + 'BTCUSDC,t-2,,SELL,0.015,42100.5,0,,false,1.5,,"2023-01-01T02:00:00+02:00"\n'
        + "BTCUSDC,t-3,,sell,1,42000,,,,-0.25,,1672531260000\n"
    )
    report = fills_import(path=write(tmp_path, "fills.csv" + (".gz" if gz else ""), body, gz=gz))

    assert report.committed and report.format == "csv" and report.errors == []
    assert (report.inserted, report.linked_orders) == (3, 1)
    assert fills() == [
        ("BTCUSDC", "t-2", None, "sell", Decimal("0.015"), Decimal("42100.5"), Decimal("0"), "", False,
         Decimal("1.5"), None, utc_ms(T0)),
        ("BTCUSDC", "t-1", order.pk, "buy", Decimal("0.015"), Decimal("42000.5"), Decimal("0.0315"), "USDC", True,
         None, Decimal("41990"), utc_ms(T0 + 1250)),
        ("BTCUSDC", "t-3", None, "sell", Decimal("1"), Decimal("42000"), Decimal("0"), "", False,
         Decimal("-0.25"), None, utc_ms(T0 + 60_000)),
    ]


def test_project_csv_columns_may_come_in_any_order_and_optional_ones_may_be_left_out(tmp_path):
    body = "executed_at,price,qty,side,trade_id,symbol\n2023-01-01T00:00:00Z,10,2,buy,a,ETHUSDC\n"
    report = fills_import(path=write(tmp_path, "min.csv", body))
    assert report.inserted == 1
    assert fills()[0][1:] == ("a", None, "buy", Decimal("2"), Decimal("10"), Decimal("0"), "", False, None, None,
                              utc_ms(T0))


def test_money_is_exact(tmp_path):
    body = CSV_HEADER + "BTCUSDC,t-1,,buy,123.123456789012,0.000000000001,0.1,,false,,,1672531200000\n"
    report = fills_import(path=write(tmp_path, "fills.csv", body))
    fill = Fill.objects.get()
    assert (fill.qty, fill.price, fill.fee) == (Decimal("123.123456789012"), Decimal("1E-12"), Decimal("0.1"))
    assert report.warnings == []


def test_money_beyond_fifteen_digits(tmp_path):
    # PostgreSQL numeric(30, 12) keeps all 18 digits; SQLite stores a 64-bit float, and the import says so.
    body = CSV_HEADER + "BTCUSDC,t-1,,buy,123456.123456789012,1,0,,false,,,1672531200000\n"
    report = fills_import(path=write(tmp_path, "fills.csv", body))
    if connection.vendor == "sqlite":
        assert report.warnings == [
            "1 money value(s) have more than 15 significant digits; SQLite keeps only about 15 "
            "(PostgreSQL stores them exactly)"
        ]
    else:
        assert report.warnings == []
        assert Fill.objects.get().qty == Decimal("123456.123456789012")
    assert fills_import(path=write(tmp_path, "fills.csv", body)).unchanged == 1


def test_format_flag_overrides_detection(tmp_path):
    path = write(tmp_path, "trades.json", json.dumps([binance_trade()]))
    report = fills_import(path=path, fmt="ccxt-json")
    assert errors_of(report) == [(1, "missing fields timestamp, side, amount")]


# --- validation rules --------------------------------------------------------------------------------------------


def test_every_kind_of_bad_json_row_is_listed_and_nothing_is_written(tmp_path):
    trades = [
        binance_trade(),
        binance_trade(id=2, isBuyer="yes"),
        binance_trade(id=3, price="0"),
        binance_trade(id=4, qty="-1"),
        binance_trade(id=5, price="NaN"),
        binance_trade(id=6, commission="0.0000000000001"),
        binance_trade(id=7, time=1_672_531_200),
        binance_trade(id=8, time=4_102_444_800_000),
        binance_trade(id=28457),
        {key: value for key, value in binance_trade(id=10).items() if key not in ("isMaker", "time")},
        binance_trade(id=11, isMaker=None),
        binance_trade(id=12, symbol="BNB BTC!"),
        binance_trade(id=13, price=True),
        "not an object",
        binance_trade(id=15, commissionAsset="A" * 17),
    ]
    path = write(tmp_path, "myTrades.json", "[\n" + ",\n".join(json.dumps(trade) for trade in trades) + "\n]")

    report = fills_import(path=path)

    assert report.rejected
    assert errors_of(report) == [
        (3, "unknown side: isBuyer must be true or false, got 'yes'"),
        (4, "non-positive price 0"),
        (5, "non-positive qty -1"),
        (6, "price is not finite (NaN)"),
        (7, "commission 0.0000000000001 has more than 12 decimal places"),
        (8, "time 1970-01-20T08:35:31.200Z is before 2009-01-01 (seconds instead of milliseconds?)"),
        (9, "time 2100-01-01T00:00Z is more than a day in the future"),
        (10, "duplicate trade id 28457 for BNBBTC (first on line 2)"),
        (11, "missing fields time, isMaker"),
        (12, "isMaker must be true or false, got None"),
        (13, "malformed symbol 'BNB BTC!': expected 2-32 letters or digits, e.g. BTCUSDT or BTC/USDT"),
        (14, "price must be a number, got True"),
        (15, "expected a myTrades object, got str"),
        (16, "commissionAsset 'AAAAAAAAAAAAAAAAA'... is longer than 16 characters"),
    ]
    assert Fill.objects.count() == 0 and not Symbol.objects.exists()


def test_every_kind_of_bad_ccxt_and_freqtrade_row(tmp_path):
    trades = [ccxt_trade(side="long"), ccxt_trade(id="b", takerOrMaker="both"), ccxt_trade(id=None),
              ccxt_trade(id="d", fee="0.1"), ccxt_trade(id="e", amount=1e-13), ccxt_trade(id="f", price=float("inf"))]
    report = fills_import(path=write(tmp_path, "ccxt.json", json.dumps(trades)))
    assert errors_of(report) == [
        (1, "unknown side 'long' in side (expected buy or sell)"),
        (1, "takerOrMaker must be 'maker', 'taker' or null, got 'both'"),
        (1, "missing id"),
        (1, "fee must be an object {cost, currency} or null, got '0.1'"),
        (1, "amount 1E-13 has more than 12 decimal places"),
        (1, "price is not finite (inf)"),
    ]
    rows = [[T0, "1", None, "hold", 1, 1, 1], [T0, "2", None, "buy", 1, 1], [T0, "3", None, "buy", 1, -1, 1]]
    report = fills_import(path=write(tmp_path, "XRP_ETH-trades.json", json.dumps(rows)))
    assert errors_of(report) == [
        (1, "unknown side 'hold' in side (expected buy or sell)"),
        (1, "expected 7 columns, got 6"),
        (1, "non-positive amount -1"),
    ]
    assert Fill.objects.count() == 0


def test_every_kind_of_bad_csv_row(tmp_path):
    body = (
        CSV_HEADER
        + "BTCUSDC,a,,buy,1,100,0,,false,,,2023-01-01T00:00:00Z\n"   # 2 ok
        + "BTCUSDC,b,,short,1,100,0,,false,,,2023-01-01T00:00:00Z\n"  # 3 unknown side
        + "BTCUSDC,c,,buy,1,100,0,,false,,,2023-01-01T00:00:00\n"     # 4 naive time
        + "BTCUSDC,d,,buy,1,100,0,,maybe,,,2023-01-01T00:00:00Z\n"    # 5 bad flag
        + "BTCUSDC,e,,buy,1,100,0,,false,,,yesterday\n"               # 6 bad time
        + "BTCUSDC,f,,buy,1,100\n"                                    # 7 wrong column count
        + "BTCUSDC,g,,buy,1,1e400,0,,false,,,2023-01-01T00:00:00Z\n"  # 8 too large
        + "BTCUSDC,h,,buy,1,100,0,,false,,-5,2023-01-01T00:00:00Z\n"  # 9 non-positive arrival price
        + "BTCUSDC,a,,buy,1,100,0,,false,,,2023-01-01T00:00:00Z\n"   # 10 duplicate
        + "BTCUSDC,,,buy,1,100,0,,false,,,2023-01-01T00:00:00Z\n"    # 11 missing trade id
        + 'BTCUSDC,"j\nk",,buy,1,100,0,,false,,,2023-01-01T00:00:00Z\n'  # 12-13 quoted newline in an id
        + "BTCUSDC,m,,buy,1,abc,0,,false,,,2023-01-01T00:00:00Z\n"      # 14 bad price
        + "BTCUSDC,l,,buy,1,100,0,,false,,,2008-12-31T23:59:59Z\n"    # 15 too early
    )
    report = fills_import(path=write(tmp_path, "fills.csv", body))
    assert errors_of(report) == [
        (3, "unknown side 'short' in side (expected buy or sell)"),
        (4, "executed_at '2023-01-01T00:00:00' has no timezone (add Z or +00:00)"),
        (5, "is_maker must be true or false, got 'maybe'"),
        (6, "executed_at 'yesterday' is neither ISO-8601 nor epoch milliseconds"),
        (7, "expected 12 columns, got 6"),
        (8, "price 1e400 is too large (at most 18 digits before the point)"),
        (9, "non-positive arrival_price -5"),
        (10, "duplicate trade id a for BTCUSDC (first on line 2)"),
        (11, "missing trade_id"),
        (12, "trade_id contains control characters"),
        (14, "price 'abc' is not a number"),
        (15, "executed_at 2008-12-31T23:59:59Z is before 2009-01-01 (seconds instead of milliseconds?)"),
    ]
    assert report.rows_read == 13
    assert Fill.objects.count() == 0


def test_duplicates_in_a_one_line_json_file_are_caught_and_errors_name_the_element(tmp_path):
    rows = [[T0, "1", None, "buy", 1, 1, 1], [T0, "2", None, "buy", 1, 1, 1], [T0, "1", None, "buy", 1, 1, 1],
            [T0, "4", None, "buy", 1, 0, 1]]
    report = fills_import(path=write(tmp_path, "XRP_ETH-trades.json", json.dumps(rows)))
    assert errors_of(report) == [(1, "duplicate trade id 1 for XRPETH (first on line 1)"), (1, "non-positive amount 0")]
    assert report.error_lines()[1] == "line 1, element 4: non-positive amount 0"
    assert Fill.objects.count() == 0


def test_symbol_flag_must_match_the_rows(tmp_path):
    report = fills_import(path=write(tmp_path, "t.json", json.dumps([binance_trade()])), symbol="ETHBTC")
    assert errors_of(report) == [(1, "symbol 'BNBBTC' does not match --symbol ETHBTC")]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file (0 bytes)"),
    (b"[]", "the JSON array is empty: no fills"),
    (b" \n", "empty file (only blank lines)"),
    (CSV_HEADER.encode(), "no data rows (empty file or only a header)"),
    (b"symbol,trade,side\nA,1,buy\n", "line 1: the header must name the columns symbol,trade_id,order_id,side,qty,"
                                      "price,fee,fee_asset,is_maker,realized_pnl,arrival_price,executed_at "
                                      "(missing: trade_id, qty, price, executed_at; unknown: trade)"),
    (b'[{"foo": 1}]', "cannot tell the trade format from the first element (expected a Binance myTrades object, "
                      "a ccxt trade or a freqtrade [timestamp, id, type, side, price, amount, cost] list); "
                      "pass --format (binance-json, ccxt-json, freqtrade-json, csv)"),
    (b'[{"id": 1,', "invalid JSON at line 1 column 11: Expecting property name enclosed in double quotes"),
    (b"symbol,trade_id\xff\n", "not UTF-8 text: byte 0xff at byte offset 15 (line 1) cannot be decoded; "
                               "re-save the file as UTF-8"),
])
def test_file_level_errors(tmp_path, content, message):
    report = fills_import(path=write(tmp_path, "file.dat", content))
    assert report.rejected and report.file_error == message
    assert Fill.objects.count() == 0


def test_bad_arguments_raise_value_error(tmp_path):
    path = write(tmp_path, "t.json", "[]")
    with pytest.raises(ValueError, match="unknown fill format"):
        fills_import(path=path, fmt="xml")
    with pytest.raises(ValueError, match="malformed --symbol"):
        fills_import(path=path, symbol="$$$")


# --- idempotence and conflicts -----------------------------------------------------------------------------------


def test_reimport_changes_nothing(tmp_path):
    path = write(tmp_path, "t.json.gz", json.dumps([binance_trade(), binance_trade(id=2)]), gz=True)
    first = fills_import(path=path)
    before = fills()
    second = fills_import(path=path)
    assert (first.inserted, second.inserted, second.unchanged, second.errors) == (2, 0, 2, [])
    assert fills() == before


def test_different_values_for_a_stored_fill_are_an_error_and_change_nothing(tmp_path):
    fills_import(path=write(tmp_path, "a.json", json.dumps([binance_trade()])))
    before = fills()
    changed = [binance_trade(price="4.000002", isMaker=True), binance_trade(id=3)]
    report = fills_import(path=write(tmp_path, "b.json", json.dumps(changed)))
    assert errors_of(report) == [
        (1, "conflicts with the stored fill BNBBTC 28457: price 4.000001 stored, 4.000002 in file, "
            "is_maker false stored, true in file (stored fills are never overwritten)"),
    ]
    assert fills() == before


def test_skip_invalid_csv_writes_header_and_bad_lines_untouched(tmp_path):
    bad_line = 'BTCUSDC,"b,c",,buy,0,100,0,,false,,,2023-01-01T00:00:00Z\r\n'
    body = CSV_HEADER + "BTCUSDC,a,,buy,1,100,0,,false,,,2023-01-01T00:00:00Z\n" + bad_line
    report = fills_import(path=write(tmp_path, "fills.csv", body), skip_invalid=True)
    assert report.committed and report.inserted == 1
    assert errors_of(report) == [(3, "non-positive qty 0")]
    assert (tmp_path / "fills.rejected.csv").read_bytes() == (CSV_HEADER + bad_line).encode()
    assert "line 3: non-positive qty 0" in (tmp_path / "fills.rejected.summary.txt").read_text()


def test_skip_invalid_json(tmp_path):
    trades = [binance_trade(), binance_trade(id=2, isBuyer=None)]
    text = json.dumps(trades, indent=1)
    report = fills_import(path=write(tmp_path, "t.json", text), skip_invalid=True)
    assert report.inserted == 1 and errors_of(report) == [(17, "unknown side: isBuyer must be true or false, got None")]
    assert json.loads((tmp_path / "t.rejected.json").read_text()) == [trades[1]]


# --- the command -------------------------------------------------------------------------------------------------


def test_command_summary_and_rejection(tmp_path):
    good = write(tmp_path, "good.json", json.dumps([binance_trade()]))
    bad = write(tmp_path, "bad.json", json.dumps([binance_trade(id=9, qty="0")]))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 of 2 file\(s\) rejected, nothing imported from: bad.json"):
        call_command("import_fills", str(good), str(bad), stdout=out, stderr=err)
    assert "good.json (binance-json) -> BNBBTC: imported; 1 fills read, 1 inserted" in out.getvalue()
    assert "line 1, element 1: non-positive qty 0" in err.getvalue()
    assert "re-run with --skip-invalid" in err.getvalue()
    assert Fill.objects.count() == 1


def test_command_symbol_and_format_options(tmp_path):
    path = write(tmp_path, "trades.json", json.dumps([[T0, "1", None, "buy", 1, 1, 1]]))
    out = io.StringIO()
    call_command("import_fills", str(path), "--format", "freqtrade-json", "--symbol", "XRPETH", stdout=out)
    assert "trades.json (freqtrade-json) -> XRPETH: imported; 1 fills read, 1 inserted" in out.getvalue()


# --- real files --------------------------------------------------------------------------------------------------


def _check_real_trades(report):
    assert report.committed and report.errors == []
    assert report.rows_read == 12477 and report.symbol == "XRPETH"
    assert (report.first_us, report.last_us) == (1_570_752_011_620_000, 1_570_965_568_844_000)
    assert Fill.objects.filter(symbol__name="XRPETH").count() == 12477
    assert Fill.objects.filter(side="buy").count() == 6524
    assert Fill.objects.filter(side="sell").count() == 5953
    assert not Fill.objects.filter(is_maker=True).exists() and not Fill.objects.exclude(fee=0).exists()
    first = Fill.objects.get(trade_id="13519807")
    assert (first.side, first.price, first.qty, first.executed_at) == (
        "sell", Decimal("0.00141342"), Decimal("23"), utc_ms(1_570_752_011_620)
    )
    last = Fill.objects.get(trade_id="13532283")
    assert last.executed_at == utc_ms(1_570_965_568_844)


def test_real_ccxt_public_trades_file():
    report = fills_import(path=shared_data_file("fills/XRP_OLD-trades.json.gz"))
    assert report.format == "ccxt-json" and report.inserted == 12477
    _check_real_trades(report)


def test_real_freqtrade_trades_file_and_cross_format_idempotence():
    report = fills_import(path=shared_data_file("fills/XRP_ETH-trades.json.gz"))
    assert report.format == "freqtrade-json" and report.inserted == 12477
    _check_real_trades(report)
    # The same trades in ccxt form are recognised as already stored, value for value.
    again = fills_import(path=shared_data_file("fills/XRP_OLD-trades.json.gz"))
    assert (again.inserted, again.unchanged, again.errors) == (0, 12477, [])
