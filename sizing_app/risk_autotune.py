"""The plan's module for the Sharpe step: a thin alias of sizing/steps.py.

size_multiplier is the plan's name of sizing.steps.sharpe_multiplier (bounded to (0.5, 1.5),
neutral when the Sharpe is undefined).
"""
from .sizing.steps import sharpe_multiplier as size_multiplier

__all__ = ["size_multiplier"]
