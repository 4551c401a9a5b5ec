"""Which outbox commits go through the journal, and what waits for SQLite meanwhile.

A commit of the hot path (main rows, their replay keys, acknowledgements) is made durable
by a journal append (`outbox_journal.py`), and waits here, with the acknowledgements that
came meanwhile, until one SQLite transaction stores them all (`store`, within the writer's
transaction): when `APPLY_AFTER_S` passed since the first of them, when `APPLY_ROWS` rows
or `APPLY_BYTES` wait, before any commit that does not go through the journal, and at
close. Not through the journal: a commit with bulk rows, per-device state, a bulk row's
acknowledgement (the next chunk waits on it), or rows that only fit under the outbox's
caps once others are evicted; these take the SQLite transaction, which stores what waits
here first, so SQLite keeps commit order. So do all commits after an append failed (the
disk full, say): the file is not used again in that session; and all commits while
SQLite fails to store what waits here (they fail as well, and are refused), so that no
more waits than one store's worth.

What waits here is already in the forwarder's hands (`outbox_tail.py` holds each commit's
rows), acknowledged to the devices and counted in the outbox's usage and depth. The
outbox's reads that go to SQLite add it (`read` after SQLite's rows, `count_upto`,
`recent_keys`), under a lock the writer holds while it moves rows into SQLite; only the
oldest row's age leaves it out.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Sequence

from gateway import outbox_keys
from gateway import outbox_retention as retention
from gateway.outbox_journal import Group, Journal, JournalError, encode
from gateway.outbox_retention import Usage
from gateway.outbox_rows import Row, WriteOp, insert_rows

APPLY_AFTER_S = 0.1  # what the journal holds is in SQLite this soon
APPLY_ROWS = 1024  # or once this many rows wait (outbox_tail.MAX_ROWS is 4,096)
APPLY_BYTES = 1 << 20  # or this many bytes (outbox_tail.MAX_BYTES is 4 MiB)
MARK = "journal_applied"  # meta: "<session>:<seq>" of the last row stored from the journal

ROW_COLUMNS = "(id, session, seq, topic, kind, created, body, priority)"


class JournalLane:
    """On the outbox's writer thread; the reads (`rows_after`, `replay_keys`, `held_upto`)
    also from the event loop, under the outbox's `_lane_lock`."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal  # None: every commit takes the SQLite transaction
        self.groups: list[Group] = []
        self.acks: list[WriteOp] = []  # acknowledgements not yet carried out
        self.rows = 0
        self.bytes = 0
        self._since: float | None = None  # monotonic time of the oldest waiting
        self._retry_at = 0.0  # after a failed store, not before then

    def takes(self, ops: Sequence[WriteOp]) -> bool:
        """Whether this commit may go through the journal (the caps are the caller's)."""
        if self.journal is None or self._retry_at:
            return False  # SQLite failed to store what is held: nothing more until it does
        if not self.groups and not any(op.records for op in ops):
            return False  # acknowledgements alone, nothing to share a transaction with
        for op in ops:
            if op.state or op.ack_bulk_ids or op.into_sqlite or any(r.bulk for r in op.records):
                return False
        return True

    def append(self, group: Group | None, acks: Sequence[WriteOp]) -> None:
        """Durable on return (the group, if any). Raises `JournalError`; the lane then stops
        taking commits, and what it held waits for the next SQLite transaction."""
        assert self.journal is not None
        if group is not None:
            try:
                self.journal.append(encode(group))
            except JournalError:
                self.journal = None
                raise
            self.groups.append(group)
            self.rows += len(group.rows)
            self.bytes += sum(len(row[6]) for row in group.rows)
        self.acks.extend(acks)
        if self._since is None and (group is not None or acks):
            self._since = time.monotonic()

    def due(self) -> float | None:
        """When what waits must be in SQLite (monotonic; 0.0: now), None: nothing waits."""
        if self._since is None:
            return None
        if self.rows >= APPLY_ROWS or self.bytes >= APPLY_BYTES:
            return self._retry_at
        return max(self._since + APPLY_AFTER_S, self._retry_at)

    def retry_at(self, when: float) -> None:
        """A store failed: the next one not before `when` (monotonic)."""
        self._retry_at = when

    def take_acks(self) -> list[WriteOp]:
        """The waiting acknowledgements, to be carried out without the rows."""
        acks, self.acks = self.acks, []
        if not self.groups:
            self._since = None
        return acks

    def store(self, conn: sqlite3.Connection, keys: outbox_keys.RecentKeys, usage: Usage) -> int:
        """Within the writer's open transaction: every waiting row and key, then every
        waiting acknowledgement; the main rows they removed (`usage` updated in place)."""
        if self.groups:
            rows = [row for group in self.groups for row in group.rows]
            insert_rows(conn, f"INSERT INTO outbox {ROW_COLUMNS}", rows)
            keys.insert(conn, [key for group in self.groups for key in group.keys])
            _mark(conn, self.groups[-1].last)
        removed = 0
        for op in self.acks:
            main, _ = retention.remove_acknowledged(conn, op.acks, (), usage)
            op.removed = main
            removed += main
        return removed

    def stored(self) -> list[WriteOp]:
        """After the transaction holding `store` committed: the acknowledgements to settle."""
        acks = self.acks
        self.groups, self.acks, self.rows, self.bytes, self._since = [], [], 0, 0, None
        self._retry_at = 0.0
        if self.journal is not None:
            try:
                self.journal.empty()
            except OSError:
                self.journal = None  # its groups are below the mark: never stored twice
        return acks

    def rows_after(self, cursor: tuple[int, int], limit: int) -> list[Row]:
        """The first `limit` rows waiting here after record id `cursor` (session, seq)."""
        rows = (row for group in list(self.groups) for row in group.rows)
        after = (Row(*row[:7]) for row in rows if (row[1], row[2]) > cursor)
        return list(itertools.islice(after, limit))

    def replay_keys(self) -> list[tuple[str, str]]:
        """The replay keys waiting here, (device id, key), oldest first."""
        return [key for group in list(self.groups) for key in group.keys]

    def held_upto(self, last: tuple[int, int]) -> int:
        """Rows waiting here up to record id `last` (session, seq)."""
        return sum(1 for g in self.groups for row in g.rows if (row[1], row[2]) <= last)


def replay(conn: sqlite3.Connection, groups: list[Group], keys: outbox_keys.RecentKeys) -> int:
    """At open, in its transaction: the journal's groups past the mark, stored. Their row
    ids are free: every row SQLite took after a group was written came after it stored
    the group. Returns the rows stored."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone()
    mark = tuple(int(part) for part in row[0].split(":")) if row else (0, 0)
    todo = [group for group in groups if group.last > mark]
    rows = [row for group in todo for row in group.rows if (row[1], row[2]) > mark]
    insert_rows(conn, f"INSERT INTO outbox {ROW_COLUMNS}", rows)
    keys.insert(conn, [key for group in todo for key in group.keys])
    if todo:
        _mark(conn, todo[-1].last)
    return len(rows)


def _mark(conn: sqlite3.Connection, last: tuple[int, int]) -> None:
    """Within the transaction that stored it: the last row stored from the journal."""
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (MARK, f"{last[0]}:{last[1]}")
    )
