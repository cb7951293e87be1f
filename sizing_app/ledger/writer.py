"""Appending decisions to their symbols' hash chains: the ledger INSERT, the chain heads, one row per order.

The hot path: one INSERT ... RETURNING per call or batch. A decision is returned only once its row is
committed; chains are per symbol, so writers on different symbols never contend.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    connections,
    transaction,
)
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from ..models import SizingDecision
from ..sizing.errors import OrderRefConflict
from .chain import GENESIS_HASH, HASHED_FIELDS, canonical_row, canonical_times, text_hash

CHAIN_RETRIES = 20


# SQLSTATE 25006: the server is a read-only standby (a failover in progress) or the session is read-only.
_READ_ONLY_SQLSTATE = "25006"


def ledger_unreachable(exc: BaseException) -> bool:
    """Whether a database error means "no ledger row can be written now": an outage, not a bug.

    Unreachable, reset, shut down by the administrator, serialization failures past their retries
    (all OperationalError or InterfaceError), and a read-only database (InternalError 25006), which is
    what a failover to a standby looks like.
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, InternalError) and getattr(exc.__cause__, "sqlstate", None) == _READ_ONLY_SQLSTATE


class ChainHeads:
    """This process's view of each symbol's chain head: (seq, hash) of the last committed row.

    A stale view is harmless: the unique (symbol, seq) key refuses the insert and we reload.
    """

    def __init__(self):
        self._heads: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def get(self, symbol: str) -> tuple[int, str]:
        head = self._heads.get(symbol)
        return head if head is not None else self.reload(symbol)

    def reload(self, symbol: str) -> tuple[int, str]:
        row = (
            SizingDecision.objects.filter(symbol=symbol).order_by("-seq").values_list("seq", "row_hash").first()
        )
        return row if row is not None else (0, GENESIS_HASH)

    def remember(self, symbol: str, seq: int, hash_: str) -> None:
        with self._lock:
            current = self._heads.get(symbol)
            if current is None or current[0] < seq:
                self._heads[symbol] = (seq, hash_)

    def forget(self, symbol: str | None = None) -> None:
        with self._lock:
            if symbol is None:
                self._heads.clear()
            else:
                self._heads.pop(symbol, None)


chain_heads = ChainHeads()


_EMPTY_JOURNAL_REF = ',"journal_ref":""'


def chain_rows(rows: list[dict[str, Any]], heads: dict[str, tuple[int, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows chained onto the heads, and each as the JSON object PostgreSQL's INSERT receives.

    That object is the canonical text the row hash covers, plus the hash (and an empty
    journal_ref, which the hash leaves out): the row is serialized once, not twice.
    """
    chained, texts = [], []
    for fields, time_text in zip(rows, canonical_times(rows)):
        seq, prev_hash = heads[fields["symbol"]]
        fields = {**fields, "seq": seq + 1, "prev_hash": prev_hash}
        canonical = canonical_row(fields, created_at_text=time_text)
        fields["row_hash"] = text_hash(canonical)
        heads[fields["symbol"]] = (fields["seq"], fields["row_hash"])
        chained.append(fields)
        journal_ref = "" if fields["journal_ref"] else _EMPTY_JOURNAL_REF
        texts.append(f'{canonical[:-1]},"row_hash":"{fields["row_hash"]}"{journal_ref}}}')
    return chained, texts


# Ledger rows go in with one INSERT ... RETURNING: one statement is atomic on its own, so a
# size costs one round trip like a bare INSERT, and a batch of any size costs one too. The
# ORM's bulk_create spends tens of microseconds per row compiling; this path is the hot one.
_INSERT_FIELDS = [field for field in SizingDecision._meta.concrete_fields if not field.primary_key]
INSERT_NAMES = [field.attname for field in _INSERT_FIELDS]
MODEL_NAMES = [SizingDecision._meta.pk.attname, *INSERT_NAMES]
_CREATED_AT = INSERT_NAMES.index("created_at")
# PostgreSQL receives each row as its hashed text plus row_hash (see chain_rows): a column outside
# those would go in as NULL. Adding one means sending it in chain_rows too, and changing this check.
assert set(INSERT_NAMES) == {*HASHED_FIELDS, "row_hash"}, "a ledger column is not sent to PostgreSQL"
_SQLITE_BATCH = 500  # rows per statement: SQLite caps the parameters of one statement


@functools.cache
def _table_and_columns() -> tuple[str, str]:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return quote(SizingDecision._meta.db_table), ", ".join(quote(field.column) for field in _INSERT_FIELDS)


@functools.cache
def _postgres_insert_sql() -> str:
    """One statement for any number of rows, its rows passed as one JSON array of objects.

    Its text never changes, so the server parses and plans it once per connection (prepared).
    Each row's object is the canonical JSON its hash already needed (see chain_rows), so sending a
    row costs no second serialization; it is exact: floats go as their shortest round-trip
    repr, times as ISO strings to the microsecond with their offset. json_populate_recordset
    types each field as the table's own column.

    Before any row goes in, the statement takes its chains' append locks (see lock_chains) in
    name order, so a writer that lost a race and queued on them can never lose again. The names
    come comma-separated (symbols are [A-Z0-9]): a text[] parameter costs more to send.
    """
    table, columns = _table_and_columns()
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json) "
        "WHERE (SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) "
        "FROM (SELECT unnest(string_to_array(%s, ',')) AS name ORDER BY 1) AS names) >= 0 "
        'RETURNING "id", "symbol", "seq"'
    )


@functools.cache
def _sqlite_insert_sql(rows: int, placeholder: str) -> str:
    """Multi-row VALUES; "?" is the driver's own style (no per-call rewrite), "%s" Django's cursors'."""
    table, columns = _table_and_columns()
    values = "(" + ", ".join([placeholder] * len(_INSERT_FIELDS)) + ")"
    return f'INSERT INTO {table} ({columns}) VALUES {", ".join([values] * rows)} RETURNING "id"'


def _fetch(db, driver_cursor, sql: str, params: list, *, logged: bool, keep_open: bool = False) -> list[tuple]:
    """Run one statement on a driver cursor and fetch its rows, with Django's checks and error classes.

    With query logging (`logged`: db.queries_logged, read once by the caller) or execute_wrappers
    on, through Django's cursor wrapper, so they see it. Otherwise on the bare cursor: the wrapper
    costs about 10 µs a call, a sixth of size_for's Python. (Tools that monkeypatch Django's
    CursorWrapper rather than use execute_wrapper do not see this one statement.)
    keep_open: the cursor is reused by the next call (Django's wrapper still closes it).
    """
    try:
        db.validate_thread_sharing()  # as connection.cursor() does
        if logged or db.execute_wrappers:
            wrap = db.make_debug_cursor if logged else db.make_cursor
            with wrap(driver_cursor) as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        db.validate_no_broken_transaction()  # as Django's cursor does: a clear error in a failed atomic block
        with db.wrap_database_errors:
            driver_cursor.execute(sql, params)
            return driver_cursor.fetchall()
    finally:
        if not keep_open:
            driver_cursor.close()


def _prepared_statement_gone(exc: Exception) -> bool:
    import psycopg.errors

    cause = exc.__cause__
    return isinstance(cause, (psycopg.errors.FeatureNotSupported, psycopg.errors.InvalidSqlStatementName))


def _ledger_cursor(db) -> tuple[Any, bool]:
    """(server-binding cursor for the ledger INSERT, whether it is kept for the next call).

    Django's cursors bind parameters client-side, so they never prepare; this one binds on the
    server, and the connection's prepare_threshold (settings) prepares the statement after a few
    runs. Kept per connection, and so per thread (Django's connections are), because a new psycopg
    cursor starts with empty adapter caches: about 5-10 µs a call. Not kept on a connection shared
    between threads: another thread's statement could replace this one's result before its fetch.
    """
    cursor = None if db.allow_thread_sharing else getattr(db, "_sizing_ledger_cursor", None)
    if cursor is not None and not cursor.closed and cursor.connection is db.connection:
        return cursor, True  # the steady state: nothing to import or build
    from django.db.backends.postgresql.base import ServerBindingCursor

    cursor = ServerBindingCursor(db.connection)
    if db.allow_thread_sharing:
        return cursor, False
    db._sizing_ledger_cursor = cursor
    return cursor, True


def _insert_postgres(db, chained: list[dict[str, Any]], texts: list[str]) -> list[int]:
    symbols = ",".join({fields["symbol"] for fields in chained})
    params = ["[" + ",".join(texts) + "]", symbols]

    def execute() -> list[tuple]:
        db.ensure_connection()
        cursor, kept = _ledger_cursor(db)
        return _fetch(db, cursor, _postgres_insert_sql(), params, logged=db.queries_logged, keep_open=kept)

    try:
        returned = execute()
    except (NotSupportedError, ProgrammingError) as exc:
        # "cached plan must not change result type" (a migration changed the table under this
        # connection's prepared statement) or "prepared statement ... does not exist" (a pooler
        # swapped the server connection): nothing was inserted. Outside a caller's transaction a
        # fresh connection prepares it again; inside one, the caller's transaction is lost anyway.
        if db.in_atomic_block or not _prepared_statement_gone(exc):
            raise
        db.close()
        returned = execute()
    if len(chained) == 1:
        return [returned[0][0]]
    inserted = {(symbol, seq): pk for pk, symbol, seq in returned}
    # RETURNING's row order is not guaranteed: match ids to rows by their chain position.
    return [inserted[fields["symbol"], fields["seq"]] for fields in chained]


def _insert_sqlite(db, chained: list[dict[str, Any]]) -> list[int]:
    adapt_time = db.ops.adapt_datetimefield_value
    logged = db.queries_logged
    ids: list[int] = []
    db.ensure_connection()
    for start in range(0, len(chained), _SQLITE_BATCH):
        batch = chained[start:start + _SQLITE_BATCH]
        params = []
        for fields in batch:
            row = [fields[name] for name in INSERT_NAMES]
            row[_CREATED_AT] = adapt_time(row[_CREATED_AT])
            params.extend(row)
        if logged:
            # The debug cursor formats logged statements assuming Django's "%s" style.
            with db.cursor() as cursor:
                cursor.execute(_sqlite_insert_sql(len(batch), "%s"), params)
                returned = cursor.fetchall()
        else:
            returned = _fetch(db, db.connection.cursor(), _sqlite_insert_sql(len(batch), "?"), params, logged=False)
        # SQLite returns a multi-row VALUES insert's ids in row order.
        ids.extend(row[0] for row in returned)
    return ids


def insert_rows(db, chained: list[dict[str, Any]], texts: list[str]) -> list[int]:
    """Insert chained rows (texts: their JSON objects, from chain_rows) in one statement per batch."""
    return _insert_postgres(db, chained, texts) if db.vendor == "postgresql" else _insert_sqlite(db, chained)


def lock_chains(db, symbols: set[str]) -> None:
    """Queue behind every other writer of these chains until this transaction ends.

    PostgreSQL: one transaction-scoped advisory lock per symbol, always taken in the same order so
    two batches cannot deadlock. SQLite: the IMMEDIATE transaction already holds the write lock.
    """
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        for symbol in sorted(symbols):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [symbol])


def _append(db, chained: list[dict[str, Any]], texts: list[str]) -> list[int]:
    if db.in_atomic_block:
        with transaction.atomic(using=db.alias):  # a savepoint, so a lost race leaves the caller's transaction usable
            return insert_rows(db, chained, texts)
    if len(chained) > _SQLITE_BATCH and db.vendor != "postgresql":
        with transaction.atomic(using=db.alias):  # several statements: all rows or none
            return insert_rows(db, chained, texts)
    return insert_rows(db, chained, texts)


LOOKUP_BATCH = 500  # journal_refs per "already in the ledger?" query (SQLite caps parameters)


def order_key(row: dict[str, Any]) -> tuple[str, str] | None:
    """The idempotency key of a decision: (caller, order_ref), or None when it has no order_ref."""
    return (row["caller"], row["order_ref"]) if row["order_ref"] else None


def same_order(original: dict[str, Any], row: dict[str, Any]) -> bool:
    """A repeat of an order: the same key, symbol and gross target (its sizing may differ by time)."""
    return original["symbol"] == row["symbol"] and original["gross_target"] == row["gross_target"]


def order_conflict(original: dict[str, Any], row: dict[str, Any], where: str) -> OrderRefConflict:
    return OrderRefConflict(
        f"order_ref {row['order_ref']!r} was already sized for {original['symbol']} with gross_target "
        f"{original['gross_target']!r} ({where}); this request has {row['symbol']} {row['gross_target']!r}. "
        "Nothing was written: send a new order_ref for a new order, or the same inputs to get the original size.",
        order_ref=row["order_ref"], decision_id=original.get("id"), journal_ref=original.get("journal_ref") or "",
    )


def ledger_originals(keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The ledger rows already holding these (caller, order_ref) keys (the unique index allows one each)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    by_caller: dict[str, list[str]] = {}
    for caller, order_ref in keys:
        by_caller.setdefault(caller, []).append(order_ref)
    for caller, refs in by_caller.items():
        for start in range(0, len(refs), LOOKUP_BATCH):
            rows = SizingDecision.objects.filter(caller=caller, order_ref__in=refs[start:start + LOOKUP_BATCH])
            for row in rows.values(*MODEL_NAMES):
                found[caller, row["order_ref"]] = row
    return found


def _repeats(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """{index of a row that repeats an order already on the ledger: that original row}.

    OrderRefConflict when a key is on the ledger with other inputs: then nothing is written.
    """
    keys = {key for row in rows if (key := order_key(row)) is not None}
    if not keys:
        return {}
    originals = ledger_originals(keys)
    repeats = {}
    for index, row in enumerate(rows):
        original = originals.get(order_key(row)) if row["order_ref"] else None
        if original is None:
            continue
        if not same_order(original, row):
            raise order_conflict(original, row, f"ledger decision {original['id']}")
        repeats[index] = {**original, "replayed": True}
    return repeats


def append_decisions(db, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chain the rows onto their symbols' heads and insert them; each comes back with its "id".

    A row whose (caller, order_ref) is already on the ledger is not inserted again: the original
    row comes back in its place, marked "replayed" (OrderRefConflict if its inputs differ).
    """
    symbols = {row["symbol"] for row in rows}
    heads = {symbol: chain_heads.get(symbol) for symbol in symbols}
    for attempt in range(CHAIN_RETRIES):
        try:
            if attempt == 0:
                # Fast path: one INSERT on the heads this process saw last. A repeated order_ref
                # fails it on the unique (caller, order_ref) index, like a stale head does.
                chained, texts = chain_rows(rows, heads)
                return _inserted(chained, _append(db, chained, texts))
            # Another writer appended first, or an order was sized before. Racing again can lose
            # again, without end under load: queue on the chains' locks instead, then look for
            # the orders already sized, read the heads and append the rest.
            with transaction.atomic(using=db.alias):
                lock_chains(db, symbols)
                repeats = _repeats(rows)
                fresh = [row for index, row in enumerate(rows) if index not in repeats]
                heads = {symbol: chain_heads.reload(symbol) for symbol in {row["symbol"] for row in fresh}}
                chained, texts = chain_rows(fresh, heads)
                inserted = iter(_inserted(chained, insert_rows(db, chained, texts) if chained else []))
                return [repeats[index] if index in repeats else next(inserted) for index in range(len(rows))]
        except IntegrityError:
            if attempt == CHAIN_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _inserted(chained: list[dict[str, Any]], ids: list[int]) -> list[dict[str, Any]]:
    for fields, pk in zip(chained, ids):
        fields["id"], fields["replayed"] = pk, False
    return chained


def remember_heads(db, rows: list[dict[str, Any]]) -> None:
    rows = [row for row in rows if not row["replayed"]]
    if db.in_atomic_block:
        # Inside the caller's transaction: trust the new heads only once that commits.
        for row in rows:
            chain_heads.forget(row["symbol"])
            transaction.on_commit(lambda r=row: chain_heads.remember(r["symbol"], r["seq"], r["row_hash"]),
                                  using=db.alias)
    else:
        for row in rows:
            chain_heads.remember(row["symbol"], row["seq"], row["row_hash"])


def loaded_decisions(rows: list[dict[str, Any]]) -> list[SizingDecision]:
    """Model instances as if loaded from the database, from the rows just inserted.

    Built as unpickling builds them, without Model.__init__: its field-by-field setattr costs
    about 5 µs a row, a tenth of a batch's time per decision. Through from_db (which runs
    __init__) whenever something listens to the model's init signals, so no receiver is skipped.
    """
    if pre_init.has_listeners(SizingDecision) or post_init.has_listeners(SizingDecision):
        decisions = [SizingDecision.from_db(DEFAULT_DB_ALIAS, MODEL_NAMES, [row[name] for name in MODEL_NAMES])
                     for row in rows]
        for decision, row in zip(decisions, rows):
            decision.replayed = row["replayed"]
        return decisions
    decisions = []
    for row in rows:
        decision = SizingDecision.__new__(SizingDecision)
        state = ModelState()
        state.adding, state.db = False, DEFAULT_DB_ALIAS
        decision.__dict__.update({name: row[name] for name in MODEL_NAMES}, _state=state, replayed=row["replayed"])
        decisions.append(decision)
    return decisions
