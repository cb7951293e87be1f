"""The outage journal: with SIZING_JOURNAL_PATH set, a database outage journals decisions to disk
and the next decision (or `replay_journal`) puts them on the ledger, in order, chains intact.

The outage is simulated in-process by making the ledger INSERT raise OperationalError, as a dead
connection does; tests/faults/test_journal_outage.py does it for real, with kill -9.
These tests commit (the journal is refused inside a caller's transaction), hence transaction=True.
"""
from __future__ import annotations

import io
import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, transaction

from sizing_app.ledger import journal, replay, writer
from sizing_app.models import SizingDecision
from sizing_app.signal_generator import size_decide, size_decide_batch, size_for
from sizing_app.sizing.errors import SizingInsideTransaction, SizingUnavailable
from tests.factories import make_snapshot, make_symbol

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_append_only_tables")]


@pytest.fixture
def journal_file(settings, tmp_path):
    path = tmp_path / "journal" / "ledger.jsonl"
    settings.SIZING_JOURNAL_PATH = str(path)
    return path


@pytest.fixture
def market(db):
    for name in ("BTCUSDC", "ETHUSDC"):
        make_snapshot(make_symbol(name), size_factor=1.5)


class Outage:
    """The ledger database is unreachable while `down` is true."""

    def __init__(self, monkeypatch):
        self.down = False
        real_insert = writer.insert_rows

        def insert(db, chained, texts):
            if self.down:
                raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
            return real_insert(db, chained, texts)

        monkeypatch.setattr(writer, "insert_rows", insert)


@pytest.fixture
def outage(monkeypatch):
    return Outage(monkeypatch)


def verify_ledger() -> str:
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # raises CommandError (exit 1) on any problem
    return out.getvalue()


def journal_lines(path) -> list[list[dict]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_outage_journals_the_decision_durably_and_hands_out_the_size(market, journal_file, outage):
    expected = size_for("BTCUSDC", 100.0, order_ref="before")
    outage.down = True
    decision = size_decide("BTCUSDC", 100.0, order_ref="during", caller="engine-1")
    assert decision.final_size == expected  # same stack, same persisted factor
    assert decision.pk is None and decision.seq is None and decision.journal_ref
    [[entry]] = journal_lines(journal_file)
    assert entry["order_ref"] == "during" and entry["journal_ref"] == decision.journal_ref
    assert entry["final_size"] == expected and entry["caller"] == "engine-1"
    assert not SizingDecision.objects.filter(order_ref="during").exists()


def test_next_decision_after_the_outage_replays_the_journal_first_and_chains_stay_valid(
        market, journal_file, outage):
    size_for("BTCUSDC", 100.0, order_ref="o1")
    outage.down = True
    journaled = [size_decide("BTCUSDC", 10.0 * n, order_ref=f"j{n}") for n in range(1, 4)]
    size_decide_batch([("ETHUSDC", 5.0, "jb1"), ("BTCUSDC", 6.0, "jb2")])
    outage.down = False
    after = size_decide("BTCUSDC", 100.0, order_ref="o2")

    assert journal_file.read_bytes() == b""  # replayed and emptied
    chain = list(SizingDecision.objects.filter(symbol="BTCUSDC").order_by("seq"))
    assert [row.order_ref for row in chain] == ["o1", "j1", "j2", "j3", "jb2", "o2"]
    assert [row.seq for row in chain] == [1, 2, 3, 4, 5, 6] and chain[-1].pk == after.pk
    assert [row.journal_ref for row in chain[1:4]] == [decision.journal_ref for decision in journaled]
    # The journaled rows keep what was decided and when, not when they reached the ledger.
    assert [row.created_at for row in chain[1:4]] == [decision.created_at for decision in journaled]
    assert [row.final_size for row in chain[1:4]] == [decision.final_size for decision in journaled]
    assert SizingDecision.objects.get(order_ref="jb1").symbol == "ETHUSDC"
    verify_ledger()


def test_a_replay_interrupted_after_its_commit_records_nothing_twice(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    size_for("ETHUSDC", 2.0, order_ref="j2")
    outage.down = False
    saved = journal_file.read_bytes()
    assert replay.journal_replay_pending() == 2
    journal_file.write_bytes(saved)  # as if the process died before emptying the file
    assert replay.journal_replay_pending() == 0
    assert SizingDecision.objects.filter(order_ref__in=["j1", "j2"]).count() == 2
    assert journal_file.read_bytes() == b""
    verify_ledger()


def test_replay_that_meets_the_outage_again_leaves_the_journal_untouched(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    saved = journal_file.read_bytes()
    with pytest.raises(OperationalError):
        replay.journal_replay_pending()
    assert journal_file.read_bytes() == saved
    size_for("BTCUSDC", 2.0, order_ref="j2")  # still down: appended after the first
    assert [entry["order_ref"] for line in journal_lines(journal_file) for entry in line] == ["j1", "j2"]


def test_a_torn_last_entry_was_never_acknowledged_and_is_dropped(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    with journal_file.open("ab") as handle:
        handle.write(b'[{"symbol":"BTCUSDC","order_ref":"torn"')  # the writer died inside write()
    outage.down = False
    size_for("BTCUSDC", 1.0, order_ref="o1")
    assert list(SizingDecision.objects.order_by("seq").values_list("order_ref", flat=True)) == ["j1", "o1"]


def test_an_unreadable_entry_stops_sizing_with_a_clear_error_and_keeps_the_file(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    with journal_file.open("ab") as handle:
        handle.write(b"not json\n")
    outage.down = False
    assert_replay_refused(journal_file, "line 2 cannot be read")


def assert_replay_refused(journal_file, message):
    """Sizing and replay_journal both stop with `message`; the journal and the ledger are untouched."""
    saved = journal_file.read_bytes()
    with pytest.raises(SizingUnavailable, match=message):
        size_for("BTCUSDC", 1.0, order_ref="o1")
    with pytest.raises(CommandError, match=message):
        call_command("replay_journal", stdout=io.StringIO())
    assert journal_file.read_bytes() == saved
    assert SizingDecision.objects.count() == 0


@pytest.mark.parametrize("edit", [
    lambda entry: {**entry, "created_at": "2026-03-01T10:00:00+00:00"},  # a time typed by hand, not journaled
    lambda entry: {key: value for key, value in entry.items() if key != "final_size"},
    lambda entry: {**entry, "journal_ref": ""},
], ids=["time-as-text", "field-missing", "no-journal-ref"])
def test_a_hand_edited_entry_is_refused_whole_and_the_file_kept(market, journal_file, outage, edit):
    # A readable line that is not a decision as journaled: replaying it could put a row on the
    # ledger that fails verification, so nothing is replayed until someone looks.
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    size_for("BTCUSDC", 2.0, order_ref="j2")
    first, second = journal_file.read_bytes().splitlines()
    edited = [edit(entry) for entry in json.loads(second)]
    journal_file.write_bytes(first + b"\n" + json.dumps(edited).encode() + b"\n")
    outage.down = False
    assert_replay_refused(journal_file, "is not a decision as journaled")


@pytest.mark.parametrize("spelling", ["str", "trailing slash", "Path"])
def test_the_journal_path_is_found_however_the_setting_spells_it(market, settings, tmp_path, outage, spelling):
    """journal_pending looks where journal_path() writes: '/x/ledger.jsonl/' is the file /x/ledger.jsonl."""
    path = tmp_path / "ledger.jsonl"
    settings.SIZING_JOURNAL_PATH = {"str": str(path), "trailing slash": f"{path}/", "Path": path}[spelling]
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="during")
    assert len(journal_lines(path)) == 1
    outage.down = False
    size_for("BTCUSDC", 1.0, order_ref="after")  # replays the journal first
    assert list(SizingDecision.objects.order_by("symbol", "seq").values_list("order_ref", flat=True)) == [
        "during", "after"]
    assert journal_lines(path) == []


def test_the_journal_directory_chain_is_made_durable_once_per_process(settings, tmp_path, monkeypatch):
    """Every directory holding the journal's entries is fsynced before a size is handed out.

    Whoever created them (another process may have, and died before its fsync), once per process.
    """
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(journal.os, "fsync", recording_fsync)
    monkeypatch.setattr(journal, "_durable_files", set())
    path = tmp_path / "a" / "b" / "ledger.jsonl"
    (tmp_path / "a").mkdir()  # made by someone else, perhaps never synced
    with journal._locked(path):
        pass
    chain = [tmp_path / "a" / "b", *(tmp_path / "a" / "b").parents]
    assert synced == [str(directory) for directory in chain]
    synced.clear()
    with journal._locked(path):  # already durable in this process
        pass
    assert synced == []
    path.rename(tmp_path / "set-aside.jsonl")  # an operator moves the journal aside...
    with journal._locked(path):  # ...and the next outage starts a new file: its entry is synced too
        pass
    assert synced == [str(directory) for directory in chain]


def test_a_journal_that_cannot_be_written_fails_closed(market, settings, tmp_path, outage):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.SIZING_JOURNAL_PATH = str(blocker / "ledger.jsonl")  # its parent is a file: unwritable
    outage.down = True
    with pytest.raises(SizingUnavailable, match="outage journal failed"):
        size_for("BTCUSDC", 1.0)
    assert SizingDecision.objects.count() == 0


def test_without_a_journal_the_outage_fails_closed(market, settings, outage):
    settings.SIZING_JOURNAL_PATH = ""
    outage.down = True
    with pytest.raises(SizingUnavailable, match="cannot be reached"):
        size_for("BTCUSDC", 1.0)


def test_inside_a_callers_transaction_the_outage_is_not_journaled(market, journal_file, outage):
    outage.down = True
    # Refused before anything: inside the caller's transaction no size is handed out at all.
    with pytest.raises(SizingInsideTransaction), transaction.atomic():
        size_for("BTCUSDC", 1.0)
    assert not journal_file.exists() or journal_file.read_bytes() == b""


def test_journal_false_fails_closed_even_with_a_journal(market, journal_file, outage):
    outage.down = True
    with pytest.raises(SizingUnavailable):
        size_decide("BTCUSDC", 1.0, journal=False)
    assert journal_lines(journal_file) == []


def test_replay_journal_command(market, settings, journal_file, outage):
    outage.down = True
    size_decide_batch([("BTCUSDC", 1.0, "j1"), ("ETHUSDC", 2.0, "j2")])
    with pytest.raises(CommandError, match="still unreachable"):
        call_command("replay_journal", stdout=io.StringIO())
    outage.down = False
    out = io.StringIO()
    call_command("replay_journal", stdout=out)
    assert "2 journaled decision(s) added" in out.getvalue()
    assert SizingDecision.objects.filter(journal_ref__gt="").count() == 2
    settings.SIZING_JOURNAL_PATH = ""
    with pytest.raises(CommandError, match="SIZING_JOURNAL_PATH"):
        call_command("replay_journal", stdout=io.StringIO())


def test_journaled_rows_hash_their_journal_ref_and_old_rows_keep_their_hash(market, journal_file, outage):
    from sizing_app.ledger.chain import HASHED_FIELDS, row_hash

    size_for("BTCUSDC", 1.0, order_ref="plain")
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="journaled")
    outage.down = False
    replay.journal_replay_pending()
    plain, replayed = SizingDecision.objects.order_by("seq").values(*HASHED_FIELDS, "row_hash")
    assert plain["journal_ref"] == "" and row_hash(plain) == plain["row_hash"]
    assert row_hash(replayed) == replayed["row_hash"]
    assert row_hash({**replayed, "journal_ref": "forged"}) != replayed["row_hash"]


def test_inside_a_callers_transaction_the_journal_is_not_replayed(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    saved = journal_file.read_bytes()
    outage.down = False
    with pytest.raises(SizingInsideTransaction), transaction.atomic():
        size_for("BTCUSDC", 1.0, order_ref="inside")
    assert journal_file.read_bytes() == saved  # still there for the next autocommit call
    size_for("BTCUSDC", 1.0, order_ref="after")
    assert list(SizingDecision.objects.order_by("seq").values_list("order_ref", flat=True)) == ["j1", "after"]


def test_an_append_after_a_torn_entry_is_not_glued_to_it(market, journal_file, outage):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    with journal_file.open("ab") as handle:
        handle.write(b'[{"symbol":"BTCUSDC","order_ref":"torn"')  # a writer killed inside write()
    size_for("BTCUSDC", 2.0, order_ref="j2")
    assert [entry["order_ref"] for line in journal_lines(journal_file) for entry in line] == ["j1", "j2"]
    outage.down = False
    size_for("BTCUSDC", 3.0, order_ref="o1")
    assert list(SizingDecision.objects.order_by("seq").values_list("order_ref", flat=True)) == ["j1", "j2", "o1"]


def test_a_journal_write_that_fails_takes_its_partial_line_back(market, journal_file, outage, monkeypatch):
    outage.down = True
    size_for("BTCUSDC", 1.0, order_ref="j1")
    saved = journal_file.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "fsync", disk_full)
    with pytest.raises(SizingUnavailable, match="outage journal failed"):
        size_for("BTCUSDC", 2.0, order_ref="refused")
    monkeypatch.undo()
    assert journal_file.read_bytes() == saved


def test_a_commit_whose_acknowledgement_was_lost_is_not_recorded_twice(market, journal_file, monkeypatch):
    real_insert = writer.insert_rows

    def commit_then_lose_the_connection(db, chained, texts):
        real_insert(db, chained, texts)  # autocommit: the row is on the ledger...
        raise OperationalError("server closed the connection unexpectedly")  # ...but the caller never hears

    monkeypatch.setattr(writer, "insert_rows", commit_then_lose_the_connection)
    size = size_for("BTCUSDC", 100.0, order_ref="unknown-outcome")  # journaled: the outcome was unknown
    monkeypatch.undo()
    size_for("BTCUSDC", 100.0, order_ref="next")
    rows = list(SizingDecision.objects.order_by("seq").values_list("order_ref", "final_size", "journal_ref"))
    assert [(ref, final) for ref, final, _ in rows] == [("unknown-outcome", size), ("next", size)]
    assert rows[0][2] == ""  # the row committed before the outage, not a replayed copy
    assert journal_file.read_bytes() == b""
    verify_ledger()
