"""What the fault tests check of the ledger afterwards, from the test process."""
from __future__ import annotations

import subprocess
import sys

from sizing_app.models import SizingDecision
from tests.integration.conftest import ROOT


def ledger_refs() -> list[str]:
    return sorted(SizingDecision.objects.values_list("order_ref", flat=True))


def verify_ledger(stack) -> subprocess.CompletedProcess:
    """`manage.py verify_ledger` in its own process, straight to the database (not through the proxy)."""
    return subprocess.run([sys.executable, "manage.py", "verify_ledger"], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=60)
