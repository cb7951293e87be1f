"""The ledger's guards and its audit: refusals in the ORM and in the database, and verify_ledger.

Runs on SQLite and on PostgreSQL alike. Tampering is done as an attacker would, with raw SQL
after lifting the database guard; every test's transaction (DDL included) is rolled back.
"""
from __future__ import annotations

import io
import json
from contextlib import contextmanager

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import PROTECT, ProtectedError

from sizing_app.ledger import chain as ledger
from sizing_app.models import AppendOnlyError, SizingDecision, SizingSnapshot, Symbol
from sizing_app.signal_generator import size_decide
from tests.append_only import guards, schema_editor
from tests.factories import make_snapshot, make_symbol

DECISIONS = SizingDecision._meta.db_table
SNAPSHOTS = SizingSnapshot._meta.db_table
POSTGRES = connection.vendor == "postgresql"


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def execute(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


@contextmanager
def guards_lifted():
    """What an attacker with DDL rights does first: PostgreSQL disables the triggers, SQLite drops them."""
    if POSTGRES:
        # ALTER TABLE refuses to run while this transaction has deferred foreign-key checks pending.
        execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in (DECISIONS, SNAPSHOTS):
            execute(f"ALTER TABLE {q(table)} DISABLE TRIGGER USER")
    else:
        guards.remove_guards(apps, schema_editor())
    yield
    if POSTGRES:
        execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in (DECISIONS, SNAPSHOTS):
            execute(f"ALTER TABLE {q(table)} ENABLE TRIGGER USER")
        execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        guards.install_guards(apps, schema_editor())


def installed_triggers(table: str) -> set[str]:
    if POSTGRES:
        rows = execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
                       "AND tgenabled <> 'D'", [table])
    else:
        rows = execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
    return {name for (name,) in rows}


def expected_triggers(table: str) -> set[str]:
    return {guards._pg_trigger(table)} if POSTGRES else set(guards._sqlite_triggers(table).values())


# --- the database guard is there -------------------------------------------------------------

@pytest.mark.parametrize("table", [DECISIONS, SNAPSHOTS])
def test_migration_installed_the_guard_triggers(table):
    # A later migration that makes SQLite rebuild the table would drop them silently: this fails then.
    assert installed_triggers(table) == expected_triggers(table)


def test_migration_reverses_and_reapplies():
    guards.remove_guards(apps, schema_editor())
    assert installed_triggers(DECISIONS) == installed_triggers(SNAPSHOTS) == set()
    guards.install_guards(apps, schema_editor())
    assert installed_triggers(DECISIONS) == expected_triggers(DECISIONS)
    assert installed_triggers(SNAPSHOTS) == expected_triggers(SNAPSHOTS)


# --- refusals ----------------------------------------------------------------------------------

@pytest.fixture
def decision():
    Symbol.objects.get_or_create(name="BTCUSDC")
    return size_decide("BTCUSDC", 100.0, order_ref="o-1")


@pytest.fixture
def snapshot():
    return make_snapshot(Symbol.objects.get_or_create(name="BTCUSDC")[0], size_factor=1.5)


@pytest.fixture(params=["decision", "snapshot"])
def row(request):
    return request.getfixturevalue(request.param)


def _value_field(instance) -> str:
    return "final_size" if isinstance(instance, SizingDecision) else "size_factor"


def test_orm_refuses_save_of_an_existing_row(row):
    row = type(row).objects.get(pk=row.pk)
    setattr(row, _value_field(row), 9.0)
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.save(update_fields=[_value_field(row)])


def test_orm_refuses_instance_delete(row):
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert type(row).objects.filter(pk=row.pk).exists()


def test_orm_refuses_queryset_update_delete_and_bulk_update(row):
    model, field = type(row), _value_field(row)
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=row.pk).update(**{field: 9.0})
    with pytest.raises(AppendOnlyError):
        model.objects.all().delete()
    setattr(row, field, 9.0)
    with pytest.raises(AppendOnlyError):
        model.objects.bulk_update([row], [field])
    assert model.objects.filter(pk=row.pk).values_list(field, flat=True).get() != 9.0


def test_a_new_instance_cannot_overwrite_an_existing_row(row):
    model = type(row)
    clone = model.objects.get(pk=row.pk)
    clone._state.adding = True  # what a fresh Model(pk=existing_pk, ...) looks like: save() inserts
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


def test_the_base_manager_is_stopped_by_the_database(row):
    # Django uses _base_manager (a plain QuerySet) for related lookups and deletion collection; it
    # skips AppendOnlyQuerySet, so only the database guard stands behind it.
    model, field = type(row), _value_field(row)
    for action in (lambda: model._base_manager.filter(pk=row.pk).update(**{field: 9.0}),
                   lambda: model._base_manager.filter(pk=row.pk).delete()):
        with pytest.raises((AppendOnlyError, DatabaseError)), transaction.atomic():
            action()
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
def test_database_refuses_raw_update_and_delete(row, statement):
    table, field = type(row)._meta.db_table, _value_field(row)
    sql = (f"UPDATE {q(table)} SET {q(field)} = 9.0 WHERE id = %s" if statement == "UPDATE"
           else f"DELETE FROM {q(table)} WHERE id = %s")
    with pytest.raises(IntegrityError, match=f"append-only: {statement} refused"), transaction.atomic():
        execute(sql, [row.pk])
    assert execute(f"SELECT {q(field)} FROM {q(table)} WHERE id = %s", [row.pk]) == [(getattr(row, field),)]


def test_database_refuses_an_upsert_that_would_overwrite(decision):
    columns = [field.column for field in SizingDecision._meta.concrete_fields if not field.primary_key]
    column_list = ", ".join(q(column) for column in columns)
    with pytest.raises(IntegrityError, match="UPDATE refused"), transaction.atomic():
        execute(f"INSERT INTO {q(DECISIONS)} ({column_list}) SELECT {column_list} FROM {q(DECISIONS)} "
                f"WHERE id = %s ON CONFLICT ({q('symbol')}, {q('seq')}) DO UPDATE SET {q('final_size')} = 0",
                [decision.pk])


@pytest.mark.skipif(POSTGRES, reason="INSERT OR REPLACE is SQLite syntax")
def test_sqlite_insert_or_replace_cannot_delete_a_row(decision):
    # REPLACE deletes the conflicting row without firing delete triggers unless the connection
    # sets recursive_triggers: settings' init_command must carry PRAGMA recursive_triggers=ON.
    if execute("PRAGMA recursive_triggers") != [(1,)]:
        pytest.xfail("the SQLite connection does not set PRAGMA recursive_triggers=ON (see the report)")
    with pytest.raises(IntegrityError, match="DELETE refused"), transaction.atomic():
        execute(f"INSERT OR REPLACE INTO {q(DECISIONS)} SELECT * FROM {q(DECISIONS)} WHERE id = %s", [decision.pk])


def test_deleting_a_symbol_cannot_take_its_snapshots_or_decisions(snapshot, decision):
    symbol = snapshot.symbol
    with pytest.raises(ProtectedError):
        symbol.delete()
    # No database-level cascade either: the raw delete breaks a foreign key, which the database refuses.
    with pytest.raises(IntegrityError), transaction.atomic():
        execute(f"DELETE FROM {q(Symbol._meta.db_table)} WHERE id = %s", [symbol.pk])
        connection.check_constraints()
    assert SizingSnapshot.objects.filter(pk=snapshot.pk).exists()
    assert SizingDecision.objects.filter(pk=decision.pk).exists()


def _database_foreign_keys(model) -> list:
    if POSTGRES:
        return execute("SELECT confdeltype, confupdtype FROM pg_constraint WHERE contype = 'f' "
                       "AND conrelid = %s::regclass", [model._meta.db_table])
    return [(key[5], key[6]) for key in execute(f"PRAGMA foreign_key_list({q(model._meta.db_table)})")]


def test_foreign_keys_of_append_only_tables_protect_and_never_cascade():
    for model in (SizingDecision, SizingSnapshot):
        for field in model._meta.concrete_fields:
            if field.is_relation:
                assert field.remote_field.on_delete is PROTECT, field
    actions = _database_foreign_keys(SizingSnapshot)
    assert actions and all(action in ("a", "r", "NO ACTION", "RESTRICT") for pair in actions for action in pair)
    # The ledger's references are checked by the ORM only (a database check would lock the
    # snapshot row on every size handed out), so nothing in the database can cascade into it.
    assert _database_foreign_keys(SizingDecision) == []


# --- verify_ledger ------------------------------------------------------------------------------

@pytest.fixture
def chains():
    """BTCUSDC with 5 decisions and ETHUSDC with 3, interleaved; {symbol: [(id, seq), ...]}."""
    make_symbol("BTCUSDC")
    make_symbol("ETHUSDC")
    for index, name in enumerate(["BTCUSDC", "ETHUSDC", "BTCUSDC", "BTCUSDC", "ETHUSDC", "BTCUSDC", "ETHUSDC",
                                  "BTCUSDC"]):
        size_decide(name, 100.0 + index, order_ref=f"o-{index}")
    return {name: list(SizingDecision.objects.filter(symbol=name).order_by("seq").values_list("id", "seq"))
            for name in ("BTCUSDC", "ETHUSDC")}


def btc_id(chains, seq: int) -> int:
    return dict((s, i) for i, s in chains["BTCUSDC"])[seq]


def verify(*args) -> tuple[list[str], CommandError | None]:
    out = io.StringIO()
    try:
        call_command("verify_ledger", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue().splitlines(), exc
    return out.getvalue().splitlines(), None


def assert_problems(lines_and_error, expected: list[str], *, rows: int = 8, symbols: int = 2):
    lines, error = lines_and_error
    count = len(expected)
    assert lines == expected + [
        f"{symbols} symbol{'s' * (symbols != 1)} checked, {rows} rows checked, "
        f"{count} problem{'s' * (count != 1)}"
    ]
    assert error is not None and error.returncode == 1


def test_intact_ledger_passes(chains):
    lines, error = verify()
    assert error is None
    assert lines == ["2 symbols checked, 8 rows checked, 0 problems"]
    assert verify("--symbol", "ETHUSDC", "--chunk-size", "2") == (
        ["1 symbol checked, 3 rows checked, 0 problems"], None)


def test_empty_ledger_passes():
    assert verify() == (["0 symbols checked, 0 rows checked, 0 problems"], None)


def test_bad_arguments_are_errors():
    with pytest.raises(CommandError, match="Malformed symbol"):
        call_command("verify_ledger", "--symbol", "btc-usd", stdout=io.StringIO())
    with pytest.raises(CommandError, match="chunk-size"):
        call_command("verify_ledger", "--chunk-size", "0", stdout=io.StringIO())


def test_progress_is_drawn_on_a_terminal(chains):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    call_command("verify_ledger", stdout=io.StringIO(), stderr=terminal)
    assert "verify_ledger [" in terminal.getvalue() and "8/8 rows" in terminal.getvalue()


def test_an_edited_value_is_reported(chains):
    with guards_lifted():
        execute(f"UPDATE {q(DECISIONS)} SET {q('final_size')} = 1000000.0 WHERE id = %s", [btc_id(chains, 3)])
    assert_problems(verify(), [f"edited: BTCUSDC seq 3 (row id {btc_id(chains, 3)}): content does not match its hash"])


def test_an_edit_with_a_recomputed_hash_is_reported(chains):
    row = SizingDecision.objects.filter(pk=btc_id(chains, 3)).values(*ledger.HASHED_FIELDS).get()
    forged_hash = ledger.row_hash({**row, "final_size": 1000000.0})
    with guards_lifted():
        execute(f"UPDATE {q(DECISIONS)} SET {q('final_size')} = 1000000.0, {q('row_hash')} = %s WHERE id = %s",
                [forged_hash, btc_id(chains, 3)])
    assert_problems(verify(), [
        f"edited: BTCUSDC seq 3 (row id {btc_id(chains, 3)}): "
        "re-hashed after an edit: seq 4 links to different content",
    ])


def test_a_deleted_middle_row_is_reported(chains):
    with guards_lifted():
        execute(f"DELETE FROM {q(DECISIONS)} WHERE id = %s", [btc_id(chains, 2)])
    assert_problems(verify(), ["missing: BTCUSDC seq 2: row 2 is gone"], rows=7)


def test_deleted_rows_renumbered_over_the_gap_are_reported(chains):
    with guards_lifted():
        execute(f"DELETE FROM {q(DECISIONS)} WHERE id = %s", [btc_id(chains, 3)])
        for seq in (4, 5):
            execute(f"UPDATE {q(DECISIONS)} SET {q('seq')} = %s WHERE id = %s", [seq - 1, btc_id(chains, seq)])
    assert_problems(verify(), [
        "missing: BTCUSDC seq 3: row 3 is gone: later rows were renumbered over the gap",
        f"reordered: BTCUSDC seq 3 (row id {btc_id(chains, 4)}): this row was hashed as seq 4: "
        "sequence numbers were swapped or shifted",
        f"reordered: BTCUSDC seq 4 (row id {btc_id(chains, 5)}): this row was hashed as seq 5: "
        "sequence numbers were swapped or shifted",
    ], rows=7)


def test_a_deleted_last_row_needs_the_anchor(chains, tmp_path):
    anchor = tmp_path / "heads.json"
    lines, error = verify("--write-anchor", str(anchor))
    assert error is None and lines[-1] == f"Anchor written to {anchor}: 2 chain heads."
    heads = json.loads(anchor.read_text())["heads"]
    assert heads["BTCUSDC"]["seq"] == 5 and heads["ETHUSDC"]["seq"] == 3
    with guards_lifted():
        execute(f"DELETE FROM {q(DECISIONS)} WHERE id = %s", [btc_id(chains, 5)])
    # What is left is a valid shorter chain: on its own it cannot show the loss.
    assert verify() == (["2 symbols checked, 7 rows checked, 0 problems"], None)
    assert_problems(verify("--anchor", str(anchor)),
                    ["missing: BTCUSDC seq 5: row 5 is gone: the recorded head is seq 5"], rows=7)


def test_a_chain_rewritten_from_an_edit_onward_is_caught_by_the_anchor(chains, tmp_path):
    anchor = tmp_path / "heads.json"
    verify("--write-anchor", str(anchor))
    rows = list(SizingDecision.objects.filter(symbol="BTCUSDC").order_by("seq").values("id", *ledger.HASHED_FIELDS))
    rows[2]["final_size"] = 1000000.0
    prev_hash = ledger.row_hash(rows[0])
    with guards_lifted():  # the attacker re-chains every row after the edit
        for row in rows[1:]:
            row["prev_hash"] = prev_hash
            prev_hash = ledger.row_hash(row)
            execute(f"UPDATE {q(DECISIONS)} SET {q('final_size')} = %s, {q('prev_hash')} = %s, {q('row_hash')} = %s "
                    "WHERE id = %s", [row["final_size"], row["prev_hash"], prev_hash, row["id"]])
    assert verify() == (["2 symbols checked, 8 rows checked, 0 problems"], None)
    assert_problems(verify("--anchor", str(anchor)), [
        f"edited: BTCUSDC seq 5 (row id {btc_id(chains, 5)}): differs from the recorded head: "
        "the chain was rewritten up to here",
    ])


def test_a_bad_anchor_file_is_an_error(tmp_path):
    anchor = tmp_path / "heads.json"
    anchor.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CommandError, match="not a sizing-ledger-heads/1 file"):
        call_command("verify_ledger", "--anchor", str(anchor), stdout=io.StringIO())
    with pytest.raises(CommandError, match="cannot read it"):
        call_command("verify_ledger", "--anchor", str(tmp_path / "absent.json"), stdout=io.StringIO())


def test_no_anchor_is_written_for_a_broken_ledger(chains, tmp_path):
    with guards_lifted():
        execute(f"DELETE FROM {q(DECISIONS)} WHERE id = %s", [btc_id(chains, 2)])
    lines, error = verify("--write-anchor", str(tmp_path / "heads.json"))
    assert error is not None and not (tmp_path / "heads.json").exists()


def test_a_forged_row_with_a_wrong_link_is_reported(chains):
    last = SizingDecision.objects.filter(symbol="BTCUSDC", seq=5).values(*ledger.HASHED_FIELDS).get()
    forged = {**last, "seq": 6, "prev_hash": "f" * 64, "final_size": 5000.0, "order_ref": "forged"}
    forged["row_hash"] = ledger.row_hash(forged)
    forged_row = SizingDecision.objects.create(**forged)  # an INSERT: the guards allow it
    assert_problems(verify(), [
        f"inserted: BTCUSDC seq 6 (row id {forged_row.pk}): forged: its hash is self-consistent "
        "but it links to no row before it",
    ], rows=9)


def _drop_chain_unique_constraint():
    if POSTGRES:
        execute(f"ALTER TABLE {q(DECISIONS)} DROP CONSTRAINT {q('decision_chain_seq')}")
        return
    # SQLite cannot drop a table constraint: rebuild the table without it (inside the test's transaction).
    (create_sql,) = execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [DECISIONS])[0]
    constraint = ', CONSTRAINT "decision_chain_seq" UNIQUE ("symbol", "seq")'
    assert constraint in create_sql
    execute(f"ALTER TABLE {q(DECISIONS)} RENAME TO {q(DECISIONS + '_old')}")
    execute(create_sql.replace(constraint, ""))
    execute(f"INSERT INTO {q(DECISIONS)} SELECT * FROM {q(DECISIONS + '_old')}")
    execute(f"DROP TABLE {q(DECISIONS + '_old')}")


def test_a_forged_row_duplicating_a_seq_is_reported(chains):
    with guards_lifted():
        _drop_chain_unique_constraint()
    genuine = SizingDecision.objects.filter(symbol="BTCUSDC", seq=3).values(*ledger.HASHED_FIELDS).get()
    forged = {**genuine, "final_size": 5000.0, "order_ref": "forged"}  # links correctly, hash recomputed
    forged["row_hash"] = ledger.row_hash(forged)
    forged_row = SizingDecision.objects.create(**forged)
    assert_problems(verify(), [
        f"inserted: BTCUSDC seq 3 (row id {forged_row.pk}): a second row claims this seq; "
        "the chain runs through the other",
    ], rows=9)


def test_swapped_seq_values_are_reported_as_reordered(chains):
    first, second = btc_id(chains, 2), btc_id(chains, 4)
    with guards_lifted():  # three steps: the unique key (symbol, seq) holds after each
        execute(f"UPDATE {q(DECISIONS)} SET {q('seq')} = 1000000 WHERE id = %s", [first])
        execute(f"UPDATE {q(DECISIONS)} SET {q('seq')} = 2 WHERE id = %s", [second])
        execute(f"UPDATE {q(DECISIONS)} SET {q('seq')} = 4 WHERE id = %s", [first])
    assert_problems(verify(), [
        f"reordered: BTCUSDC seq 2 (row id {second}): this row was hashed as seq 4: "
        "sequence numbers were swapped or shifted",
        f"reordered: BTCUSDC seq 4 (row id {first}): this row was hashed as seq 2: "
        "sequence numbers were swapped or shifted",
    ])


def test_swapped_created_at_values_are_reported_as_reordered(chains):
    first, second = btc_id(chains, 2), btc_id(chains, 4)
    stored = dict(execute(f"SELECT id, {q('created_at')} FROM {q(DECISIONS)} WHERE id IN (%s, %s)", [first, second]))
    assert stored[first] != stored[second]
    with guards_lifted():
        execute(f"UPDATE {q(DECISIONS)} SET {q('created_at')} = %s WHERE id = %s", [stored[second], first])
        execute(f"UPDATE {q(DECISIONS)} SET {q('created_at')} = %s WHERE id = %s", [stored[first], second])
    assert_problems(verify(), [
        f"reordered: BTCUSDC seq 2 (row id {first}): its created_at was swapped with seq 4's",
        f"reordered: BTCUSDC seq 4 (row id {second}): its created_at was swapped with seq 2's",
    ])


def test_problems_in_several_chains_are_all_listed(chains):
    eth_first = chains["ETHUSDC"][0][0]
    with guards_lifted():
        execute(f"UPDATE {q(DECISIONS)} SET {q('caller')} = 'x' WHERE id IN (%s, %s)", [btc_id(chains, 5), eth_first])
    assert_problems(verify(), [
        f"edited: BTCUSDC seq 5 (row id {btc_id(chains, 5)}): content does not match its hash",
        f"edited: ETHUSDC seq 1 (row id {eth_first}): content does not match its hash",
    ])
    assert_problems(verify("--symbol", "ETHUSDC"), [
        f"edited: ETHUSDC seq 1 (row id {eth_first}): content does not match its hash",
    ], rows=3, symbols=1)
