"""Tests for candle import: Binance kline CSV and freqtrade JSON, every bad-row rule, idempotence, real files.

Small files are written per test; the real ones come from ../shared/data (see shared_data_file).
"""
from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from sizing_app.domain import bars as bars_module
from sizing_app.domain import metrics, scoring
from sizing_app.models import SYMBOL_PATTERN, Candle, Symbol
from sizing_app.telemetry.importers import candle_parsers
from sizing_app.telemetry.importers import rows as import_rows
from sizing_app.telemetry.importers.candle_parsers import candle_rows, parse_candles
from sizing_app.telemetry.importers.candles import candles_import
from sizing_app.telemetry.rules import RowError
from tests.shared_data import shared_data_file

HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore\n")
T0 = 1_672_531_200_000  # 2023-01-01T00:00Z in ms
HOUR = 3_600_000
BTC_FILE = "market/BTCUSDT-1h-2023-01_2023-05.csv"


def kline(open_ms, open_="100", high="110", low="90", close="105", volume="12.5"):
    close_ms = open_ms + HOUR - 1 if open_ms < 10**14 else open_ms + HOUR * 1000 - 1
    return f"{open_ms},{open_},{high},{low},{close},{volume},{close_ms},1250.0,42,6.0,600.0,0\n"


def write(tmp_path: Path, name: str, content: str | bytes, *, gz: bool = False) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def import_file(path, symbol="BTCUSDT", interval="1h", **options):
    return candles_import(path=path, symbol=symbol, interval=interval, **options)


def stored(symbol="BTCUSDT", interval="1h"):
    return list(
        Candle.objects.filter(symbol__name=symbol, interval=interval)
        .order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume")
    )


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def errors_of(report):
    return [(error.line, error.reason) for error in report.errors]


# --- formats -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_binance_csv_plain_and_gzipped_with_and_without_header(tmp_path, header, gz):
    body = kline(T0, "16541.77", "16545.70", "16508.39", "16529.67", "4364.8357") + kline(T0 + HOUR)
    path = write(tmp_path, "BTCUSDT-1h.csv" + (".gz" if gz else ""), (HEADER if header else "") + body, gz=gz)

    report = import_file(path)

    assert report.committed and report.format == "binance-csv"
    assert (report.rows_read, report.inserted, report.unchanged, report.errors) == (2, 2, 0, [])
    assert stored() == [
        (utc_ms(T0), 16541.77, 16545.70, 16508.39, 16529.67, 4364.8357),
        (utc_ms(T0 + HOUR), 100.0, 110.0, 90.0, 105.0, 12.5),
    ]
    assert report.created_symbols == ["BTCUSDT"]
    assert (report.first_us, report.last_us) == (T0 * 1000, (T0 + HOUR) * 1000)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = write(tmp_path, "klines.csv", HEADER + kline(T0), gz=True)
    assert import_file(path).inserted == 1


def test_microsecond_open_times_are_detected_per_value(tmp_path):
    # Binance spot files switched to microseconds in 2025; a file may even mix both.
    path = write(tmp_path, "mixed.csv", kline(T0 * 1000) + kline(T0 + HOUR) + kline((T0 + 2 * HOUR) * 1000))
    report = import_file(path)
    assert report.errors == [] and report.inserted == 3
    assert [row[0] for row in stored()] == [utc_ms(T0), utc_ms(T0 + HOUR), utc_ms(T0 + 2 * HOUR)]


def test_an_open_time_off_the_interval_grid_is_refused_and_the_rest_imported(tmp_path):
    # 250 microseconds past the hour is no 1h bar: stored beside the real one it would poison the ATR.
    shifted = (T0 + 2 * HOUR) * 1000 + 250
    path = write(tmp_path, "shifted.csv", kline(T0) + kline(T0 + HOUR) + kline(shifted))
    report = import_file(path, skip_invalid=True)
    assert [(error.line, error.reason) for error in report.errors] == [(3, (
        "open_time 2023-01-01T02:00:00.000250Z is off the 1h grid (a 1h bar opens on whole multiples of 1h since "
        "1970-01-01 UTC): not a bar of this interval, not stored (is --interval right?)"))]
    assert [row[0] for row in stored()] == [utc_ms(T0), utc_ms(T0 + HOUR)]


def test_crlf_line_endings_and_utf8_bom(tmp_path):
    path = write(tmp_path, "windows.csv", ("\ufeff" + HEADER + kline(T0) + kline(T0 + HOUR)).replace("\n", "\r\n"))
    report = import_file(path)
    assert (report.inserted, report.errors) == (2, [])


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_freqtrade_json_plain_and_gzipped(tmp_path, gz):
    bars = [[T0, 0.0984, 0.0994766, 0.09828605, 0.0994766, 1820.54447418], [T0 + 300_000, 1, 1, 1, 1, 0.0]]
    path = write(tmp_path, "ETH_BTC-5m.json" + (".gz" if gz else ""), json.dumps(bars), gz=gz)

    report = import_file(path, symbol="ETHBTC", interval="5m")

    assert report.format == "freqtrade-json" and report.committed
    assert (report.inserted, report.zero_volume) == (2, 1)
    assert stored("ETHBTC", "5m") == [
        (utc_ms(T0), 0.0984, 0.0994766, 0.09828605, 0.0994766, 1820.54447418),
        (utc_ms(T0 + 300_000), 1.0, 1.0, 1.0, 1.0, 0.0),
    ]


def test_format_flag_overrides_detection(tmp_path):
    path = write(tmp_path, "bars.csv", HEADER + kline(T0))
    report = import_file(path, fmt="freqtrade-json")
    assert report.rejected
    assert report.file_error == "invalid JSON at line 1 column 1: expected a JSON array starting with '['"
    assert Candle.objects.count() == 0


def test_fast_and_row_by_row_parsing_agree_across_chunk_boundaries(tmp_path, monkeypatch):
    # Small chunks force many numpy blocks; a bad row sends its chunk through the per-row parser.
    monkeypatch.setattr(candle_parsers, "CHUNK_BYTES", 300)
    lines = [kline(T0 + index * HOUR, "100.1", "110.25", "90.5", f"{91 + index * 0.25}") for index in range(40)]
    lines[17] = kline(T0 + 17 * HOUR, "100", "95", "90", "99", "1")  # high below open
    path = write(tmp_path, "chunks.csv", HEADER + "".join(lines))

    fast = list(candle_rows(parse_candles(path, "binance-csv")))
    with open(path, encoding="utf-8") as handle:
        numbered = list(enumerate(handle, 1))[1:]
    slow = list(candle_parsers._parse_kline_lines(numbered, current_us=import_rows.now_us()))

    assert fast == slow
    assert [entry.line for entry in fast] == list(range(2, 42))
    assert [(error.line, error.reason) for error in fast if isinstance(error, RowError)] == [
        (19, "high 95.0 below max(open, close) 100.0"),
    ]


# --- validation rules --------------------------------------------------------------------------------------------


def test_every_kind_of_bad_row_is_listed_and_nothing_is_written(tmp_path):
    rows = [
        HEADER,
        kline(T0),                                                            # 2 ok
        kline(T0 + HOUR).replace(",0\n", "\n"),                               # 3 11 columns
        kline(T0 + 2 * HOUR, high="abc"),                                     # 4 not a number
        kline(T0 + 3 * HOUR, "100", "90", "95", "92"),                        # 5 high below low
        kline(T0 + 4 * HOUR, "100", "104", "90", "105"),                      # 6 high below close
        kline(T0 + 5 * HOUR, "100", "110", "101", "105"),                     # 7 low above open
        kline(T0 + 6 * HOUR, "0", "110", "0", "105"),                         # 8 non-positive prices
        kline(T0 + 7 * HOUR, volume="-1"),                                    # 9 negative volume
        kline(T0 + 8 * HOUR, close="nan"),                                    # 10 non-finite
        kline(1_672_531_200),                                                 # 11 seconds: 1970
        kline(4_102_444_800_000),                                             # 12 year 2100
        kline(T0),                                                            # 13 duplicate of line 2
        kline(T0 + 9 * HOUR).replace(f"{T0 + 9 * HOUR},", "1672563600000.5,", 1),  # 14 not an integer
        "\n",                                                                 # 15 blank: ignored
        kline(T0 + 10 * HOUR),                                                # 16 ok
    ]
    path = write(tmp_path, "bad.csv", "".join(rows))

    report = import_file(path)

    assert report.rejected and not report.file_error
    assert errors_of(report) == [
        (3, "expected 12 columns, got 11"),
        (4, "high 'abc' is not a number"),
        (5, "high 90.0 below low 95.0; high 90.0 below max(open, close) 100.0; "
            "low 95.0 above min(open, close) 92.0"),
        (6, "high 104.0 below max(open, close) 105.0"),
        (7, "low 101.0 above min(open, close) 100.0"),
        (8, "non-positive price: open 0.0; non-positive price: low 0.0"),
        (9, "negative volume -1.0"),
        (10, "non-finite close nan"),
        (11, "open_time 1970-01-20T08:35:31.200Z is before 2009-01-01 (seconds instead of milliseconds?)"),
        (12, "open_time 2100-01-01T00:00Z is more than a day in the future"),
        (13, "duplicate open_time 2023-01-01T00:00Z (first on line 2)"),
        (14, "open_time '1672563600000.5' is not an integer (epoch ms or us)"),
    ]
    assert report.rows_read == 14
    assert Candle.objects.count() == 0
    assert not Symbol.objects.filter(name="BTCUSDT").exists()


def test_infinite_values_in_freqtrade_json_are_rejected(tmp_path):
    path = write(tmp_path, "bad.json", "[[1672531200000, 1, Infinity, 1, 1, 1],\n [1672531260000, 1, 1, 1, 1, NaN],\n"
                                      " [1672531320000, 1, 1, 1],\n [1672531380000, true, 1, 1, 1, 1],\n"
                                      ' {"t": 1}]')
    report = import_file(path, interval="1m")
    assert errors_of(report) == [
        (1, "non-finite high inf"),
        (2, "non-finite volume nan"),
        (3, "expected 6 columns, got 4"),
        (4, "open True is not a number"),
        (5, "expected a list [timestamp, open, high, low, close, volume], got dict"),
    ]
    assert Candle.objects.count() == 0


def test_zero_volume_bars_are_valid_and_gaps_are_warnings(tmp_path):
    # Binance writes an empty hour as O=H=L=C with volume 0; a trading halt leaves hours out.
    rows = [kline(T0), kline(T0 + HOUR, "105", "105", "105", "105", "0"), kline(T0 + 4 * HOUR), kline(T0 + 6 * HOUR)]
    report = import_file(write(tmp_path, "gappy.csv", "".join(rows)))

    assert report.committed and report.inserted == 4
    assert report.zero_volume == 1
    assert [str(gap) for gap in report.gaps] == [
        "2 missing bars after 2023-01-01T01:00Z (next bar 2023-01-01T04:00Z)",
        "1 missing bar after 2023-01-01T04:00Z (next bar 2023-01-01T06:00Z)",
    ]
    assert report.missing_bars == 3
    assert "1 zero-volume bar, 2 gaps (3 missing bars)" in report.detail_lines()


def test_unsorted_files_import_and_still_catch_duplicates(tmp_path):
    rows = [kline(T0 + 2 * HOUR), kline(T0), kline(T0 + HOUR), kline(T0 + 2 * HOUR)]
    report = import_file(write(tmp_path, "shuffled.csv", "".join(rows)))
    assert errors_of(report) == [(4, "duplicate open_time 2023-01-01T02:00Z (first on line 1)")]
    rows.pop()
    report = import_file(write(tmp_path, "shuffled.csv", "".join(rows)))
    assert report.committed and report.inserted == 3 and report.out_of_order
    assert (report.first_us, report.last_us) == (T0 * 1000, (T0 + 2 * HOUR) * 1000)


def test_bars_closer_than_the_interval_reject_the_file(tmp_path):
    # Bars on the grid yet closer than the interval: another interval's data (2h bars read as 1h are not).
    path = write(tmp_path, "two.csv", kline(T0) + kline(T0 + HOUR) + kline(T0 + 2 * HOUR))
    report = import_file(path, interval="2h")
    assert report.file_error is None and [error.line for error in report.errors] == [2]  # 01:00 is off the 2h grid
    path = write(tmp_path, "one-minute.csv", kline(T0) + kline(T0 + 60_000) + kline(T0 + 120_000))
    report = import_file(path, interval="1h")
    assert [error.reason.split(" is off ")[0] for error in report.errors] == [
        "open_time 2023-01-01T00:01Z", "open_time 2023-01-01T00:02Z"]
    assert all("is --interval right?" in error.reason for error in report.errors)
    assert Candle.objects.count() == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file (0 bytes)"),
    (b"\n\n  \n", "empty file (only blank lines)"),
    (HEADER.encode(), "no data rows (empty file or only a header)"),
    (b"[]", "no data rows (empty file or only a header)"),
    (b"open_time,open,high\n" + kline(T0).encode(),
     "line 1: the header has 3 columns; a Binance kline file has 12 (" + HEADER.strip() + ")"),
    (b"#comment\n", "cannot tell the candle format from the first character '#'; "
                    "pass --format (binance-csv, freqtrade-json)"),
    (b"[[1672531200000, 1, 1, 1, 1, 1]", "invalid JSON at line 1 column 32: the JSON array is not closed "
                                         "(truncated file?)"),
])
def test_file_level_errors(tmp_path, content, message):
    report = import_file(write(tmp_path, "file.dat", content))
    assert report.rejected and report.file_error == message
    assert Candle.objects.count() == 0


def test_undecodable_bytes_name_the_byte_offset(tmp_path):
    content = (HEADER + kline(T0)).encode() + b"1672534800000,1\xe9,2,1,1,1,1,1,1,1,1,0\n"
    report = import_file(write(tmp_path, "latin1.csv", content))
    offset = len((HEADER + kline(T0)).encode()) + 15
    assert report.file_error == (
        f"not UTF-8 text: byte 0xe9 at byte offset {offset} (line 3) cannot be decoded; re-save the file as UTF-8"
    )
    assert Candle.objects.count() == 0


def test_undecodable_bytes_in_gzipped_json(tmp_path):
    report = import_file(write(tmp_path, "bars.json.gz", b'[[1672531200000, 1, 1, 1, 1, 1]] \xff', gz=True))
    assert report.file_error == ("not UTF-8 text: byte 0xff at byte offset 33 of the decompressed data (line 1) "
                                 "cannot be decoded; re-save the file as UTF-8")


def test_a_file_error_after_rows_were_written_rolls_everything_back(tmp_path, monkeypatch):
    # Small chunks: the first blocks are already sent to the database when the bad byte is read.
    monkeypatch.setattr(candle_parsers, "CHUNK_BYTES", 300)
    body = "".join(kline(T0 + index * HOUR) for index in range(30)).encode() + b"\xff\n"
    report = import_file(write(tmp_path, "late.csv", body))
    assert report.file_error.startswith("not UTF-8 text: byte 0xff at byte offset")
    assert report.inserted == 0 and Candle.objects.count() == 0
    assert import_file(write(tmp_path, "ok.csv", kline(T0))).inserted == 1  # the connection is still usable


def test_truncated_gzip_is_a_file_error(tmp_path):
    data = gzip.compress((HEADER + kline(T0) * 50).encode())
    report = import_file(write(tmp_path, "cut.csv.gz", data[: len(data) // 2]))
    assert report.file_error.startswith(f"{tmp_path / 'cut.csv.gz'}: corrupt or truncated gzip data")


def test_bad_arguments_raise_value_error(tmp_path):
    path = write(tmp_path, "bars.csv", kline(T0))
    with pytest.raises(ValueError, match="Malformed symbol"):
        import_file(path, symbol="BTC USDT")
    with pytest.raises(ValueError, match="unknown interval"):
        import_file(path, interval="1x")
    with pytest.raises(ValueError, match="unknown candle format"):
        import_file(path, fmt="xlsx")
    assert import_file(tmp_path / "missing.csv").file_error == f"{tmp_path / 'missing.csv'}: no such file"


def test_symbol_pattern_mirrors_the_model():
    assert import_rows.SYMBOL_PATTERN == SYMBOL_PATTERN


# --- idempotence and conflicts -----------------------------------------------------------------------------------


def test_reimport_changes_nothing(tmp_path):
    path = write(tmp_path, "bars.csv.gz", HEADER + kline(T0) + kline(T0 + HOUR), gz=True)
    first = import_file(path)
    before = stored()

    second = import_file(path)

    assert (first.inserted, first.unchanged) == (2, 0)
    assert second.committed and (second.inserted, second.unchanged, second.errors) == (0, 2, [])
    assert second.created_symbols == []
    assert stored() == before


def test_overlapping_file_adds_only_new_bars(tmp_path):
    import_file(write(tmp_path, "a.csv", kline(T0) + kline(T0 + HOUR)))
    report = import_file(write(tmp_path, "b.csv", kline(T0 + HOUR) + kline(T0 + 2 * HOUR)))
    assert (report.inserted, report.unchanged) == (1, 1)
    assert len(stored()) == 3


def test_different_values_for_a_stored_bar_are_an_error_and_change_nothing(tmp_path):
    import_file(write(tmp_path, "a.csv", kline(T0) + kline(T0 + HOUR)))
    before = stored()
    path = write(tmp_path, "b.csv", kline(T0) + kline(T0 + HOUR, close="106") + kline(T0 + 2 * HOUR))

    report = import_file(path)

    assert report.rejected
    assert errors_of(report) == [
        (2, "conflicts with the stored bar at 2023-01-01T01:00Z: close 105.0 stored, 106.0 in file "
            "(stored bars are never overwritten)"),
    ]
    assert stored() == before  # the new 02:00 bar was not written either


def test_skip_invalid_imports_good_rows_and_writes_rejects_untouched(tmp_path):
    import_file(write(tmp_path, "old.csv", kline(T0)))
    bad_high = kline(T0 + 2 * HOUR, "100", "99", "90", "95").replace("\n", "\r\n")
    conflicting = kline(T0, close="104")
    path = write(tmp_path, "new.csv.gz", HEADER + conflicting + kline(T0 + HOUR) + bad_high + "x,y\n"
                 + kline(T0 + 3 * HOUR), gz=True)
    reject_dir = tmp_path / "rejects"
    reject_dir.mkdir()

    report = import_file(path, skip_invalid=True, reject_dir=reject_dir)

    assert report.committed and (report.inserted, len(report.errors)) == (2, 3)
    assert [row[0] for row in stored()] == [utc_ms(T0), utc_ms(T0 + HOUR), utc_ms(T0 + 3 * HOUR)]
    assert stored()[0][4] == 105.0  # the stored bar kept its value
    reject_file = reject_dir / "new.rejected.csv"
    assert report.reject_path == str(reject_file)
    assert reject_file.read_bytes() == (HEADER + conflicting + bad_high + "x,y\n").encode()
    summary = (reject_dir / "new.rejected.summary.txt").read_text()
    assert "line 2: conflicts with the stored bar at 2023-01-01T00:00Z: close 105.0 stored, 104.0 in file" in summary
    assert "line 4: high 99.0 below max(open, close) 100.0" in summary
    assert "line 5: expected 12 columns, got 2" in summary


def test_skip_invalid_json_rejects_are_a_json_array_of_the_original_elements(tmp_path):
    text = ('[\n  [1672531200000, 1, 2, 0.5, 1.5, 3],\n  [1672531260000, 1, 0.5, 2, 1, 3],\n'
            '  [1672531320000,1,1,1,1,-2]\n]')
    path = write(tmp_path, "bars.json", text)
    report = import_file(path, interval="1m", skip_invalid=True)
    assert report.inserted == 1 and [error.line for error in report.errors] == [3, 4]
    rejected = (tmp_path / "bars.rejected.json").read_text()
    assert rejected == "[\n[1672531260000, 1, 0.5, 2, 1, 3],\n[1672531320000,1,1,1,1,-2]\n]\n"
    assert json.loads(rejected) == [[1672531260000, 1, 0.5, 2, 1, 3], [1672531320000, 1, 1, 1, 1, -2]]


def test_skip_invalid_needs_a_reject_directory_only_when_rows_are_rejected(tmp_path):
    nowhere = tmp_path / "nowhere"
    clean = import_file(write(tmp_path, "clean.csv", kline(T0)), skip_invalid=True, reject_dir=nowhere)
    assert clean.committed and clean.inserted == 1
    report = import_file(write(tmp_path, "bars.csv", kline(T0 + HOUR) + kline(T0 + 2 * HOUR, volume="-1")),
                         skip_invalid=True, reject_dir=nowhere)
    assert report.file_error == f"reject directory {nowhere} does not exist"
    assert len(stored()) == 1  # the good 01:00 bar was not kept without its reject file


# --- the command -------------------------------------------------------------------------------------------------


def test_command_prints_a_summary(tmp_path):
    path = write(tmp_path, "bars.csv", HEADER + kline(T0) + kline(T0 + 3 * HOUR))
    out = io.StringIO()
    call_command("import_candles", str(path), symbol="BTCUSDT", interval="1h", stdout=out)
    text = out.getvalue()
    assert ("bars.csv (binance-csv) -> BTCUSDT 1h: imported; 2 bars read, 2 inserted, 0 already present, "
            "0 rejected") in text
    assert "warning: gap: 2 missing bars after 2023-01-01T00:00Z (next bar 2023-01-01T03:00Z)" in text
    assert "created symbol BTCUSDT" in text
    assert "\r" not in text  # no progress line when stdout is not a terminal


def test_command_rejects_a_bad_file_lists_rows_and_says_what_to_do(tmp_path):
    good = write(tmp_path, "good.csv", kline(T0))
    bad = write(tmp_path, "bad.csv", kline(T0 + HOUR) + kline(T0 + 2 * HOUR, volume="-3"))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_candles", str(good), str(bad), "--symbol", "BTCUSDT", "--interval", "1h",
                     stdout=out, stderr=err)
    assert str(failure.value) == (
        "1 of 2 file(s) rejected, nothing imported from: bad.csv. "
        "Fix the rows listed above or re-run with --skip-invalid."
    )
    assert "line 2: negative volume -3.0" in err.getvalue()
    assert "Fix the rows above or re-run with --skip-invalid to import the 1 good row(s)" in err.getvalue()
    assert [row[0] for row in stored()] == [utc_ms(T0)]  # the good file stays imported


def test_command_skip_invalid_succeeds(tmp_path):
    bad = write(tmp_path, "bad.csv", kline(T0) + kline(T0 + HOUR, volume="-3"))
    err = io.StringIO()
    call_command("import_candles", str(bad), "--symbol", "BTCUSDT", "--interval", "1h", "--skip-invalid",
                 stdout=io.StringIO(), stderr=err)
    assert "line 2: negative volume -3.0" in err.getvalue()
    assert (tmp_path / "bad.rejected.csv").read_text() == kline(T0 + HOUR, volume="-3")
    assert len(stored()) == 1


def test_command_turns_bad_arguments_into_command_errors(tmp_path):
    with pytest.raises(CommandError, match="unknown interval"):
        call_command("import_candles", str(write(tmp_path, "a.csv", kline(T0))), symbol="BTCUSDT", interval="2y")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("header", [HEADER, ""], ids=["with-header", "data.binance.vision-headerless"])
def test_command_draws_a_progress_line_on_a_terminal(tmp_path, header):
    path = write(tmp_path, "bars.csv", header + kline(T0) + kline(T0 + HOUR))
    out = _Terminal()
    call_command("import_candles", str(path), symbol="BTCUSDT", interval="1h", stdout=out)
    drawn = out.getvalue().replace(str(tmp_path) + "/", "")
    assert "\rbars.csv [" + "#" * 30 + "] 2/2 rows (100%, " in drawn
    assert drawn.count("2/2 rows") == 1  # drawn once, however many times the importer says it is done
    assert drawn.index("2/2 rows") < drawn.index("\n")  # the finished line ends before the summary


# --- real files --------------------------------------------------------------------------------------------------


def _file_series(relative: str) -> dict[str, np.ndarray]:
    """The file read the way tests/domain/test_metrics.py reads it (numpy, not the importer)."""
    path = shared_data_file(relative)
    if path.suffix == ".csv":
        rows = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(6))
    else:
        with path.open() as handle:
            rows = np.array(json.load(handle), dtype=np.float64)
    return {"time_ms": rows[:, 0].astype(np.int64), "open": rows[:, 1], "high": rows[:, 2], "low": rows[:, 3],
            "close": rows[:, 4], "volume": rows[:, 5]}


def _db_series(symbol: str, interval: str) -> dict[str, np.ndarray]:
    values = list(Candle.objects.filter(symbol__name=symbol, interval=interval).order_by("open_time")
                  .values_list("open_time", "open", "high", "low", "close", "volume"))
    columns = list(zip(*values))
    return {
        "time_ms": np.array([int(moment.timestamp() * 1000) for moment in columns[0]], dtype=np.int64),
        **{name: np.array(columns[index], dtype=np.float64)
           for index, name in enumerate(("open", "high", "low", "close", "volume"), start=1)},
    }


def test_real_binance_btcusdt_hourly_file():
    path = shared_data_file(BTC_FILE)
    report = import_file(path)

    assert report.committed and report.format == "binance-csv"
    assert (report.rows_read, report.inserted, report.errors) == (3623, 3623, [])
    assert (report.first_us, report.last_us) == (1_672_531_200_000_000, 1_685_574_000_000_000)
    assert [str(gap) for gap in report.gaps] == [
        "1 missing bar after 2023-03-24T12:00Z (next bar 2023-03-24T14:00Z)"
    ]
    assert report.zero_volume == 1
    halt = Candle.objects.get(
        symbol__name="BTCUSDT", interval="1h", open_time=datetime(2023, 3, 24, 12, tzinfo=UTC)
    )
    assert (halt.open, halt.high, halt.low, halt.close, halt.volume) == (28080.0, 28080.0, 28080.0, 28080.0, 0.0)
    first = Candle.objects.filter(symbol__name="BTCUSDT").order_by("open_time").first()
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        16541.77, 16545.70, 16508.39, 16529.67, 4364.8357
    )
    last = Candle.objects.filter(symbol__name="BTCUSDT").order_by("open_time").last()
    assert (last.open_time, last.close) == (datetime(2023, 5, 31, 23, tzinfo=UTC), 27210.35)

    again = import_file(path)
    assert (again.inserted, again.unchanged) == (0, 3623)


@pytest.mark.parametrize(("relative", "symbol", "interval", "count", "first_ms", "last_ms", "zero_volume"), [
    ("market/XRP_ETH-1m.json", "XRPETH", "1m", 3560, 1_570_752_000_000, 1_570_965_540_000, 1091),
    ("market/ETH_BTC-5m.json", "ETHBTC", "5m", 5760, 1_515_560_100_000, 1_517_287_800_000, 0),
])
def test_real_freqtrade_files(relative, symbol, interval, count, first_ms, last_ms, zero_volume):
    report = import_file(shared_data_file(relative), symbol=symbol, interval=interval)
    assert report.committed and report.format == "freqtrade-json"
    assert (report.inserted, report.gaps, report.zero_volume) == (count, [], zero_volume)
    assert (report.first_us, report.last_us) == (first_ms * 1000, last_ms * 1000)
    assert Candle.objects.filter(symbol__name=symbol, interval=interval).count() == count
    series = _db_series(symbol, interval)
    expected = _file_series(relative)
    for name in ("time_ms", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(series[name], expected[name])


def test_real_btc_metrics_from_the_database_equal_metrics_from_the_file():
    import_file(shared_data_file(BTC_FILE))
    imported, direct = _db_series("BTCUSDT", "1h"), _file_series(BTC_FILE)

    np.testing.assert_array_equal(imported["time_ms"], direct["time_ms"])
    np.testing.assert_array_equal(
        metrics.atr_pct(imported["high"], imported["low"], imported["close"]),
        metrics.atr_pct(direct["high"], direct["low"], direct["close"]),
    )
    sharpe = metrics.daily_sharpe(imported["time_ms"], imported["close"])
    assert sharpe is not None and sharpe == metrics.daily_sharpe(direct["time_ms"], direct["close"])


@pytest.mark.parametrize("as_of", [
    datetime(2023, 3, 25, tzinfo=UTC),  # right after the trading halt
    datetime(2023, 6, 1, tzinfo=UTC),   # after the last bar
])
def test_real_btc_import_then_recompute_snapshot_matches_the_file(as_of):
    """Recomputing on imported bars gives the ATR% and market Sharpe the pure metrics give on the file."""
    from sizing_app.conf import sizing_settings
    from sizing_app.models import SizingSnapshot
    from sizing_app.recompute.service import recompute_run

    import_file(shared_data_file(BTC_FILE))
    config = sizing_settings()
    assert config.candle_interval == "1h"
    recompute_run(symbol_names=["BTCUSDT"], as_of=as_of)
    snapshot = SizingSnapshot.objects.get(symbol__name="BTCUSDT", as_of=as_of)

    bars = _file_series(BTC_FILE)
    as_of_ms = int(as_of.timestamp() * 1000)
    window = (bars["time_ms"] >= as_of_ms - config.lookback_days * 86_400_000) & (bars["time_ms"] <= as_of_ms - HOUR)
    expected = scoring.compute_metrics(scoring.SymbolInputs(
        symbol="BTCUSDT", as_of_ms=as_of_ms, lookback_days=config.lookback_days, interval="1h",
        candle_open_ms=bars["time_ms"][window], high=bars["high"][window], low=bars["low"][window],
        close=bars["close"][window],
    ))
    # The window is 720 hours; an hour the exchange halted (no bar in the file) is a flat bar at the
    # previous close, so the ATR is the file's own bars' with those hours in between.
    hourly = bars_module.hourly_bars(
        bars_module.Bars(bars["time_ms"][window], bars["close"][window], bars["high"][window], bars["low"][window],
                         bars["close"][window], np.full(int(window.sum()), np.nan)),
        start_ms=as_of_ms - config.lookback_days * 86_400_000, end_ms=as_of_ms,
    )
    assert snapshot.candle_count == len(hourly) == 720
    assert snapshot.atr_pct is not None and snapshot.atr_pct == expected["atr_pct"]
    assert snapshot.market_sharpe_7d is not None and snapshot.market_sharpe_7d == expected["market_sharpe_7d"]
    atr_series = metrics.atr_pct(hourly.high, hourly.low, hourly.close)
    assert snapshot.atr_pct == atr_series[-1]
