"""`manage.py seed_demo`: a deterministic demo data set (candles, orders, fills, snapshot history).

A thin shell over `sizing_app.demo.seed`: parses options, draws progress, prints the summary.
"""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...demo.market import DEFAULT_DAYS, DEFAULT_HISTORY_HOURS, DEFAULT_SEED, DEMO_SYMBOL_NAMES
from ...demo.seed import DemoProgress, DemoSummary, demo_reset, demo_seed


def _parse_end(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--end {value!r} is not an ISO datetime (e.g. 2025-03-01T12:00Z).") from exc
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


def _parse_symbols(value: str) -> list[str]:
    return [name.strip().upper() for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = (
        "Seed a deterministic demo data set: ~20 USDC/USDT symbols (BTCUSDC, ETHUSDC, ...) with 1h candles, "
        "orders and fills of good, mixed and poor execution quality, then replay the recompute over the "
        "last hours so factor history exists. The same --end and --seed give the same rows; running it "
        "again inserts nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--end", type=_parse_end, default=None,
            help="ISO datetime (UTC if no offset); candles end at the last full hour at or before it. "
            "Default: now, so the latest snapshot is fresh. An older --end makes the data reproducible, "
            "but its latest snapshot is as old as --end, so sizing treats it as stale.",
        )
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"Days of history (default {DEFAULT_DAYS}).")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"Random seed (default {DEFAULT_SEED}).")
        parser.add_argument(
            "--symbols", type=_parse_symbols, default=None,
            help=f"Comma-separated subset (default all {len(DEMO_SYMBOL_NAMES)}: {', '.join(DEMO_SYMBOL_NAMES)}).",
        )
        parser.add_argument(
            "--history-hours", type=int, default=DEFAULT_HISTORY_HOURS,
            help=f"Hourly snapshot buckets to recompute before the current one (default {DEFAULT_HISTORY_HOURS}).",
        )
        parser.add_argument(
            "--reset", action="store_true",
            help="First delete ALL candles, orders and fills of the demo symbols (imported ones too). "
            "Snapshots, recompute runs and sizing decisions are append-only and are kept; buckets "
            "already snapshotted are not recomputed.",
        )

    def handle(self, *args, **options) -> None:
        symbols = options["symbols"]
        self._live = self.stdout.isatty()
        try:
            if options["reset"]:
                deleted = demo_reset(symbols=symbols)
                self.stdout.write(
                    f"Reset: deleted {deleted['candles']} candles, {deleted['orders']} orders, "
                    f"{deleted['fills']} fills (snapshots and decisions are append-only and stay)."
                )
            summary = demo_seed(
                end=options["end"] or timezone.now(), days=options["days"], seed=options["seed"], symbols=symbols,
                history_hours=options["history_hours"], progress=self._progress,
            )
        except ValueError as exc:  # bad arguments and DemoConflictError alike
            self._end_live_line()
            raise CommandError(str(exc)) from exc
        self._end_live_line()
        self._print_summary(summary)

    def _progress(self, step: DemoProgress) -> None:
        text = f"{step.phase} {step.done}/{step.total}: {step.label}"
        if self._live:
            # One line redrawn in place; padding clears a longer previous text.
            self.stdout.write(f"\r{text:<60}", ending="")
            self.stdout.flush()
        elif step.phase == "symbols" or step.done == step.total:
            self.stdout.write(text)

    def _end_live_line(self) -> None:
        if self._live:
            self.stdout.write("\r" + " " * 60 + "\r", ending="")

    def _print_summary(self, summary: DemoSummary) -> None:
        write = self.stdout.write
        days = (summary.end - summary.start).days
        write(self.style.SUCCESS(
            f"Demo data: {len(summary.symbols)} symbols, {summary.start:%Y-%m-%d %H:%M} -> "
            f"{summary.end:%Y-%m-%d %H:%M} UTC ({days} days of 1h bars, seed {summary.seed})"
        ))
        write(f"  candles   {summary.candles:>7}  ({summary.created_candles} new)")
        write(f"  orders    {summary.orders:>7}  ({summary.created_orders} new)")
        write(f"  fills     {summary.fills:>7}  ({summary.created_fills} new)")
        write(
            f"  snapshots {summary.snapshots_total:>7}  ({summary.snapshots_created} new from "
            f"{summary.runs} recompute runs)"
        )
        if summary.latest_as_of is not None:
            freshness = (
                self.style.WARNING("stale: sizing uses 1.0 until the next recompute") if summary.stale else "fresh"
            )
            write(f"  latest bucket {summary.latest_as_of:%Y-%m-%d %H:%M} UTC: {freshness}")
        neutral = {
            name: factor for name, factor in summary.latest_factors.items()
            if name not in summary.sized_up and name not in summary.sized_down
        }
        for label, factors in (("sized up", summary.sized_up), ("sized down", summary.sized_down),
                               ("neutral", neutral)):
            ranked = sorted(factors.items(), key=lambda item: (-item[1], item[0]))
            listing = ", ".join(f"{name} x{factor:.2f}" for name, factor in ranked) or "-"
            write(f"  {label:<10} ({len(factors)}): {listing}")
        for warning in summary.warnings:
            write(self.style.WARNING(f"  warning: {warning}"))
