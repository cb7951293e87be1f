"""Replay the outage journal (SIZING_JOURNAL_PATH) into the ledger now.

Engine processes replay it themselves at their next decision once the database is back; this
is for when none is sizing, or to see that the journal is empty before maintenance.
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError

from ...ledger.journal import JournalCorrupt, journal_path
from ...ledger.replay import journal_replay_pending


class Command(BaseCommand):
    help = "Insert every decision journaled during a database outage into the ledger, then empty the journal."

    def handle(self, *args, **options):
        path = journal_path()
        if path is None:
            raise CommandError("No outage journal is configured: set SIZING_JOURNAL_PATH to enable one.")
        try:
            inserted = journal_replay_pending()
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"The database is still unreachable ({exc}); the journal {path} is untouched. "
                               "Try again once it is back.") from exc
        except JournalCorrupt as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{inserted} journaled decision(s) added to the ledger from {path}; the journal is empty.")
