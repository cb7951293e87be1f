"""Locate the real market data shared beside the project (../shared/data) for tests.

Local runs without that checkout skip; CI fails instead, so a missing mount can never pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_TRUE_VALUES = {"true", "1"}


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in _TRUE_VALUES


def shared_data_file(relative: str) -> Path:
    """Path of ``SHARED_DATA / relative``; skip the test if it is absent (fail under CI=true or CI=1)."""
    path = SHARED_DATA / relative
    if path.exists():
        return path
    message = f"{path} absent: ../shared/data not beside the project"
    if _running_in_ci():
        pytest.fail(message + " (CI must not skip data-backed tests)")
    pytest.skip(message)
