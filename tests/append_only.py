"""SQLite's append-only triggers (migration 0004), lifted and put back by tests that must.

Used to empty the ledger tables when a transactional test ends (SQLite's flush is a DELETE,
which the triggers refuse; PostgreSQL's TRUNCATE passes) and to tamper as an attacker with
DDL rights would. The migration's own functions do the work, on a minimal schema editor: the
real one refuses to open inside a test's transaction on SQLite, and these need nothing else.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace

from django.apps import apps
from django.db import connection

guards = importlib.import_module("sizing_app.migrations.0004_append_only_triggers")


def _execute(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def schema_editor() -> SimpleNamespace:
    return SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name, execute=_execute)


def sqlite_guards(action: str) -> None:
    """"install" or "remove" the SQLite triggers; nothing on PostgreSQL (its flush is TRUNCATE)."""
    if connection.vendor == "sqlite":
        getattr(guards, f"{action}_guards")(apps, schema_editor())


def sqlite_empty_append_only_tables() -> None:
    """Delete every ledger and snapshot row on SQLite with the triggers lifted, in one transaction."""
    from django.db import transaction

    if connection.vendor != "sqlite":
        return
    with transaction.atomic():
        sqlite_guards("remove")
        for table in guards.append_only_tables(apps):  # decisions before the snapshots they point to
            _execute(f"DELETE FROM {connection.ops.quote_name(table)}")
        sqlite_guards("install")
