"""How admin shows values: UTC times, numbers, factors and score components, one format each."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.utils.html import format_html, format_html_join

from ..domain import scoring

EMPTY = "—"
ROW_ID = re.compile(r"[0-9]{1,18}")  # a 64-bit primary key


def utc_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return EMPTY if moment is None else moment.astimezone(UTC).strftime(fmt)


def number_text(value: Any) -> str:
    """A stored number exactly as recorded: floats by repr (round-trips), None as a dash."""
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return repr(value)
    return str(value)


def factor_text(value: float | None) -> str:
    return EMPTY if value is None else f"{value:.2f}x"


def components_table(components: Any, *, score: float | None = None):
    """A snapshot's `components` JSON as an HTML table, escaped, in the scoring's component order."""
    if not isinstance(components, dict) or not components:
        return "no components recorded"
    order = {component.name: index for index, component in enumerate(scoring.COMPONENTS)}
    names = sorted(components, key=lambda name: (order.get(name, len(order)), name))
    columns = ("value", "sample", "confidence", "weight", "contribution")
    rows = []
    for name in names:
        entry = components[name] if isinstance(components[name], dict) else {}
        rows.append((name, *(number_text(entry.get(column)) for column in columns)))
    body = format_html_join(
        "", '<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows
    )
    score_row = (
        format_html('<tr><th scope="row">score</th><td colspan="4"></td><td><strong>{}</strong></td></tr>',
                    number_text(score))
        if score is not None else ""
    )
    return format_html(
        '<table id="components" class="sizing-components"><thead><tr><th>component</th><th>value</th>'
        "<th>sample</th><th>confidence</th><th>weight</th><th>contribution</th></tr></thead>"
        "<tbody>{}{}</tbody></table>",
        body, score_row,
    )
