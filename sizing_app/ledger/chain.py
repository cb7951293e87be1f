"""The ledger's hash chain: canonical row content, row hashes, and chain verification.

Each SizingDecision hashes its own content together with its predecessor's hash in the same
symbol's chain, so editing, deleting, inserting or reordering any row breaks a link.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

GENESIS_HASH = "0" * 64

# The fields a row hash covers, in a fixed order; adding one is a ledger format change.
HASHED_FIELDS = (
    "symbol", "seq", "prev_hash", "created_at", "gross_target", "inverse_vol_size", "regime_multiplier",
    "sharpe_multiplier", "intel_factor", "applied_factor", "final_size", "snapshot_id", "score", "mode",
    "override_id", "stale", "fallback_reason", "order_ref", "caller", "journal_ref", "unbounded_size",
    "total_bounded",
)
# Hashed only when set, so rows written before the field existed keep their hashes: journal_ref
# when not empty (only replayed rows have one), the bound's fields when not None (every row since).
OPTIONAL_HASHED_FIELDS = frozenset({"journal_ref", "unbounded_size", "total_bounded"})
_ALWAYS_HASHED = tuple(name for name in HASHED_FIELDS if name not in OPTIONAL_HASHED_FIELDS)
_SOMETIMES_HASHED = tuple(name for name in HASHED_FIELDS if name in OPTIONAL_HASHED_FIELDS)
# The payload lists the always-hashed fields first: the optional ones must stay at the end of
# HASHED_FIELDS for the JSON's key order (part of every hash) to follow HASHED_FIELDS.
assert HASHED_FIELDS == _ALWAYS_HASHED + _SOMETIMES_HASHED

# Rows that fail their own hash are held and tried against the other damaged rows' seq and
# created_at to tell a swap from an edit; past this many (memory, a quadratic search) all count as edited.
SWAP_SEARCH_LIMIT = 200


def _canonical(value):
    """Dates and times as ISO text to the microsecond; everything else is JSON already."""
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, str):
        return value  # already canonical (a row read back as text)
    raise TypeError(f"a ledger row cannot hold {type(value).__name__}")


# One encoder for every row (json.dumps with options builds a new one per call); the hot path.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_canonical)


_NO_TIME = object()


def canonical_times(rows: Iterable[dict]) -> list[str]:
    """Each row's created_at as canonical text (see row_hash's created_at_text).

    Rows sharing one datetime object (all rows of one sizing call) cost one conversion.
    """
    texts, last, text = [], _NO_TIME, ""
    for row in rows:
        value = row["created_at"]
        if value is not last:
            last, text = value, _canonical(value)
        texts.append(text)
    return texts


def canonical_row(fields: dict, *, created_at_text: str | None = None) -> str:
    """The canonical JSON text of a row's hashed fields: what its row hash covers.

    created_at_text: the row's created_at already canonical (from canonical_times), if at hand.
    """
    payload = {name: fields[name] for name in _ALWAYS_HASHED}
    for name in _SOMETIMES_HASHED:
        value = fields.get(name)
        if value is not None and value != "":
            payload[name] = value
    # The one time field, canonical up front: the encoder's fallback call costs more than this.
    payload["created_at"] = created_at_text if created_at_text is not None else _canonical(payload["created_at"])
    return _ENCODER.encode(payload)


def text_hash(canonical: str) -> str:
    """The row hash of a canonical_row text."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_hash(fields: dict, *, created_at_text: str | None = None) -> str:
    """sha256 over the canonical JSON of the hashed fields (floats in repr, exact round trip)."""
    return text_hash(canonical_row(fields, created_at_text=created_at_text))


@dataclass(frozen=True)
class ChainHead:
    """A chain's last row as recorded outside the ledger (an anchor): what a deleted tail is checked against.

    The chain alone cannot show that its newest rows were deleted: what is left is a valid,
    shorter chain. A head kept elsewhere (a file compliance archives, the engine's own log of the
    seq and row_hash it was handed) can.
    """

    symbol: str
    seq: int
    row_hash: str


@dataclass(frozen=True)
class ChainProblem:
    symbol: str
    seq: int | None
    row_id: int | None
    kind: str  # edited | missing | inserted | reordered
    detail: str

    def __str__(self):
        where = f"{self.symbol} seq {self.seq}" + (f" (row id {self.row_id})" if self.row_id else "")
        return f"{self.kind}: {where}: {self.detail}"


def _seq_groups(rows: Iterable[dict]) -> Iterator[list[dict]]:
    """Consecutive rows sharing a seq (more than one only if the unique key was dropped)."""
    group: list[dict] = []
    for row in rows:
        if group and row["seq"] != group[0]["seq"]:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _rows_span(first: int, last: int) -> str:
    return f"row {first} is gone" if first == last else f"rows {first}..{last} are gone"


def verify_chain(symbol: str, rows: Iterable[dict], *, head: ChainHead | None = None) -> list[ChainProblem]:
    """Check one symbol's rows, given in ascending (seq, id) order, and name every break.

    Streams: memory holds one seq group ahead plus the rows that fail their own hash. Each break
    is reported once, where it is, as the kind of tampering that explains it:
    - edited: a row's content no longer matches its hash, or a row was re-hashed after an edit
      (its successor still links to the old hash), or the chain differs from the recorded head;
    - missing: a gap in seq, or the chain ends before the recorded `head`;
    - inserted: a row that claims a taken seq, or a self-consistent row that links to nothing;
    - reordered: a row whose hash holds with another row's seq or created_at (swapped values).
    """
    problems: list[ChainProblem] = []
    damaged: list[dict] | None = []  # rows failing their own hash: edits or swaps, told apart at the end
    previous: dict | None = None
    previous_explained = False  # the previous row is already reported: its outgoing link says nothing new
    groups = _seq_groups(rows)
    group = next(groups, None)
    while group is not None:
        following = next(groups, None)
        linked_from_next = {row["prev_hash"] for row in following} if following else set()
        expected_seq = previous["seq"] + 1 if previous else 1
        expected_prev = previous["row_hash"] if previous else GENESIS_HASH
        row = _genuine(group, expected_prev, linked_from_next, head)
        for extra in group:
            if extra is not row:
                problems.append(ChainProblem(symbol, extra["seq"], extra.get("id"), "inserted",
                                             "a second row claims this seq; the chain runs through the other"))
        content_ok = row_hash(row) == row["row_hash"]
        explained = not content_ok
        if not content_ok:
            if damaged is not None and len(damaged) < SWAP_SEARCH_LIMIT:
                damaged.append(row)
            else:  # a ruined chain: stop holding rows, every damaged one counts as edited
                for held in damaged or ():
                    problems.append(_edited(symbol, held, " (too many damaged rows to look for swaps)"))
                damaged = None
                problems.append(_edited(symbol, row, " (too many damaged rows to look for swaps)"))
        if row["seq"] > expected_seq:
            problems.append(ChainProblem(symbol, expected_seq, None, "missing",
                                         _rows_span(expected_seq, row["seq"] - 1)))
        elif row["seq"] < expected_seq:
            problems.append(ChainProblem(symbol, row["seq"], row.get("id"), "inserted",
                                         "seq is below the chain's start"))
            explained = True
        elif row["prev_hash"] != expected_prev and content_ok and not previous_explained:
            if previous is not None and row["row_hash"] in linked_from_next:
                # This row and its successor hold together: the row before was rewritten and re-hashed.
                problems.append(ChainProblem(symbol, previous["seq"], previous.get("id"), "edited",
                                             f"re-hashed after an edit: seq {row['seq']} links to different content"))
            else:
                problems.append(ChainProblem(symbol, row["seq"], row.get("id"), "inserted",
                                             "forged: its hash is self-consistent but it links to no row before it"))
                explained = True
        if head is not None and row["seq"] == head.seq and row["row_hash"] != head.row_hash:
            problems.append(ChainProblem(symbol, row["seq"], row.get("id"), "edited",
                                         "differs from the recorded head: the chain was rewritten up to here"))
        previous, previous_explained, group = row, explained, following
    last_seq = previous["seq"] if previous else 0
    if head is not None and head.seq > last_seq:
        problems.append(ChainProblem(symbol, last_seq + 1, None, "missing",
                                     f"{_rows_span(last_seq + 1, head.seq)}: the recorded head is seq {head.seq}"))
    problems.extend(_explain_damage(symbol, damaged or []))
    problems.sort(key=lambda problem: (problem.seq or 0, problem.kind != "missing"))
    return problems


def _genuine(group: list[dict], expected_prev: str, linked_from_next: set[str], head: ChainHead | None) -> dict:
    """Of the rows claiming one seq, the one the chain runs through (the oldest when in doubt)."""
    if len(group) == 1:
        return group[0]

    def weight(row):
        anchored = head is not None and head.seq == row["seq"] and head.row_hash == row["row_hash"]
        linked = row["row_hash"] in linked_from_next or anchored
        return linked, row["prev_hash"] == expected_prev and row_hash(row) == row["row_hash"]

    return max(group, key=weight)  # max keeps the first of equals: the lowest id


def _edited(symbol: str, row: dict, note: str = "") -> ChainProblem:
    return ChainProblem(symbol, row["seq"], row.get("id"), "edited", "content does not match its hash" + note)


def _explain_damage(symbol: str, damaged: list[dict]) -> list[ChainProblem]:
    """Tell rows whose seq or created_at was swapped with another row's from plainly edited rows."""
    seqs = {row["seq"] for row in damaged}
    problems = []
    claimed = set()  # the seq each damaged row was hashed under: a vacated seq nobody claims lost its row
    for row in damaged:
        # A shift (rows renumbered after a deletion) moves a row by one; a swap moves it to another damaged seq.
        candidates = sorted((seqs | {row["seq"] - 1, row["seq"] + 1}) - {row["seq"]})
        hashed_as = next((seq for seq in candidates
                          if seq >= 1 and row_hash({**row, "seq": seq}) == row["row_hash"]), None)
        claimed.add(row["seq"] if hashed_as is None else hashed_as)
        if hashed_as is not None:
            problems.append(ChainProblem(symbol, row["seq"], row.get("id"), "reordered",
                                         f"this row was hashed as seq {hashed_as}: "
                                         "sequence numbers were swapped or shifted"))
            continue
        holder = next((other for other in damaged if other is not row and other["created_at"] != row["created_at"]
                       and row_hash({**row, "created_at": other["created_at"]}) == row["row_hash"]), None)
        if holder is not None:
            problems.append(ChainProblem(symbol, row["seq"], row.get("id"), "reordered",
                                         f"its created_at was swapped with seq {holder['seq']}'s"))
            continue
        problems.append(_edited(symbol, row))
    for seq in sorted(seqs - claimed):
        problems.append(ChainProblem(symbol, seq, None, "missing",
                                     f"{_rows_span(seq, seq)}: later rows were renumbered over the gap"))
    return problems
