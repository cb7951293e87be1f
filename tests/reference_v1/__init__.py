"""Frozen copy of sizing_app.metrics and sizing_app.scoring as they were before the speed-up (commit d3bc726).

The recompute's numbers must not move by a single bit when its code gets faster: the equivalence
tests (tests/test_scoring_equivalence.py) compare the live modules with this copy. Never edit it.
"""
