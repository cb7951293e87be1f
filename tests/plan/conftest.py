"""The plan's tests (../shared/spec), verbatim but for the module prefix.

The plan sizes BTCUSDC as a symbol the engine already trades: here it is registered, as an engine's
importers would have done, since sizing refuses a symbol nobody registered.
"""
import pytest

from tests.factories import make_symbol


@pytest.fixture(autouse=True)
def traded_symbols(db):
    make_symbol("BTCUSDC")
