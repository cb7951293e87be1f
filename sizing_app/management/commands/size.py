"""Size one order the way the engine does, record it on the ledger, and print the breakdown."""
from django.core.management.base import BaseCommand, CommandError

from ...signal_generator import SizingUnavailable, size_decide


class Command(BaseCommand):
    help = "Size an order for SYMBOL with gross target GROSS; the decision is written to the ledger."

    def add_arguments(self, parser):
        parser.add_argument("symbol")
        parser.add_argument("gross", help="Gross target size (a non-negative number).")
        parser.add_argument("--order-ref", default="", help="The engine's order reference, kept on the ledger.")

    def handle(self, *args, symbol, gross, order_ref, **options):
        try:
            gross_target = float(gross)
        except ValueError:
            raise CommandError(f"GROSS must be a number, got {gross!r}") from None
        try:
            decision = size_decide(symbol, gross_target, order_ref=order_ref, caller="cli:size")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except SizingUnavailable as exc:
            raise CommandError(f"{exc}. No size was given. Check that the database in DATABASE_URL is up.") from exc
        rows = [
            ("symbol", decision.symbol),
            ("gross target", f"{decision.gross_target:.10g}"),
            ("after inverse volatility", f"{decision.inverse_vol_size:.10g}"),
            ("x ATR regime scale", f"{decision.regime_multiplier:.4f}"),
            ("x Sharpe multiplier", f"{decision.sharpe_multiplier:.4f}"),
            ("intel factor (proposed)", f"{decision.intel_factor:.4f}"),
            ("x intel factor (applied)", f"{decision.applied_factor:.4f}"),
            ("= final size", f"{decision.final_size:.10g}"),
            ("mode", decision.mode + (f" (override {decision.override_id})" if decision.override_id else "")),
            ("score", "-" if decision.score is None else f"{decision.score:+.4f}"),
            ("snapshot", decision.snapshot_id or "none"),
            ("stale", "yes" if decision.stale else "no"),
            ("fallback", decision.fallback_reason or "-"),
            ("ledger", f"decision {decision.pk}, chain seq {decision.seq}" if decision.pk is not None else
             f"database unreachable: journaled as {decision.journal_ref}, replayed when it returns"),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label:<{width}}  {value}")
