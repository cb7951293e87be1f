"""Adaptive position sizing: scores symbols, persists bounded size factors, sizes orders.

See DESIGN.md for the contract; `signal_generator.size_for` is the engine's entry point.
"""
