"""Fail-closed sizing: when the ledger cannot be written, the engine gets SizingUnavailable, not a size."""
import pytest
from django.db import InterfaceError, OperationalError

from sizing_app.models import SizingDecision
from sizing_app.signal_generator import size_decide_batch, size_for
from sizing_app.sizing.errors import SizingUnavailable
from tests.factories import make_symbol


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_database_outage_raises_sizing_unavailable_and_records_nothing(monkeypatch, error):
    make_symbol("BTCUSDC"), make_symbol("ETHUSDC")

    def broken_insert(db, chained, texts):
        raise error

    monkeypatch.setattr("sizing_app.ledger.writer.insert_rows", broken_insert)
    with pytest.raises(SizingUnavailable, match="ledger database cannot be reached"):
        size_for("BTCUSDC", 100.0)
    with pytest.raises(SizingUnavailable):
        size_decide_batch([("BTCUSDC", 1.0, "a"), ("ETHUSDC", 2.0, "b")])
    monkeypatch.undo()
    assert SizingDecision.objects.count() == 0


def test_bad_input_is_still_a_value_error_not_unavailable():
    with pytest.raises(ValueError) as caught:
        size_for("BTCUSDC", float("nan"))
    assert not isinstance(caught.value, SizingUnavailable)


@pytest.mark.django_db(transaction=True)
def test_a_prepared_ledger_insert_dropped_under_the_connection_is_prepared_again(empty_append_only_tables):
    """A pooler that swaps the server connection (or DEALLOCATE) loses the prepared INSERT: size anyway."""
    from django.db import connection

    from sizing_app.models import SizingDecision
    from tests.factories import make_snapshot, make_symbol

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (DATABASE_URL=postgres://...)")
    make_snapshot(make_symbol("BTCUSDC"), size_factor=1.5)
    for n in range(8):  # past the connection's prepare_threshold: the INSERT is now prepared
        size_for("BTCUSDC", 1.0, order_ref=f"warm-{n}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] >= 1
        cursor.execute("DEALLOCATE ALL")  # psycopg still believes it is prepared
    size = size_for("BTCUSDC", 100.0, order_ref="after")
    assert SizingDecision.objects.get(order_ref="after").final_size == size


@pytest.mark.django_db(transaction=True)
def test_the_kept_ledger_cursor_follows_the_connection(empty_append_only_tables):
    """The INSERT's cursor is kept between calls, and a new connection gets a new one."""
    from django.db import connection

    from sizing_app.ledger.writer import _ledger_cursor
    from tests.factories import make_snapshot, make_symbol

    if connection.vendor != "postgresql":
        pytest.skip("the kept cursor is PostgreSQL's (DATABASE_URL=postgres://...)")
    make_snapshot(make_symbol("BTCUSDC"), size_factor=1.5)
    size_for("BTCUSDC", 1.0, order_ref="first")
    kept, _ = _ledger_cursor(connection)
    size_for("BTCUSDC", 1.0, order_ref="second")
    assert _ledger_cursor(connection) == (kept, True) and not kept.closed
    connection.close()  # a broken or recycled connection: the next call reconnects
    size_for("BTCUSDC", 1.0, order_ref="third")
    fresh, _ = _ledger_cursor(connection)
    assert fresh is not kept and fresh.connection is connection.connection
    with connection.execute_wrapper(lambda execute, *args: execute(*args)):
        size_for("BTCUSDC", 1.0, order_ref="wrapped")  # Django's wrapper closes the cursor it wrapped
    assert _ledger_cursor(connection)[0] is not fresh
    connection.inc_thread_sharing()  # shared between threads: a cursor per call, never kept
    try:
        size_for("BTCUSDC", 1.0, order_ref="shared")
        cursor, kept_for_next = _ledger_cursor(connection)
        assert not kept_for_next and cursor is not _ledger_cursor(connection)[0]
    finally:
        connection.dec_thread_sharing()
    size_for("BTCUSDC", 1.0, order_ref="after")
    assert list(SizingDecision.objects.order_by("seq").values_list("order_ref", "seq")) == [
        ("first", 1), ("second", 2), ("third", 3), ("wrapped", 4), ("shared", 5), ("after", 6)]
