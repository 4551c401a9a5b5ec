"""The outbox's reading side, used from the event loop: the rows in order, what is still
held, per-device state. One connection of its own: WAL readers never block the writer."""

from __future__ import annotations

import sqlite3
import time

from gateway.outbox_retention import Usage
from gateway.outbox_rows import Row

NEAR_CAP_FRACTION = 0.9


class OutboxReads:
    """Mixed into `Outbox`, which opens `_reader` and keeps `_usage` and the caps."""

    _reader: sqlite3.Connection | None
    _usage: Usage
    max_records: int
    max_bytes: int

    def read(self, limit: int, after: tuple[int, int] = (0, 0)) -> list[Row]:
        """The oldest `limit` rows after record id `after` (session, seq), in order. By id,
        not by row id: SQLite reuses row ids once the table is empty. Cheap (WAL readers
        never block the writer)."""
        assert self._reader is not None
        cur = self._reader.execute(
            "SELECT id, session, seq, topic, kind, created, body FROM outbox "
            "WHERE (session, seq) > (?, ?) ORDER BY session, seq LIMIT ?",
            (*after, limit),
        )
        return [Row(*r) for r in cur.fetchall()]

    def count_upto(self, last: tuple[int, int]) -> int:
        """Rows still held up to record id `last` (those sent and not yet acknowledged)."""
        assert self._reader is not None
        cur = self._reader.execute(
            "SELECT COUNT(*) FROM outbox WHERE (session, seq) <= (?, ?)", last
        )
        return int(cur.fetchone()[0])

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
