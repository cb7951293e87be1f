"""Read user data files for import: gzip told by its magic bytes, strict UTF-8, JSON arrays element by element.

Every row keeps its line number and its text exactly as in the file, for error lists and reject files.
"""
from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from .rows import FileError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = "\ufeff"
_BLANK = re.compile(r"[ \t\n\r]*")
_SNIFF_BYTES = 4096


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip (by content, whatever its name says)."""
    path = Path(path)
    if not path.exists():
        raise FileError(f"{path}: no such file")
    if path.is_dir():
        raise FileError(f"{path} is a directory, not a data file")
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def undecodable_error(
    raw: bytes, exc: UnicodeDecodeError, offset: int, line: int | None, compressed: bool
) -> FileError:
    where = f"byte offset {offset + exc.start}" + (" of the decompressed data" if compressed else "")
    line_text = f" (line {line})" if line is not None else ""
    return FileError(
        f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at {where}{line_text} cannot be decoded; "
        "re-save the file as UTF-8"
    )


def corrupt_error(path: Path, exc: Exception) -> FileError:
    return FileError(f"{path}: corrupt or truncated gzip data ({exc})")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line text with its line ending) for a text file; FileError on bad bytes or no content."""
    path = Path(path)
    compressed = is_gzip(path) if path.is_file() else False
    offset = 0
    number = 0
    try:
        with open_binary(path) as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise undecodable_error(raw, exc, offset, number, compressed) from None
                if number == 1 and text.startswith(UTF8_BOM):
                    text = text[1:]
                offset += len(raw)
                yield number, text
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise corrupt_error(path, exc) from None
    if number == 0:
        raise FileError("empty file (0 bytes)")


def read_text(path: Path) -> str:
    """The whole file as text (for JSON); FileError on bad bytes."""
    path = Path(path)
    try:
        with open_binary(path) as handle:
            data = handle.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise corrupt_error(path, exc) from None
    if not data:
        raise FileError("empty file (0 bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise undecodable_error(data, exc, 0, line, is_gzip(path)) from None
    return text[1:] if text.startswith(UTF8_BOM) else text


def sniff(path: Path) -> str:
    """The first non-blank character of the (decompressed) file, to tell JSON from CSV."""
    path = Path(path)
    try:
        with open_binary(path) as handle:
            head = handle.read(_SNIFF_BYTES)
            while head and not head.lstrip(b"\xef\xbb\xbf \t\r\n"):
                more = handle.read(_SNIFF_BYTES)
                if not more:
                    break
                head = more
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise corrupt_error(path, exc) from None
    if not head:
        raise FileError("empty file (0 bytes)")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise FileError("empty file (only blank lines)")
    return chr(stripped[0]) if stripped[0] < 128 else ""


def count_lines(path: Path) -> int:
    """Number of lines, read in blocks (only used to give a progress bar its total)."""
    total = 0
    last = b"\n"
    with open_binary(path) as handle:
        while block := handle.read(1 << 20):
            total += block.count(b"\n")
            last = block[-1:]
    return total + (last != b"\n")


def _reject_constant(name: str) -> float:
    # NaN / Infinity are not JSON, but Python's json accepts them; keep them so the row check names them.
    return float(name.replace("-Infinity", "-inf").replace("Infinity", "inf"))


class JsonElement(NamedTuple):
    line: int  # where the element starts
    element: int  # 1-based position in the array
    value: Any
    raw: str  # the element's text exactly as in the file


def iter_json_array(path: Path, *, parse_float: Callable[[str], Any] = float) -> Iterator[JsonElement]:
    """Each element of a top-level JSON array, with its line, position and exact text.

    Elements are decoded one at a time, so each keeps the line it starts on and its exact text
    (a reject file then holds the rejected elements untouched). FileError on syntax errors.
    """
    text = read_text(path)
    decoder = json.JSONDecoder(parse_float=parse_float, parse_constant=_reject_constant)
    position = _BLANK.match(text, 0).end()
    if position == len(text):
        raise FileError("empty file (only blank lines)")
    if text[position] != "[":
        raise FileError(_syntax("expected a JSON array starting with '['", text, position))
    position = _BLANK.match(text, position + 1).end()
    line, counted_to, element = 1, 0, 0
    if position < len(text) and text[position] == "]":
        _expect_end(text, position + 1)
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise FileError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        line += text.count("\n", counted_to, position)
        counted_to = position
        element += 1
        yield JsonElement(line, element, value, text[position:end])
        position = _BLANK.match(text, end).end()
        if position >= len(text):
            raise FileError(_syntax("the JSON array is not closed (truncated file?)", text, position))
        if text[position] == ",":
            position = _BLANK.match(text, position + 1).end()
            continue
        if text[position] == "]":
            _expect_end(text, position + 1)
            return
        raise FileError(_syntax("expected ',' or ']' between array elements", text, position))


def _syntax(message: str, text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"invalid JSON at line {line} column {column}: {message}"


def _expect_end(text: str, position: int) -> None:
    position = _BLANK.match(text, position).end()
    if position != len(text):
        raise FileError(_syntax("unexpected data after the JSON array", text, position))


def json_decimal(token: str) -> Decimal:
    """parse_float for money: the exact decimal the file wrote, never a binary float."""
    return Decimal(token)
