"""Register an exchange's symbols with their base and quote assets (a Binance exchangeInfo file)."""
from django.core.management.base import BaseCommand, CommandError

from ...telemetry.symbols import symbols_import_exchange_info


class Command(BaseCommand):
    help = ("Register the symbols of an exchange's symbol list (Binance GET /api/v3/exchangeInfo saved as JSON) "
            "with their base and quote assets; all entries or none.")

    def add_arguments(self, parser):
        parser.add_argument("path", help='exchangeInfo.json: {"symbols": [{"symbol", "baseAsset", "quoteAsset"}]}')

    def handle(self, *args, path, **options):
        try:
            counts = symbols_import_exchange_info(path)
        except ValueError as exc:
            raise CommandError(f"{exc}. Nothing was registered.") from exc
        self.stdout.write(f"{counts['created']} symbol(s) registered, {counts['updated']} given their assets, "
                          f"{counts['unchanged']} already known")
