"""The outbox's tables and the values that pass through it: records on their way in
(`Pending`), rows on their way out (`Row`), per-device state committed with records
(`StateUpdate`), and the writer thread's unit of work (`WriteOp`). See gateway/outbox.py."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from gateway.wire import AckRange

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    body BLOB NOT NULL,
    priority INTEGER NOT NULL DEFAULT 4
);
DROP INDEX IF EXISTS outbox_kind;
CREATE TABLE IF NOT EXISTS bulk (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS bulk_record ON bulk (session, seq);
CREATE TABLE IF NOT EXISTS device_state (
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
);
"""


class OutboxClosed(RuntimeError):
    """The outbox was closed while a caller waited."""


# Pending and Row: one per event on the hot path, so not frozen (a frozen dataclass's
# `__init__` costs an `object.__setattr__` per field: 2-3x the time); never changed once
# made, and hashable by value as before.
@dataclass(slots=True, unsafe_hash=True)
class Pending:
    """A record on its way in: its topic, kind and JSON body without session/seq. A
    `bulk` record is a part of the main record before it (see the module docstring)."""

    topic: str
    kind: str
    body: bytes
    bulk: bool = False
    priority: int | None = None  # eviction class; None: from the kind alone


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """A small per-device value committed atomically with records (e.g. the hash of the
    last settings snapshot sent), so a restart neither resends nor forgets it."""

    device_id: str
    name: str
    value: str


@dataclass(slots=True, unsafe_hash=True)
class Row:
    id: int
    session: int
    seq: int
    topic: str
    kind: str
    created: float
    body: bytes


def settle(future: concurrent.futures.Future[None], error: BaseException | None) -> None:
    """Wake a caller. An awaiting caller may have been cancelled meanwhile (its future is
    then done): that must not stop the writer from waking the rest of the group."""
    if future.done():
        return
    try:
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled between the check and the set


Done = Callable[[BaseException | None], None]  # a posted write's outcome (None: committed)
Keys = Mapping[str, Sequence[str]]  # device id -> keys of new events, in order (outbox_keys)
NO_KEYS: Keys = MappingProxyType({})


class WriteOp:
    """One caller's write. Its outcome goes to `future`, or, for a write posted with `done`
    (the IEC 104 hot path: no Future, no lock per write), to `done` on the writer thread."""

    __slots__ = (
        "ack_bulk_ids", "acks", "done", "due", "future", "into_sqlite", "keys", "probe",
        "records", "removed", "state",
    )  # fmt: skip

    def __init__(
        self,
        records: Sequence[Pending] = (),
        state: Sequence[StateUpdate] = (),
        *,
        keys: Keys = NO_KEYS,
        acks: Sequence[AckRange] = (),
        ack_bulk_ids: Sequence[int] = (),
        probe: bool = False,
        into_sqlite: bool = False,
        done: Done | None = None,
        due: float = 0.0,
    ) -> None:
        self.due = due  # commit by then (monotonic); 0: at once (gateway/outbox_writer.py)
        self.probe = probe  # a write to learn whether the outbox stores again
        self.into_sqlite = into_sqlite  # committed by SQLite itself, the journal's rows with it
        self.records = records
        self.state = state
        self.keys = keys  # per device, the keys of new events among `records` (outbox_keys.py)
        self.acks = acks
        self.ack_bulk_ids = ack_bulk_ids
        self.removed = 0
        self.done = done
        self.future: concurrent.futures.Future[None] | None = (
            concurrent.futures.Future() if done is None else None
        )

    def settle(self, error: BaseException | None) -> None:
        """Tell the caller; a failing `done` is logged, as a Future's callback would be."""
        if self.future is not None:
            settle(self.future, error)
            return
        assert self.done is not None
        try:
            self.done(error)
        except Exception:
            log.exception("a posted write's callback failed")


def latest_states(ops: Sequence[WriteOp]) -> list[tuple[str, str, str]]:
    """(device_id, name, value) to write for a group: one row per device and name, the
    last one queued (an earlier one would be replaced in the same transaction anyway)."""
    latest = {(s.device_id, s.name): s.value for op in ops for s in op.state}
    return [(device_id, name, value) for (device_id, name), value in latest.items()]


# Rows per multi-row INSERT: 7 columns make 448 variables, far under SQLite's 32,766.
INSERT_CHUNK = 64
EXACT_CHUNK = 16  # rows: a group this small is inserted by one statement of its size


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[tuple[object, ...]], tail: str = ""
) -> int | None:
    """`conn.executemany(f"{head} VALUES (?, ...)", rows)`, as multi-row INSERTs: one
    statement step per chunk instead of one per row. Each step lets go of the GIL, and a
    busy guard thread may then hold it while the commit waits: 150 rows inserted and 150
    deleted in one transaction cost ~420 µs of CPU with `executemany` and a row-by-row
    `DELETE ... RETURNING`, ~280 with these statements, and beside one busy thread ~2.9 ms
    (107 ms of wall time) against ~0.9 (25 ms) (bench/outbox_commit.py, one run). Chunks are
    `INSERT_CHUNK` rows or a power of two below it, down to `EXACT_CHUNK`, then the rest in
    one: a small group (one link's commit) is one statement, and a table keeps at most
    2 + `EXACT_CHUNK` statements in the sqlite3 module's cache (128 by default). Returns the
    row id of the last row (None: no rows); a table's new row ids are consecutive, its
    largest plus one, for one writer within one transaction."""
    start, total, last_id = 0, len(rows), None
    while start < total:
        left = total - start
        count = left if left <= EXACT_CHUNK else min(INSERT_CHUNK, 1 << (left.bit_length() - 1))
        chunk = rows[start : start + count]
        statement = _insert(head, len(chunk[0]), count, tail)
        last_id = conn.execute(statement, [v for row in chunk for v in row]).lastrowid
        start += count
    return last_id


@functools.lru_cache(maxsize=128)
def _insert(head: str, width: int, count: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES " + ", ".join([row] * count) + tail


# A state row changes its value in place: `INSERT OR REPLACE` deletes and re-inserts the
# row, so every commit also rewrote a page of the table's key index.
UPSERT_STATE = " ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value"


INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (priority, id);
CREATE INDEX IF NOT EXISTS outbox_record ON outbox (session, seq);
"""
