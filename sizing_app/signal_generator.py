"""The plan's module for the engine's sizing entry point: size_for over the stack's steps named here.

A thin compatibility module over sizing/service.py. As in the plan, `inverse_vol_size`,
`volatility_regime_scale`, `size_multiplier` and `symbol_size_factor` are looked up in this module at
each call, so replacing one of them here (the plan's tests monkeypatch them) changes the size. The
product itself sizes through sizing.service, with the persisted steps.
"""
import sys

from .sizing import service
from .sizing.errors import OrderRefConflict, SizingInsideTransaction, SizingUnavailable, UnknownSymbol
from .sizing.steps import inverse_vol_size
from .sizing.steps import persisted_factor as symbol_size_factor
from .sizing.steps import regime_multiplier as volatility_regime_scale
from .sizing.steps import sharpe_multiplier as size_multiplier

__all__ = [
    "OrderRefConflict", "SizingInsideTransaction", "SizingUnavailable", "UnknownSymbol", "inverse_vol_size",
    "size_decide", "size_decide_batch", "size_for", "size_multiplier", "symbol_size_factor",
    "volatility_regime_scale",
]

_THIS_MODULE = sys.modules[__name__]


def size_for(symbol: str, gross_target: float, **options) -> float:
    """sizing.service.size_for with the steps this module names now (see the module docstring)."""
    return service.size_for(symbol, gross_target, steps=_THIS_MODULE, **options)


def size_decide(symbol: str, gross_target: float, **options):
    return service.size_decide(symbol, gross_target, steps=_THIS_MODULE, **options)


def size_decide_batch(orders, **options):
    return service.size_decide_batch(orders, steps=_THIS_MODULE, **options)
