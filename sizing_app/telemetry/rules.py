"""The rules every telemetry intake follows, files and API alike: one type for a rejected row, one conflict rule.

A row already stored with the same values is a re-send and changes nothing; a row whose key is stored
with different values is a conflict, refused: stored telemetry is never overwritten (orders alone may
move forward, see ingest.py). No Django here: the file parsers use this too.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RowError:
    """One rejected row: where it is, why, and (from a file) its text exactly as read.

    line: the line number in a file, or the row's 0-based index in a posted JSON array.
    element: the 1-based position in a file's JSON array, which locates rows of one-line JSON files.
    field: the field to blame, when one is (the API names it).
    """

    line: int
    reason: str
    raw: str = ""
    element: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.element is None else f"line {self.line}, element {self.element}"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        """The API's shape of a row error: {row, field, message}."""
        return {"row": self.line, "field": self.field, "message": self.reason}


def changed_fields(stored: Mapping[str, Any], incoming: Mapping[str, Any], names: Iterable[str], *,
                   same: Callable[[Any, Any], bool] = operator.eq) -> list[str]:
    """The fields whose incoming value differs from the stored one: none means a re-send, any a conflict."""
    return [name for name in names if not same(stored[name], incoming[name])]


def describe_changes(names: Iterable[str], stored: Mapping[str, Any], incoming: Mapping[str, Any], *,
                     source: str, show: Callable[[str, Any], str] = lambda name, value: f"{value!s}") -> str:
    """"price 4.000001 stored, 4.000002 in file, ...": each changed field, its stored and its incoming value."""
    return ", ".join(f"{name} {show(name, stored[name])} stored, {show(name, incoming[name])} {source}"
                     for name in names)
