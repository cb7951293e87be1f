"""Reads: the recompute's bulk inputs and execution health. Writes live in each domain's services."""
