"""The outbox's writer thread: each group of writes committed, through the journal where
it can be (`outbox_lane.py`), else in one SQLite transaction; refusals when nothing more
fits; the probe that tells when the outbox stores again. See gateway/outbox.py."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import outbox_keys, outbox_writer
from gateway import outbox_retention as retention
from gateway.outbox_journal import Group, Journal, JournalError, JournalRow
from gateway.outbox_lane import ROW_COLUMNS, JournalLane
from gateway.outbox_retention import OutboxFull, Usage
from gateway.outbox_rows import (
    UPSERT_STATE,
    OutboxClosed,
    Row,
    WriteOp,
    insert_rows,
    latest_states,
)
from gateway.outbox_tail import CommittedTail

log = logging.getLogger(__name__)

RETRY_S = 1.0  # a failed store of what the journal holds is tried again this much later


class OutboxCommits:
    """Mixed into `Outbox`, which opens the database and the journal and starts the writer
    thread on `_write_loop`."""

    path: Path
    session: int
    last_seq: int
    max_records: int
    max_bytes: int
    min_commit_interval_s: float
    commits: int
    evicted: int
    evicted_by_kind: dict[str, int]
    refused: int
    unavailable: str | None
    unavailable_since: float | None
    _refused_bytes: int
    _depth: int
    _bulk_depth: int
    _usage: Usage
    _next_id: int  # the next main row's id
    _queue: outbox_writer.WriteQueue
    _wakeups: outbox_writer.LoopWakeups
    _keys: outbox_keys.RecentKeys
    _tail: CommittedTail
    _lane: JournalLane
    _lane_lock: threading.Lock  # held while what the lane holds moves into SQLite
    _journal: Journal | None

    if TYPE_CHECKING:  # OutboxReads

        def _wake_reader(self) -> None: ...

        @property
        def fill(self) -> float: ...

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        # Commit pacing (outbox_writer.gather): a FULL commit costs ~300 µs CPU and an
        # fsync; at 1,000 events/s from 20 relays that would otherwise be one per event.
        last_commit = 0.0
        try:
            while True:
                earliest = last_commit + self.min_commit_interval_s
                ops, stop = self._queue.gather(earliest, self._lane.due())
                if ops:
                    self._commit(conn, ops)
                    last_commit = time.monotonic()
                due = self._lane.due()
                if due is not None and (stop or due <= time.monotonic()):
                    self._store_lane(conn)
                self._wakeups.flush()
                if stop:
                    break
        finally:
            self._queue.fail_queued(OutboxClosed(str(self.path)))
            self._wakeups.flush()
            conn.close()
            if self._journal is not None:
                self._journal.close()

    def _probe(self, conn: sqlite3.Connection, op: WriteOp) -> None:
        """Commit, then remove, a blob the size of the last refused append: only a write
        that needs the room tells whether the disk (or SQLite's page limit) has it."""
        try:
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))",
                    (self._refused_bytes,),
                )
            with conn:
                conn.execute("DELETE FROM meta WHERE key = 'probe'")
        except sqlite3.Error as exc:
            log.debug("outbox probe: %s", exc)
        else:
            if self.fill < 1.0:
                self._available()
        op.settle(None)

    def _available(self) -> None:
        if self.unavailable is not None:
            log.warning("outbox stores again (after %d records refused)", self.refused)
        self.unavailable = self.unavailable_since = None
        self._refused_bytes = 0

    def _commit(self, conn: sqlite3.Connection, ops: list[WriteOp]) -> None:
        """Commit a group; if it cannot be stored, fail the appends and commit the rest
        (acknowledgements free space, so they must still go through when full)."""
        for op in ops:
            if op.probe:
                self._probe(conn, op)
        ops = [op for op in ops if not op.probe]
        if not ops:
            return
        if self._through_journal(ops):
            return
        held = bool(self._lane.groups)
        try:
            self._transaction(conn, ops)
        except (sqlite3.Error, OutboxFull) as exc:
            if held:  # what the journal holds did not go in either: no more into it
                self._lane.retry_at(time.monotonic() + RETRY_S)
            appends = [op for op in ops if op.records or op.into_sqlite]
            others = [op for op in ops if not (op.records or op.into_sqlite)]
            error: BaseException = exc
            if getattr(exc, "sqlite_errorcode", 0) == sqlite3.SQLITE_FULL:
                error = OutboxFull(f"disk full: {exc}")
            if appends:
                self._refuse(appends, error)
            if others:
                self._commit_alone(conn, others)
            return
        # Stores again only once an append as large as the largest one refused went in:
        # a disk with room for a small alarm but not for a device's batch is still full.
        stored = sum(len(r.body) for op in ops for r in op.records)
        if stored and stored >= self._refused_bytes:
            self._available()
        for op in ops:
            op.settle(None)

    def _through_journal(self, ops: list[WriteOp]) -> bool:
        """Committed through the journal, if it may take this group (`outbox_lane.py`)."""
        if self.unavailable is not None or not self._lane.takes(ops) or not self._fits(ops):
            return False
        try:
            self._journal_commit(ops)
        except JournalError as exc:
            log.error("outbox journal %s: %s; committing to SQLite alone", self.path, exc)
            return False
        return True

    def _fits(self, ops: list[WriteOp]) -> bool:
        """The group's rows fit under the caps without evicting anything."""
        rows = sum(len(op.records) for op in ops)
        size = sum(len(r.body) for op in ops for r in op.records)
        usage = self._usage
        return usage.rows + rows <= self.max_records and usage.bytes + size <= self.max_bytes

    def _refuse(self, ops: list[WriteOp], error: BaseException) -> None:
        self.refused += sum(len(op.records) for op in ops)
        size = sum(len(r.body) for op in ops for r in op.records)
        self._refused_bytes = max(self._refused_bytes, size)
        if self.unavailable is None:
            self.unavailable_since = time.time()
            log.error("outbox cannot store: %s; devices are not acknowledged", error)
        self.unavailable = str(error)
        for op in ops:
            op.settle(error)

    def _journal_commit(self, ops: list[WriteOp]) -> None:
        """Main rows, keys and acknowledgements only: durable once the journal's append
        returns; SQLite stores them later (`_store_lane`). Raises `JournalError` with
        nothing changed."""
        rows, _, seq, next_id, usage = self._sequenced(ops)  # no bulk rows here
        keys = outbox_keys.flatten([op.keys for op in ops])
        acks = [op for op in ops if op.acks]
        self._lane.append(Group(rows, keys) if rows else None, acks)
        self.last_seq, self._next_id, self._usage = seq, next_id, usage
        self.commits += 1
        self._depth += len(rows)
        self._tail.add([Row(*row[:7]) for row in rows])
        for op in ops:
            if not op.acks:  # an acknowledgement's count is known once it is carried out
                op.settle(None)
        if rows:
            self._wake_reader()

    def _sequenced(
        self, ops: list[WriteOp]
    ) -> tuple[list[JournalRow], list[tuple[object, ...]], int, int, Usage]:
        """The group's main rows (row id and seq assigned) and bulk rows (the seq of the
        record before them), the last seq and the next row id, and the usage with them."""
        now, seq, next_id = time.time(), self.last_seq, self._next_id
        usage = Usage(self._usage.rows, self._usage.bytes)
        rows: list[JournalRow] = []
        bulk: list[tuple[object, ...]] = []
        for op in ops:
            for rec in op.records:
                usage.rows += 1
                usage.bytes += len(rec.body)
                if rec.bulk:  # part of the record before it: same seq
                    bulk.append((self.session, seq, rec.topic, rec.kind, now, rec.body))
                    continue
                seq += 1
                cls = rec.priority if rec.priority is not None else retention.priority(rec.kind)
                rows.append((next_id, self.session, seq, rec.topic, rec.kind, now, rec.body, cls))
                next_id += 1
        return rows, bulk, seq, next_id, usage

    def _store_lane(self, conn: sqlite3.Connection) -> None:
        """What the journal holds, into SQLite (on its own); retried later if it fails."""
        try:
            self._transaction(conn, [])
        except (sqlite3.Error, OutboxFull) as exc:
            log.error("outbox: what the journal holds could not be stored yet: %s", exc)
            self._lane.retry_at(time.monotonic() + RETRY_S)
            acks = self._lane.take_acks()  # they free room: not held back by the rows
            if acks:
                self._commit_alone(conn, acks)

    def _commit_alone(self, conn: sqlite3.Connection, ops: list[WriteOp]) -> None:
        """Writes without records (acknowledgements), committed without what the journal
        holds: they free the room it may need."""
        try:
            self._transaction(conn, ops, lane=False)
        except (sqlite3.Error, OutboxFull) as exc:
            log.error("outbox commit failed: %s", exc)
            for op in ops:
                op.settle(exc)
        else:
            for op in ops:
                op.settle(None)

    def _transaction(self, conn: sqlite3.Connection, ops: list[WriteOp], lane: bool = True) -> None:
        """One SQLite transaction: what the journal holds first (unless `lane` is False),
        then this group, evicting what the caps require."""
        rows, bulk, seq, next_id, usage = self._sequenced(ops)
        removed_rows = removed_bulk = 0
        with self._lane_lock:  # `count_upto` finds the lane's rows here or in SQLite
            with conn:
                if lane:
                    removed_rows += self._lane.store(conn, self._keys, usage)
                for op in ops:
                    main, bulk_removed = retention.remove_acknowledged(
                        conn, op.acks, op.ack_bulk_ids, usage
                    )
                    op.removed = main + bulk_removed
                    removed_rows += main
                    removed_bulk += bulk_removed
                insert_rows(conn, f"INSERT INTO outbox {ROW_COLUMNS}", rows)
                columns = "(session, seq, topic, kind, created, body)"
                insert_rows(conn, f"INSERT INTO bulk {columns}", bulk)
                head = "INSERT INTO device_state (device_id, name, value)"
                insert_rows(conn, head, latest_states(ops), UPSERT_STATE)
                self._keys.insert(conn, outbox_keys.flatten([op.keys for op in ops]))
                evicted, fits = retention.evict(conn, usage, self.max_records, self.max_bytes)
                if not fits and (rows or bulk):
                    raise OutboxFull(
                        f"outbox full: {usage.rows} records / {usage.bytes} bytes of "
                        f"protected records (caps {self.max_records} records, "
                        f"{self.max_bytes} bytes)"
                    )
            settled = self._lane.stored() if lane else []
        for op in settled:
            op.settle(None)
        self.last_seq, self._next_id = seq, next_id
        self.commits += 1
        self._usage = usage
        evicted_bulk = evicted.by_kind.get("disturbance_chunk", 0)
        self._depth += len(rows) - removed_rows - (evicted.rows - evicted_bulk)
        self._bulk_depth += len(bulk) - removed_bulk - evicted_bulk
        if evicted.rows > evicted_bulk:
            self._tail.clear()  # some of what it holds may be gone
        else:
            self._tail.add([Row(*row[:7]) for row in rows])
        if evicted.rows:
            self.evicted += evicted.rows
            for kind, n in evicted.by_kind.items():
                self.evicted_by_kind[kind] = self.evicted_by_kind.get(kind, 0) + n
            log.warning(
                "outbox over its cap: evicted %d records (%d bytes): %s",
                evicted.rows,
                evicted.bytes,
                ", ".join(f"{n} {k}" for k, n in sorted(evicted.by_kind.items())),
            )
        if rows or bulk:
            self._wake_reader()
