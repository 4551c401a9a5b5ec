"""The outbox's journal: events made durable by one append and one `fdatasync`, stored in
SQLite later, many commits' worth in one transaction.

Why: on one IEC 104 link the relay's window (k = 12) lets about 11 events share a commit,
and an SQLite commit of 11 events (their rows and replay keys, an acknowledgement's
deletion, the WAL's pages, its `fdatasync`) cost the writer thread 35-46 µs of CPU per
event, where a journal append and its `fdatasync` cost 7-10, and SQLite 7-8 at 200 events
per transaction. Measured with the journal: the writer alone 0.79x, the agent on one link
about 5 % cheaper (the rest of the writer's cost is its wake-ups; docs/performance.md).
The durability rule is unchanged: an event is acknowledged to its device only once the
`fdatasync` holding it returned.

The file (`<outbox>.journal`) is a sequence of groups, each one writer commit's main
rows and their replay keys:

    header  "RJ01", payload length (u32), CRC-32 of the payload (u32)
    payload session (i64), first seq (i64), first row id (i64), created (f64),
            rows (u32), keys (u32), per row: topic, kind, body, priority (u8);
            per key: device id, key (each string a u32 length and its bytes; the
            seqs and row ids run on from the first)

The outbox stores the groups in SQLite in order, and in the same transaction records the
last (session, seq) stored (`meta.journal_applied`); then it empties the file. At open,
the groups past that mark are stored before anything else: a group stored before a crash
that came before the file was emptied is not stored twice. Only the last append can be
torn (each append is synced before the next is written); reading stops at the first
group whose length or CRC does not hold, so a torn append, whose events were never
acknowledged, is dropped.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"RJ01"
_HEADER = struct.Struct("<4sII")
_GROUP = struct.Struct("<qqqdII")
_LEN = struct.Struct("<I")
_PRIORITY = struct.Struct("<B")


# A main row: its id, session, seq, topic, kind, created, body and priority.
JournalRow = tuple[int, int, int, str, str, float, bytes, int]


class JournalError(OSError):
    """An append that did not complete: the journal is not used again in this session."""


@dataclass(slots=True)
class Group:
    """One commit's main rows, their seqs and row ids consecutive, and their replay keys
    (device id, key)."""

    rows: list[JournalRow]
    keys: list[tuple[str, str]] = field(default_factory=list)

    @property
    def last(self) -> tuple[int, int]:
        return self.rows[-1][1], self.rows[-1][2]


def encode(group: Group) -> bytes:
    first_id, session, first, _, _, created, _, _ = group.rows[0]
    parts = [_GROUP.pack(session, first, first_id, created, len(group.rows), len(group.keys))]
    for _, _, _, topic, kind, _, body, priority in group.rows:
        for text in (topic.encode(), kind.encode(), body):
            parts += (_LEN.pack(len(text)), text)
        parts.append(_PRIORITY.pack(priority))
    for device_id, key in group.keys:
        for text in (device_id.encode(), key.encode()):
            parts += (_LEN.pack(len(text)), text)
    payload = b"".join(parts)
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_all(data: bytes) -> list[Group]:
    """Every whole group from the start of `data`; stops at the first that is not."""
    groups, at = [], 0
    while at + _HEADER.size <= len(data):
        magic, size, crc = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + _HEADER.size + size]
        if magic != MAGIC or len(payload) != size or zlib.crc32(payload) != crc:
            break
        groups.append(_decode(payload))
        at += _HEADER.size + size
    return groups


def _decode(payload: bytes) -> Group:
    session, first, first_id, created, n_rows, n_keys = _GROUP.unpack_from(payload, 0)
    at = _GROUP.size

    def text() -> bytes:
        nonlocal at
        (size,) = _LEN.unpack_from(payload, at)
        at += _LEN.size + size
        return payload[at - size : at]

    group = Group([])
    for i in range(n_rows):
        topic, kind, body = text().decode(), text().decode(), text()
        (priority,) = _PRIORITY.unpack_from(payload, at)
        at += _PRIORITY.size
        group.rows.append((first_id + i, session, first + i, topic, kind, created, body, priority))
    for _ in range(n_keys):
        group.keys.append((text().decode(), text().decode()))
    return group


class Journal:
    """The file, on the outbox's writer thread only (and at open, before it starts)."""

    def __init__(self, path: Path, sync: bool = True) -> None:
        self.path = path
        self.sync = sync  # False: appends are not synced (an outbox that is not either)
        self._fd: int | None = None
        self._size = 0

    def open(self) -> list[Group]:
        """Open (or create) the file; the whole groups it holds."""
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if not existed:  # the file's name must survive a power loss as well as its data
            _sync_directory(self.path.parent)
        with open(self._fd, "rb", closefd=False) as f:
            data = f.read()
        self._size = len(data)
        return decode_all(data)

    def append(self, data: bytes) -> None:
        """Durable on return. Raises `JournalError` (the file then ends where it did)."""
        assert self._fd is not None
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"journal: {written} of {len(data)} bytes written")
            if self.sync:
                os.fdatasync(self._fd)
        except OSError as exc:
            # A torn group at the end is dropped when read back anyway.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise JournalError(str(exc)) from exc
        self._size += len(data)

    @property
    def size(self) -> int:
        return self._size

    def empty(self) -> None:
        """After what it held was committed to SQLite (no sync needed: the mark tells)."""
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        self._size = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
