"""Walk every symbol's hash chain in the decision ledger and report each edited, missing, inserted or reordered row.

Exits 0 when every chain is intact and 1 otherwise. `--write-anchor` keeps the chain heads outside
the database so a later `--anchor` run also catches the deletion of a chain's newest rows.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count
from django.utils import timezone

from ...ledger.chain import HASHED_FIELDS, ChainHead, verify_chain
from ...models import SizingDecision
from ...sizing.validation import validate_symbol
from ..progress import Progress

ANCHOR_FORMAT = "sizing-ledger-heads/1"
ROW_FIELDS = ("id", *HASHED_FIELDS, "row_hash")  # snapshot_id and override_id are the FK columns
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def anchor_load(path: Path) -> dict[str, ChainHead]:
    """Chain heads from a file written by --write-anchor; a malformed file is an error, not a pass."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"--anchor {path}: cannot read it: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != ANCHOR_FORMAT:
        raise CommandError(f"--anchor {path}: not a {ANCHOR_FORMAT} file")
    heads = {}
    for symbol, head in (document.get("heads") or {}).items():
        seq, hash_ = (head.get("seq"), head.get("row_hash")) if isinstance(head, dict) else (None, None)
        if type(seq) is not int or seq < 1 or not isinstance(hash_, str) or not _HASH_RE.fullmatch(hash_):
            raise CommandError(f"--anchor {path}: bad head for {symbol!r}: {head!r}")
        heads[symbol] = ChainHead(symbol, seq, hash_)
    return heads


def anchor_write(path: Path, heads: Iterable[ChainHead]) -> None:
    """Write the heads atomically: a crash leaves the previous anchor, never half a file."""
    document = {
        "format": ANCHOR_FORMAT,
        "written_at": timezone.now().isoformat(),
        "heads": {head.symbol: {"seq": head.seq, "row_hash": head.row_hash} for head in heads},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Verify the sizing ledger's per-symbol hash chains: print one line per edited, missing, inserted or "
        "reordered row and a summary; exit 1 if anything is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("--symbol", action="append", dest="symbols", metavar="SYMBOL",
                            help="Only this symbol (repeatable). Default: every symbol on the ledger.")
        parser.add_argument("--anchor", type=Path, metavar="FILE",
                            help="Chain heads written by an earlier --write-anchor: also report rows deleted "
                                 "from the end of a chain.")
        parser.add_argument("--write-anchor", type=Path, metavar="FILE",
                            help="After a clean pass, write each chain's head here (keep it outside the database).")
        parser.add_argument("--chunk-size", type=int, default=2000, help="Rows fetched per round trip.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")

    def handle(self, *args, symbols=None, anchor=None, write_anchor=None, chunk_size=2000,
               database=DEFAULT_DB_ALIAS, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        decisions = SizingDecision.objects.using(database)
        heads = anchor_load(anchor) if anchor else {}
        if symbols:
            try:
                names = sorted({validate_symbol(symbol) for symbol in symbols})
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        else:
            on_ledger = decisions.order_by("symbol").values_list("symbol", flat=True).distinct()
            names = sorted({*on_ledger, *heads})

        progress, total = None, 0
        if self.stderr.isatty():
            total = sum(row["rows"] for row in decisions.filter(symbol__in=names).values("symbol")
                        .annotate(rows=Count("id")).order_by())
            progress = Progress(self.stderr, "verify_ledger", "rows")
            progress(0, total)

        rows_checked, problems, new_heads = 0, [], []
        for name in names:
            stream = (decisions.filter(symbol=name).order_by("seq", "id").values(*ROW_FIELDS)
                      .iterator(chunk_size=chunk_size))
            tail: dict = {}
            watched = self._watch(stream, tail, rows_checked, progress, total)
            problems.extend(verify_chain(name, watched, head=heads.get(name)))
            rows_checked += tail.get("count", 0)
            if tail.get("last"):
                new_heads.append(ChainHead(name, tail["last"]["seq"], tail["last"]["row_hash"]))
        if progress is not None:
            progress(rows_checked, rows_checked)

        for problem in problems:
            self.stdout.write(self.style.ERROR(str(problem)))
        summary = (f"{_plural(len(names), 'symbol')} checked, {_plural(rows_checked, 'row')} checked, "
                   f"{_plural(len(problems), 'problem')}")
        if problems:
            self.stdout.write(summary)
            if write_anchor:
                self.stderr.write(f"Anchor not written to {write_anchor}: the ledger failed verification.")
            raise CommandError(f"The ledger failed verification: {_plural(len(problems), 'problem')} listed above.")
        self.stdout.write(self.style.SUCCESS(summary))
        if write_anchor:
            anchor_write(write_anchor, new_heads)
            self.stdout.write(f"Anchor written to {write_anchor}: {_plural(len(new_heads), 'chain head')}.")

    @staticmethod
    def _watch(rows: Iterator[dict], tail: dict, done_before: int, progress, total: int) -> Iterator[dict]:
        """Pass rows through, counting them, keeping the last one, and drawing progress."""
        count = 0
        for row in rows:
            count += 1
            tail["count"], tail["last"] = count, row
            if progress is not None and count % 1000 == 0:
                progress(done_before + count, total)
            yield row
