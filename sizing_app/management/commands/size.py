"""Size one order the way the engine does, record it on the ledger, and print the breakdown."""
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from ...signal_generator import size_decide
from ...sizing.errors import SizingInsideTransaction, SizingUnavailable
from ...sizing.validation import gross_target_error


def gross_target_argument(text: str) -> Decimal:
    """GROSS as the API reads a JSON number (exactly, as a Decimal), so both refuse the same values alike."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CommandError(gross_target_error(text)) from None


class Command(BaseCommand):
    help = "Size an order for SYMBOL with gross target GROSS; the decision is written to the ledger."

    def add_arguments(self, parser):
        parser.add_argument("symbol")
        parser.add_argument("gross", help="Gross target size: 0, or a positive number up to SIZING_MAX_GROSS.")
        parser.add_argument("--order-ref", default="",
                            help="The engine's order reference, kept on the ledger; sizing it again with the "
                                 "same inputs shows the original decision instead of sizing twice.")
        parser.add_argument("--neutral-if-unknown", action="store_true",
                            help="Size an unknown or inactive symbol at x1.0 instead of refusing it "
                                 "(an unknown one is registered).")

    def handle(self, *args, symbol, gross, order_ref, neutral_if_unknown, **options):
        try:
            decision = size_decide(symbol, gross_target_argument(gross), order_ref=order_ref, caller="cli:size",
                                   neutral_if_unknown=neutral_if_unknown)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except (SizingUnavailable, SizingInsideTransaction) as exc:
            raise CommandError(f"{exc}. No size was given. Check that the database in DATABASE_URL is up "
                               "and writable.") from exc
        if decision.replayed:
            self.stdout.write(f"order_ref {order_ref!r} was sized before: its original decision, nothing written.")
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
