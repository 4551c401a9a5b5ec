"""What the outbox keeps when it is full: the caps, the eviction order, and the count of
what was evicted.

The outbox is bounded twice: in rows (main and bulk lanes together) and in bytes (the sum
of the stored bodies). A commit that would leave it above either cap first evicts, in
this order, oldest first within a class:

    0  measurement(s)                    periodic values; the next poll replaces them
    1  routine                           audit records; events whose signal is status,
                                         measurement or unknown
    2  bulk                              disturbance record chunks, a whole record at a time
                                         (its manifest stays: the center learns of the record)
    3  report                            firmware, settings, fault reports, disturbance
                                         manifests; start and self-check events
    4  protected                         trips, alarm events and alarms: never evicted

When only protected rows are left and the new records still do not fit, the commit is
refused (`OutboxFull`): the drivers then do not acknowledge the relays, which keep the
events in their own buffers and send them again. Every eviction is counted per kind in
the `meta` table, in the same transaction, so the count survives a crash exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.wire import AckRange

MEASUREMENT, ROUTINE, BULK, REPORT, PROTECTED = range(5)
CLASS_NAMES = ("measurement", "routine", "bulk", "report", "protected")
# Bulk rows sit in their own table; the main table's rows are evicted by class.
MAIN_EVICTABLE = (MEASUREMENT, ROUTINE, REPORT)

_ROUTINE_SIGNALS = frozenset({"status", "measurement", "unknown"})
_PROTECTED_SIGNALS = frozenset({"trip", "alarm"})
_REPORT_KINDS = frozenset({"firmware", "settings", "fault_report", "disturbance"})


class OutboxFull(RuntimeError):
    """Nothing more can be stored (the caps are full of protected records, or the disk is
    full): the caller must not acknowledge what it tried to store."""


def priority(kind: str, signal: str | None = None) -> int:
    """The eviction class of a record (lower leaves first)."""
    if kind in ("measurement", "measurements"):
        return MEASUREMENT
    if kind == "disturbance_chunk":
        return BULK
    if kind == "audit":
        return ROUTINE
    if kind in _REPORT_KINDS:
        return REPORT
    if kind == "event":
        if signal in _ROUTINE_SIGNALS:
            return ROUTINE
        if signal in _PROTECTED_SIGNALS or signal is None:
            return PROTECTED  # an event of unknown signal is kept as if it mattered
        return REPORT  # start, self_check
    return PROTECTED  # alarms, and anything new


@dataclass
class Usage:
    """Rows and bytes held, main and bulk lanes together."""

    rows: int = 0
    bytes: int = 0


@dataclass
class Evicted:
    """What one commit evicted, by kind."""

    rows: int = 0
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, size: int) -> None:
        self.rows += 1
        self.bytes += size
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def evict(
    conn: sqlite3.Connection, usage: Usage, max_rows: int, max_bytes: int
) -> tuple[Evicted, bool]:
    """Evict within the open transaction until `usage` (already counting the new rows) is
    within both caps. Returns what was evicted and whether the caps are now met; `usage`
    is updated in place."""
    out = Evicted()

    def over() -> bool:
        return usage.rows > max_rows or usage.bytes > max_bytes

    for cls in (MEASUREMENT, ROUTINE, BULK, REPORT):
        while over():
            candidates = _bulk_record(conn) if cls == BULK else _oldest(conn, cls, usage, max_rows)
            if not candidates:
                break
            # Exactly as many as the caps need (a bulk record goes whole).
            victims = []
            for victim in candidates:
                if not over() and cls != BULK:
                    break
                victims.append(victim)
                usage.rows -= 1
                usage.bytes -= victim[2]
            table = "bulk" if cls == BULK else "outbox"
            conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(v[0],) for v in victims])
            for _, kind, size in victims:
                out.add(kind, size)
    for kind, n in out.by_kind.items():
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + excluded.value",
            (f"evicted.{kind}", n),
        )
    return out, not over()


def _oldest(
    conn: sqlite3.Connection, cls: int, usage: Usage, max_rows: int
) -> list[tuple[int, str, int]]:
    """A batch of the oldest rows of one class: at least the rows' excess, and enough to
    make a dent in the bytes' (the loop asks again while still over)."""
    want = max(usage.rows - max_rows, 64)
    cur = conn.execute(
        "SELECT id, kind, length(body) FROM outbox WHERE priority = ? ORDER BY id LIMIT ?",
        (cls, want),
    )
    return [(int(i), str(k), int(n)) for i, k, n in cur.fetchall()]


def _bulk_record(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
    """Every chunk of the oldest disturbance record in the bulk lane: a record missing a
    chunk is worthless, so they go together."""
    first = conn.execute("SELECT session, seq FROM bulk ORDER BY id LIMIT 1").fetchone()
    if first is None:
        return []
    cur = conn.execute(
        "SELECT id, kind, length(body) FROM bulk WHERE session = ? AND seq = ?", first
    )
    return [(int(i), str(k), int(n)) for i, k, n in cur.fetchall()]


def remove_acknowledged(
    conn: sqlite3.Connection, ranges: Sequence[AckRange], bulk_ids: Sequence[int], usage: Usage
) -> tuple[int, int]:
    """Delete what the center acknowledged, within the open transaction: main rows by
    (session, seq) ranges, bulk rows by id. Returns (main, bulk) rows removed (ids already
    gone count for nothing); `usage` is updated in place. Counted, then deleted: two
    statements per range, not a step per row as `DELETE ... RETURNING` takes (why steps
    matter: `outbox_rows.insert_rows`)."""
    removed = [0, 0]
    where = (" WHERE session = ? AND seq BETWEEN ? AND ?", " WHERE id = ?")
    queries: list[tuple[str, list[tuple[int, ...]]]] = [
        ("outbox", [(r.session, r.first, r.last) for r in ranges]),
        ("bulk", [(i,) for i in bulk_ids]),
    ]
    for lane, (table, params) in enumerate(queries):
        for args in params:
            count = f"SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM {table}{where[lane]}"
            rows, size = conn.execute(count, args).fetchone()
            if rows:
                conn.execute(f"DELETE FROM {table}{where[lane]}", args)
            removed[lane] += rows
            usage.rows -= rows
            usage.bytes -= size
    return removed[0], removed[1]


def evicted_totals(conn: sqlite3.Connection) -> dict[str, int]:
    """Everything evicted since the outbox was created, by kind (committed counts)."""
    cur = conn.execute("SELECT key, value FROM meta WHERE key LIKE 'evicted.%'")
    return {key.removeprefix("evicted."): int(value) for key, value in cur.fetchall()}


def usage_of(conn: sqlite3.Connection) -> Usage:
    rows = bytes_ = 0
    for table in ("outbox", "bulk"):
        query = f"SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM {table}"
        n, size = conn.execute(query).fetchone()
        rows += int(n)
        bytes_ += int(size)
    return Usage(rows, bytes_)


def migrate(conn: sqlite3.Connection) -> None:
    """Give an outbox made by an older agent its `priority` column, classed by kind."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "priority" in columns:
        return
    conn.execute(f"ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT {PROTECTED}")
    for kind in ("measurement", "audit", *sorted(_REPORT_KINDS)):
        conn.execute("UPDATE outbox SET priority = ? WHERE kind = ?", (priority(kind), kind))
