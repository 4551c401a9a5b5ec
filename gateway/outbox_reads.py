"""The outbox's reading side, used from the event loop: the rows in order, what is still
held, per-device state and recent event keys. One connection of its own: WAL readers
never block the writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from gateway import outbox_keys
from gateway.outbox_lane import JournalLane
from gateway.outbox_retention import Usage
from gateway.outbox_rows import Row
from gateway.outbox_tail import CommittedTail

NEAR_CAP_FRACTION = 0.9


class OutboxReads:
    """Mixed into `Outbox`, which opens `_reader`, runs `_writer` (which sets the event
    in `_rows_wanted`), and keeps `_usage`, the depths and the caps."""

    _reader: sqlite3.Connection | None
    _usage: Usage
    _loop: asyncio.AbstractEventLoop | None
    _rows_wanted: asyncio.Event | None
    _rows_wanted_lock: threading.Lock
    _tail: CommittedTail
    _lane: JournalLane
    _lane_lock: threading.Lock
    _writer: threading.Thread | None
    _depth: int
    _bulk_depth: int
    max_records: int
    max_bytes: int

    def read(self, limit: int, after: tuple[int, int] = (0, 0)) -> list[Row]:
        """The oldest `limit` rows after record id `after` (session, seq), in order. By id,
        not by row id: SQLite reuses row ids once the table is empty. Cheap (WAL readers
        never block the writer); the rows just committed come from memory (outbox_tail,
        and those the journal holds for SQLite from `outbox_lane`)."""
        held = self._tail.after(limit, after)
        if held is not None:
            return held
        assert self._reader is not None
        with self._lane_lock:  # the rows the journal holds follow every row in SQLite
            cur = self._reader.execute(
                "SELECT id, session, seq, topic, kind, created, body FROM outbox "
                "WHERE (session, seq) > (?, ?) ORDER BY session, seq LIMIT ?",
                (*after, limit),
            )
            rows = [Row(*r) for r in cur.fetchall()]
            if len(rows) < limit:
                last = (rows[-1].session, rows[-1].seq) if rows else after
                rows += self._lane.rows_after(last, limit - len(rows))
        return rows

    def count_upto(self, last: tuple[int, int]) -> int:
        """Rows still held up to record id `last` (those sent and not yet acknowledged),
        those the journal holds for SQLite included (`outbox_lane.py`)."""
        assert self._reader is not None
        with self._lane_lock:
            cur = self._reader.execute(
                "SELECT COUNT(*) FROM outbox WHERE (session, seq) <= (?, ?)", last
            )
            return int(cur.fetchone()[0]) + self._lane.held_upto(last)

    def read_bulk(self, limit: int = 1) -> list[Row]:
        """The oldest `limit` bulk rows, in order."""
        assert self._reader is not None
        cur = self._reader.execute(
            "SELECT id, session, seq, topic, kind, created, body FROM bulk ORDER BY id LIMIT ?",
            (limit,),
        )
        return [Row(*r) for r in cur.fetchall()]

    def oldest_age(self) -> float:
        assert self._reader is not None
        row = self._reader.execute("SELECT MIN(created) FROM outbox").fetchone()
        return max(0.0, time.time() - row[0]) if row and row[0] is not None else 0.0

    def device_state(self) -> dict[tuple[str, str], str]:
        """Every saved per-device value, e.g. last snapshot hashes."""
        assert self._reader is not None
        cur = self._reader.execute("SELECT device_id, name, value FROM device_state")
        return {(d, n): v for d, n, v in cur.fetchall()}

    def recent_keys(self) -> dict[str, list[str]]:
        """Per device, the keys of the last events stored, oldest first (outbox_keys.py)."""
        assert self._reader is not None
        with self._lane_lock:
            keys = outbox_keys.read(self._reader)
            for device_id, key in self._lane.replay_keys():
                keys.setdefault(device_id, []).append(key)
        return keys

    def expect_rows(self, wake: asyncio.Event) -> None:
        """Have `wake` set (on the bound loop) when the writer next commits rows: once, for
        the first commit after this call. Call it before reading, so that rows committed
        after the read still wake the reader. A commit nobody waits for wakes no loop: the
        forwarder, busy sending or lingering, is not woken for every commit."""
        assert self._loop is not None, "bind_loop() first"
        with self._rows_wanted_lock:
            self._rows_wanted = wake

    def _wake_reader(self) -> None:
        """On the writer thread, after a commit that stored rows."""
        with self._rows_wanted_lock:
            wake, self._rows_wanted = self._rows_wanted, None
        if wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(wake.set)

    @property
    def writer_alive(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bulk_depth(self) -> int:
        return self._bulk_depth

    @property
    def size_bytes(self) -> int:
        """Bytes of records held, both lanes."""
        return self._usage.bytes

    @property
    def fill(self) -> float:
        """How full the outbox is: the larger of its rows' and its bytes' share of the cap."""
        return max(self._usage.rows / self.max_records, self._usage.bytes / self.max_bytes)

    @property
    def near_cap(self) -> bool:
        return self.fill >= NEAR_CAP_FRACTION
