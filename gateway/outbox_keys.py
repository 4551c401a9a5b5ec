"""Recent event keys: per device, the keys of the last events stored, kept in the outbox
beside the records they stand for (agent/replays.py: a relay's resent event is recognised
by its key and stored once).

Why rows, appended in the commit of their records: the keys of events still in flight
belong to the transaction that stores those events, so a commit that fails takes its
keys with it, and one that succeeds never carries another's. The earlier form, a JSON
window of 128 keys per device kept as a `device_state` row and rewritten by every commit
that added to it, cost 20 devices about 40 KB of pages per commit, four times the events
themselves, and 15-25 µs of an event's CPU on 20 links (docs/performance.md). A trim
holds the commit it runs in: 5 ms for 20 devices, 62 ms for 200 (in memory).

The table only grows between trims: once it holds more than twice what was kept at the
last trim (and at least `TRIM_FLOOR` rows), a trim in the next commit keeps each device's
last `KEPT` keys (SQLite's window functions, 3.25 and later).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from gateway.outbox_rows import Keys, insert_rows

KEPT = 128  # per device: enough for IEC 104's k = 12 unacknowledged ASDUs of several objects
TRIM_FLOOR = 4096  # rows: below this the table is never trimmed
LEGACY_STATE = "recent_events"  # the device_state row of the earlier form (a JSON list)

SCHEMA = """
CREATE TABLE IF NOT EXISTS recent_keys (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    key TEXT NOT NULL
);
"""
_INSERT = "INSERT INTO recent_keys (device_id, key)"
_TRIM = """
DELETE FROM recent_keys WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY device_id ORDER BY id DESC) AS newer
        FROM recent_keys
    ) WHERE newer > ?
)
"""


class RecentKeys:
    """The table's bookkeeping, on the outbox's writer thread (inside its transactions).
    `rows` counts what was inserted, also by a transaction that then failed: such a count
    only brings the next trim sooner, and each trim counts the rows again."""

    def __init__(self) -> None:
        self.rows = 0
        self._trim_at = TRIM_FLOOR

    def open(self, conn: sqlite3.Connection) -> None:
        """Before the writer starts: the table, an older agent's keys taken over, the count."""
        conn.executescript(SCHEMA)
        _migrate(conn)
        self._count(conn)

    def _count(self, conn: sqlite3.Connection) -> None:
        self.rows = conn.execute("SELECT COUNT(*) FROM recent_keys").fetchone()[0]
        self._trim_at = max(2 * self.rows, TRIM_FLOOR)

    def insert(self, conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
        """In the writer's transaction: (device_id, key) rows, then a trim if it is due."""
        if keys:  # one statement step per chunk, as the records (outbox_rows.insert_rows)
            insert_rows(conn, _INSERT, keys)
            self.rows += len(keys)
        if self.rows > self._trim_at:
            conn.execute(_TRIM, (KEPT,))
            self._count(conn)


def flatten(key_sets: Sequence[Keys]) -> list[tuple[str, str]]:
    """The rows of a group's writes, in the order they were queued."""
    return [(device, key) for keys in key_sets for device, ks in keys.items() for key in ks]


def read(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Each device's last `KEPT` keys, oldest first."""
    by_device: dict[str, list[str]] = {}
    for device_id, key in conn.execute("SELECT device_id, key FROM recent_keys ORDER BY id"):
        by_device.setdefault(device_id, []).append(key)
    return {device_id: keys[-KEPT:] for device_id, keys in by_device.items()}


def _migrate(conn: sqlite3.Connection) -> None:
    """An outbox of an older agent kept each device's window as a JSON list in
    `device_state`: its keys become rows, and the state row goes."""
    legacy = conn.execute(
        "SELECT device_id, value FROM device_state WHERE name = ? ORDER BY rowid",
        (LEGACY_STATE,),
    ).fetchall()
    if not legacy:
        return
    with conn:
        for device_id, value in legacy:
            try:
                keys = json.loads(value)
            except ValueError:
                keys = []
            if not isinstance(keys, list):
                keys = []
            insert_rows(conn, _INSERT, [(device_id, k) for k in keys if isinstance(k, str)])
        conn.execute("DELETE FROM device_state WHERE name = ?", (LEGACY_STATE,))
