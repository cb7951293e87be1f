"""The ledger: every size handed out, hash-chained per symbol and append-only.

chain.py defines a row's canonical content and hash and verifies chains; writer.py appends rows (the
hot path); journal.py and replay.py keep decisions made while the database was unreachable.
"""
