"""The outage journal: decisions made while the ledger database is unreachable, kept on local disk.

Off by default, and then sizing fails closed (SizingUnavailable). With SIZING_JOURNAL_PATH set,
a decision the database cannot take is appended to that file and fsynced *before* its size is
handed out, then replayed into the ledger, in order and chained onto the heads of that moment,
once the database answers again: by the next decision of any process sharing the file, or by
`manage.py replay_journal`.

One line per call, so a batch is all its rows or none. Appends and the replay hold an exclusive
flock on the file, so every process on one host can share it. Replay is idempotent: each row
carries its journal_ref (unique in the ledger) and rows already there are skipped, so a crash
between the ledger's commit and the emptying of the file records nothing twice.
"""
from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


class JournalCorrupt(RuntimeError):
    """A complete journal line cannot be read back: nothing is replayed until someone looks."""


def journal_path() -> Path | None:
    configured = getattr(settings, "SIZING_JOURNAL_PATH", "")
    return _configured_path(configured) if configured else None


@functools.lru_cache(maxsize=8)
def _configured_path(configured) -> Path:
    return Path(configured)  # cached: journal_pending asks on every decision


def journal_pending() -> bool:
    """True when a journal is configured and holds entries (one stat: cheap enough per decision)."""
    path = journal_path()
    if path is None:
        return False
    try:
        return os.stat(path).st_size > 0
    except FileNotFoundError:
        return False


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# (path, device, inode) of journal files whose directory chain this process made durable (see _locked).
_durable_files: set[tuple[Path, int, int]] = set()


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The journal file, open for reading and appending, under an exclusive lock.

    A file or directory is only durable once the directory holding its entry is fsynced, or a
    crash could lose the journal and with it sizes already handed out. Who created them cannot
    tell (another process may have, and died before its fsync): so once per process and file
    (a journal moved aside and started afresh is a new file), under the lock, the file's
    directory and every one above it are fsynced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        status = os.fstat(fd)
        identity = (path, status.st_dev, status.st_ino)
        if identity not in _durable_files:
            directory = path.absolute().parent
            for entry_holder in (directory, *directory.parents):
                _fsync_directory(entry_holder)
            _durable_files.add(identity)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _encode(value: Any):
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat(timespec="microseconds")}
    raise TypeError(f"a journal entry cannot hold {type(value).__name__}")


def _decode(entry: dict) -> dict:
    return {
        key: datetime.fromisoformat(value["$datetime"]) if isinstance(value, dict) else value
        for key, value in entry.items()
    }


def _cut_torn_tail(fd: int) -> int:
    """Drop an incomplete last line (a writer killed inside write(): never acknowledged); return the size."""
    size = os.fstat(fd).st_size
    keep = size
    while keep > 0:  # back to just after the last newline, a block at a time
        block_start = max(0, keep - (1 << 16))
        os.lseek(fd, block_start, os.SEEK_SET)
        block = os.read(fd, keep - block_start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = block_start + newline + 1
            break
        keep = block_start
    if keep < size:
        logger.warning("outage journal ends in an incomplete entry (%d bytes) that was never acknowledged; "
                       "dropped", size - keep)
        os.ftruncate(fd, keep)
        os.fsync(fd)
    return keep


class _JournalIndex:
    """This process's index of the keyed entries in a journal file, read incrementally.

    Between replays (which empty it) the file only grows by whole lines, so the index reads what
    was appended since its last look: a repeat lookup costs the new bytes, not the whole file. The
    last bytes it read are checked first: a file emptied and written again since is read afresh.
    """

    _MARK = 64

    def __init__(self):
        self.identity: tuple[int, int] | None = None
        self.offset = 0
        self.mark = b""
        self.entries: dict[Any, dict[str, Any]] = {}

    def _unchanged(self, fd: int, end: int, identity: tuple[int, int]) -> bool:
        if identity != self.identity or end < self.offset:
            return False
        start = max(0, self.offset - self._MARK)
        return os.pread(fd, self.offset - start, start) == self.mark

    def read(self, fd: int, end: int, key: Callable[[dict[str, Any]], Any]) -> dict[Any, dict[str, Any]]:
        status = os.fstat(fd)
        identity = (status.st_dev, status.st_ino)
        if not self._unchanged(fd, end, identity):
            self.identity, self.offset, self.mark, self.entries = identity, 0, b"", {}
        if end > self.offset:
            data = os.pread(fd, end - self.offset, self.offset)
            for line in data.splitlines():
                try:
                    for entry in json.loads(line):
                        entry = _decode(entry)
                        if (entry_key := key(entry)) is not None:
                            self.entries.setdefault(entry_key, entry)
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # an unreadable line stops the replay, with its number (journal_replay)
            self.offset = end
            self.mark = data[-self._MARK:] if len(data) >= self._MARK else os.pread(
                fd, min(end, self._MARK), end - min(end, self._MARK))
        return self.entries


_indexes: dict[Path, _JournalIndex] = {}


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def journal_append(
    rows: list[dict[str, Any]], *, key: Callable[[dict[str, Any]], Any] = lambda row: None,
    repeat: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Write one call's decision rows durably (fsync); return them with their journal_ref.

    A row whose key (not None) is already in the journal is not written again: `repeat(entry,
    row)` gives what to return in its place (or raises, and then nothing is written). Returned
    entries carry "replayed": whether they are such an earlier entry. The lookup and the write
    happen under the file's lock, so two processes repeating one order journal it once.
    Raises OSError when the disk will not take them: then no size may be handed out either.
    """
    path = journal_path()
    if path is None:
        raise RuntimeError("no outage journal is configured (SIZING_JOURNAL_PATH)")
    with _locked(path) as fd:
        start = _cut_torn_tail(fd)
        journaled = _indexes.setdefault(path, _JournalIndex()).read(fd, start, key)
        results: list[dict[str, Any] | None] = []
        entries = []
        for row in rows:
            row_key = key(row)
            earlier = journaled.get(row_key) if row_key is not None else None
            if earlier is not None and repeat is not None:
                results.append(repeat(earlier, row))
            else:
                entry = {**row, "journal_ref": str(uuid.uuid4())}
                entries.append(entry)
                results.append(None)
        if entries:
            line = (json.dumps(entries, default=_encode, allow_nan=False, separators=(",", ":")) + "\n").encode()
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            except BaseException:
                # Not acknowledged: take the partial line back, or the next append would be glued to it.
                os.ftruncate(fd, start)
                os.fsync(fd)
                raise
            logger.warning("ledger database unreachable: %d decision(s) journaled to %s", len(entries), path)
    fresh = iter(entries)
    return [result if result is not None else {**next(fresh), "replayed": False} for result in results]


def quarantine_path(path: Path) -> Path:
    """Where journaled rows that cannot go on the ledger as they are wait for an operator."""
    return path.with_name(path.name + ".quarantine")


def _quarantine(path: Path, set_aside: list[tuple[dict[str, Any], str]]) -> None:
    """Append rows with their reasons to the quarantine file, durably, once each (by journal_ref)."""
    target = quarantine_path(path)
    kept = set()
    if target.exists():
        for line in target.read_text().splitlines():
            try:
                kept.add(json.loads(line)["entry"]["journal_ref"])
            except (ValueError, KeyError, TypeError):
                continue
    lines = [json.dumps({"reason": reason, "entry": row}, default=_encode, separators=(",", ":")) + "\n"
             for row, reason in set_aside if row["journal_ref"] not in kept]
    if not lines:
        return
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, "".join(lines).encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    _fsync_directory(target.absolute().parent)
    for row, reason in set_aside:
        logger.error("journaled decision %s set aside in %s: %s", row["journal_ref"], target, reason)


def journal_replay(append: Callable[[list[dict[str, Any]]], tuple[int, list[tuple[dict[str, Any], str]]]]) -> int:
    """Hand every journaled row, oldest first, to `append` (one transaction), then empty the file.

    `append` returns how many rows it inserted (rows already in the ledger are skipped) and the rows
    it set aside with their reasons, which go to the quarantine file (see quarantine_path) before
    the journal is emptied. If it raises (the database is down again), the file is left as it was.
    """
    path = journal_path()
    if path is None:
        return 0
    with _locked(path) as fd:
        if _cut_torn_tail(fd) == 0:
            return 0
        os.lseek(fd, 0, os.SEEK_SET)
        rows = []
        for number, line in enumerate(_read_all(fd).splitlines(), start=1):
            try:
                rows.extend(_decode(entry) for entry in json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise JournalCorrupt(f"{path} line {number} cannot be read ({exc}); nothing was replayed. "
                                     "Move the file aside, repair or archive that line, and replay again.") from exc
        inserted, set_aside = append(rows)
        if set_aside:
            _quarantine(path, set_aside)
        os.ftruncate(fd, 0)
        os.fsync(fd)
    logger.warning("outage journal %s replayed: %d row(s) inserted, %d already in the ledger, %d set aside",
                   path, inserted, len(rows) - inserted - len(set_aside), len(set_aside))
    return inserted
