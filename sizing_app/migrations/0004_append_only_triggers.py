"""Refuse UPDATE and DELETE on the ledger tables in the database itself, not only in the ORM.

Raw SQL, a shell session or another service cannot change or delete a sizing decision or a
snapshot either: the statement fails with an IntegrityError on PostgreSQL and on SQLite.

TRUNCATE is deliberately not trapped. It is a table-level privilege (the owner's, or an explicit
GRANT), and Django's test runner empties tables with TRUNCATE between transactional tests. In
production the service should run as a role that does not own these tables and holds only SELECT
and INSERT on them: such a role can neither TRUNCATE nor disable or drop these triggers. The row
triggers also stop the owner's accidental UPDATE or DELETE; getting past them takes deliberate DDL.

SQLite has no privileges, so there the triggers guard against accidents only. Its test flush
empties tables with DELETE, so a transactional test that leaves ledger rows behind must lift the
guard for that flush (remove_guards / install_guards, as tests/browser/conftest.py does). Caveats:
`INSERT OR REPLACE` deletes without firing delete triggers unless the connection sets
`PRAGMA recursive_triggers = ON`; and a later migration that makes SQLite rebuild one of these
tables (most column changes) drops its triggers, so it must call `install_guards` again (safe to
repeat on both databases; tests/test_ledger.py checks that the triggers exist).
"""
from django.db import migrations

APPEND_ONLY_MODELS = ("SizingDecision", "SizingSnapshot")
PG_FUNCTION = "sizing_refuse_append_only_change"

_PG_CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Ledger rows are never changed or deleted (sizing_app migration 0004).';
END;
$$
"""


def append_only_tables(apps) -> list[str]:
    return [apps.get_model("sizing_app", name)._meta.db_table for name in APPEND_ONLY_MODELS]


def _pg_trigger(table: str) -> str:
    return f"{table}_append_only"


def _sqlite_triggers(table: str) -> dict[str, str]:
    return {"UPDATE": f"{table}_no_update", "DELETE": f"{table}_no_delete"}


def install_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    quote = schema_editor.quote_name
    if vendor == "postgresql":
        schema_editor.execute(_PG_CREATE_FUNCTION, None)
        for table in append_only_tables(apps):
            # Drop first so this can run again (a later migration restoring the guard) on any version.
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {quote(_pg_trigger(table))} ON {quote(table)}", None)
            schema_editor.execute(
                f"CREATE TRIGGER {quote(_pg_trigger(table))} BEFORE UPDATE OR DELETE ON {quote(table)} "
                f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
                None,
            )
    elif vendor == "sqlite":
        for table in append_only_tables(apps):
            for operation, trigger in _sqlite_triggers(table).items():
                schema_editor.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {quote(trigger)} BEFORE {operation} ON {quote(table)} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only: {operation} refused'); END",
                    None,
                )


def remove_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    quote = schema_editor.quote_name
    if vendor == "postgresql":
        for table in append_only_tables(apps):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {quote(_pg_trigger(table))} ON {quote(table)}", None)
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()", None)
    elif vendor == "sqlite":
        for table in append_only_tables(apps):
            for trigger in _sqlite_triggers(table).values():
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {quote(trigger)}", None)


class Migration(migrations.Migration):
    dependencies = [("sizing_app", "0003_roles")]
    operations = [migrations.RunPython(install_guards, remove_guards, elidable=False)]
