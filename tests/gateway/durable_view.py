"""What an outbox holds on disk, read apart from the outbox: SQLite's rows on a
connection of its own, then the rows of the journal's groups past SQLite's mark
(gateway/outbox_journal.py: committed, not yet moved into SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.outbox_journal import decode_all
from gateway.outbox_lane import MARK
from gateway.outbox_rows import Row


def durable_rows(path: Path) -> list[Row]:
    """Every main row held, in (session, seq) order. The journal is read first: a move
    into SQLite meanwhile then shows in SQLite, and its mark leaves those rows out of
    what was read of the journal."""
    journal = path.with_name(path.name + ".journal")
    groups = decode_all(journal.read_bytes()) if journal.exists() else []
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for the rows and the mark
        rows = [Row(*r) for r in conn.execute(
            "SELECT id, session, seq, topic, kind, created, body FROM outbox ORDER BY session, seq"
        )]  # fmt: skip
        found = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone()
        conn.execute("COMMIT")
    finally:
        conn.close()
    mark = tuple(int(part) for part in found[0].split(":")) if found else (0, 0)
    rows += [Row(*r[:7]) for g in groups for r in g.rows if (r[1], r[2]) > mark]
    return rows


def durable_count(path: Path) -> int:
    return len(durable_rows(path))
