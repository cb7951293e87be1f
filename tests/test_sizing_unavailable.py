"""Fail-closed sizing: when the ledger cannot be written, the engine gets SizingUnavailable, not a size."""
import pytest
from django.db import InterfaceError, OperationalError

from sizing_app.models import SizingDecision
from sizing_app.signal_generator import SizingUnavailable, size_decide_batch, size_for


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_database_outage_raises_sizing_unavailable_and_records_nothing(monkeypatch, error):
    def broken_insert(chained):
        raise error

    monkeypatch.setattr("sizing_app.services.decisions._insert", broken_insert)
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
