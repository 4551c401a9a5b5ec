"""The rows of the latest commits, held in memory for the forwarder's next read.

The forwarder reads the rows after its cursor as soon as a commit wakes it: the rows the
writer has just stored. Read back from SQLite, each of those reads opens a read
transaction, finds the WAL changed, and reads the new pages again: on one IEC 104 link
(a commit of about 11 events every 5 ms) that was a quarter of the event loop's CPU.
The writer hands the committed rows here instead, and `after` serves a read from them
when it can tell the answer is exactly what SQLite would give:

- the tail holds, in order and without a gap, every row this session committed from its
  first row on (the writer adds each commit's rows after the commit, before it wakes the
  forwarder; a gap, or a commit that evicted main rows, empties the tail and it restarts
  with the next commit);
- a read is served when its cursor is in this session, at or after the row before the
  tail's first, and not past its last: every row after the cursor is then in the tail.

Anything else (a rewind to the oldest row, rows of an earlier session, a cursor the tail
has dropped) is read from SQLite. A read drops the rows up to its cursor: those were
sent, and a resend reads SQLite. A row deleted by an acknowledgement while still in the
tail can only be one sent before a rewind; serving it sends it once more, which the
center stores once, as any resend.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

from gateway.outbox_rows import Row

MAX_ROWS = 4096  # held at most; the forwarder reads at most 8 x 200 at a time
MAX_BYTES = 4 << 20


class CommittedTail:
    """Written by the outbox's writer thread, read by the event loop's forwarder."""

    def __init__(self, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows: deque[Row] = deque()
        self._bytes = 0
        self._last: tuple[int, int] | None = None  # (session, seq) of the last row added
        self._lock = threading.Lock()

    def add(self, rows: list[Row]) -> None:
        """A commit's main rows, in seq order (on the writer, after the commit)."""
        if not rows:
            return
        with self._lock:
            first = rows[0]
            if self._last is not None and (first.session, first.seq - 1) != self._last:
                self._drop_all()
            self._rows.extend(rows)
            self._bytes += sum(len(row.body) for row in rows)
            self._last = (rows[-1].session, rows[-1].seq)
            while len(self._rows) > self.max_rows or self._bytes > self.max_bytes:
                self._bytes -= len(self._rows.popleft().body)

    def clear(self) -> None:
        """Forget everything (main rows were evicted: some held here may be gone)."""
        with self._lock:
            self._drop_all()
            self._last = None

    def after(self, limit: int, cursor: tuple[int, int]) -> list[Row] | None:
        """The first `limit` rows after `cursor` (session, seq), or None when the tail
        cannot tell and SQLite must be read."""
        with self._lock:
            if self._last is None or cursor[0] != self._last[0] or cursor[1] > self._last[1]:
                return None
            rows = self._rows
            first_seq = rows[0].seq if rows else self._last[1] + 1
            if cursor[1] + 1 < first_seq:
                return None
            for _ in range(cursor[1] + 1 - first_seq):  # sent: a resend reads SQLite
                self._bytes -= len(rows.popleft().body)
            return list(itertools.islice(rows, limit))

    def _drop_all(self) -> None:
        self._rows.clear()
        self._bytes = 0
