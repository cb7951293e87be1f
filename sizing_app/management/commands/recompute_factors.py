"""Recompute and persist size-factor snapshots for all active symbols (or the ones named)."""
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from ...recompute.service import DEFAULT_CHUNK_SIZE, bucket_for, recompute_run
from ..progress import Progress


def _as_of(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"--as-of {value!r}: give an ISO-8601 time with a zone, e.g. 2026-11-23T12:00:00Z")
    return bucket_for(moment)


class Command(BaseCommand):
    help = "Compute every active symbol's metrics, score and size factor for the current bucket and persist them."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", action="append", dest="symbols", metavar="SYMBOL",
                            help="Only this symbol (repeatable). Default: every active symbol.")
        parser.add_argument("--as-of", type=str, help="Bucket to compute (ISO-8601 time; default: now).")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                            help="Symbols read and written per transaction.")
        parser.add_argument("--workers", type=int, default=None,
                            help="Chunks computed at once on PostgreSQL (default: one per CPU; SQLite: 1).")

    def handle(self, *args, symbols=None, as_of=None, chunk_size=DEFAULT_CHUNK_SIZE, workers=None, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        if workers is not None and workers < 1:
            raise CommandError("--workers must be at least 1")
        progress = Progress(self.stdout, "recompute", "symbols")
        try:
            run = recompute_run(
                symbol_names=symbols, as_of=_as_of(as_of) if as_of else None, trigger="command",
                chunk_size=chunk_size, progress=progress, workers=workers,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()  # an error mid-run leaves the bar open: its message starts on a line of its own
        if run is None:
            self.stdout.write("A scheduled run already holds this bucket; nothing to do.")
            return
        existing = (f", {run.symbols_existing} already computed for this bucket (kept: snapshots are never "
                    "replaced; pass a later --as-of for new ones)") if run.symbols_existing else ""
        self.stdout.write(
            f"run {run.pk}: bucket {run.as_of:%Y-%m-%d %H:%M}Z, {run.symbols_ok} ok{existing}, "
            f"{run.symbols_failed} failed, {run.duration_seconds:.2f} s, status {run.status}"
        )
        for name, reason in sorted(run.errors.items()):
            self.stderr.write(f"  {name}: {reason}")
        if run.status == run.Status.FAILED:
            raise CommandError("Every symbol failed; see the reasons above and the server log.")
