from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.outbox import Outbox, OutboxClosed, Pending, StateUpdate
from gateway.wire import AckRange


def pending(i: int, kind: str = "event") -> Pending:
    return Pending(f"relay/v1/s/g/{kind}/d", kind, b'{"n":%d}' % i)


def test_records_keep_their_order_and_get_consecutive_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        for i in range(5):
            box.append_blocking([pending(i)])
        rows = box.read(100)
        assert [r.body for r in rows] == [b'{"n":%d}' % i for i in range(5)]
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert {r.session for r in rows} == {1}
        assert box.depth == 5
    finally:
        box.close()


def test_session_grows_per_open_and_unsent_rows_keep_their_id(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    first = Outbox(path)
    first.open()
    first.append_blocking([pending(1), pending(2)])
    first.close()
    second = Outbox(path)
    second.open()
    try:
        assert second.session == 2
        second.append_blocking([pending(3)])
        rows = second.read(10)
        assert [(r.session, r.seq) for r in rows] == [(1, 1), (1, 2), (2, 1)]
    finally:
        second.close()


def test_appends_from_many_threads_are_grouped_into_few_commits(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", synchronous="FULL")
    box.open()
    try:
        barrier = threading.Barrier(8)

        def writer(t: int) -> None:
            barrier.wait()
            for i in range(200):
                box.append_blocking([pending(t * 1000 + i)])

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rows = box.read(10_000)
        assert len(rows) == 1600
        assert [r.seq for r in rows] == list(range(1, 1601))
        # Each thread waits for its commit, so concurrent writers share commits.
        assert box.commits < 1600
    finally:
        box.close()


def test_an_acknowledgement_removes_exactly_the_records_it_names(tmp_path: Path) -> None:
    import asyncio

    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        box.append_blocking([pending(i) for i in range(6)])
        size = box.size_bytes

        async def ack(*ranges: tuple[int, int, int]) -> int:
            return await box.acknowledge(
                [AckRange(session=s, first=a, last=b) for s, a, b in ranges]
            )

        # Another session's ids and ids already gone remove nothing.
        assert asyncio.run(ack((1, 1, 2), (1, 5, 5), (7, 3, 4))) == 3
        assert asyncio.run(ack((1, 1, 2))) == 0
        assert [r.seq for r in box.read(10)] == [3, 4, 6]
        assert box.depth == 3
        assert box.size_bytes == size - sum(len(pending(i).body) for i in (0, 1, 4))
    finally:
        box.close()


def test_state_updates_commit_with_records_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.open()
    box.append_blocking([pending(1)], [StateUpdate("d1", "settings_hash", "abc")])
    box.close()
    again = Outbox(path)
    again.open()
    try:
        assert again.device_state() == {("d1", "settings_hash"): "abc"}
    finally:
        again.close()


def test_closed_outbox_refuses_appends(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    box.close()
    with pytest.raises(OutboxClosed):
        box.append_blocking([pending(1)])


async def test_a_cancelled_waiter_does_not_stop_the_writer_waking_the_others(
    tmp_path: Path,
) -> None:
    import asyncio

    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        waiters = [asyncio.create_task(box.append([pending(i)])) for i in range(50)]
        await asyncio.sleep(0)
        for task in waiters[::2]:
            task.cancel()
        # A thread blocked on the same writer must still be woken.
        await asyncio.to_thread(box.append_blocking, [pending(99)])
        await asyncio.gather(*waiters, return_exceptions=True)
        assert box.writer_alive
    finally:
        box.close()


def wal_frames(path: Path) -> int:
    """Pages written to the write-ahead log since it was last emptied (`wal_empty`)."""
    wal = path.with_name(path.name + "-wal")
    return max(0, wal.stat().st_size - 32) // (4096 + 24)


def wal_empty(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()


def test_delivered_rows_are_removed_without_rewriting_their_pages(tmp_path: Path) -> None:
    """Removing a delivered batch writes the tree pages that change, not each freed page
    zeroed (Debian's SQLite zeroes them by default): fewer writes per commit, less wear on
    a gateway's flash."""
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.open()
    try:
        box.append_blocking(
            [Pending("relay/v1/s/g/event/d", "event", b"x" * 1000) for _ in range(200)]
        )  # about 50 leaf pages
        box.store_journal()  # in SQLite itself, not only in the journal
        wal_empty(path)
        removed = asyncio.run(box.acknowledge([AckRange(session=1, first=1, last=200)]))
        assert removed == 200
        assert wal_frames(path) < 50  # 38 pages here; 71 with the freed pages zeroed
    finally:
        box.close()


def test_a_state_update_rewrites_its_row_in_place(tmp_path: Path) -> None:
    """Each commit of a replay window changes the row's value, not the row (a new row would
    also rewrite the table's key index on every commit)."""
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.open()
    try:

        def rowid() -> int:
            conn = sqlite3.connect(path)
            try:
                return int(conn.execute("SELECT rowid FROM device_state").fetchone()[0])
            finally:
                conn.close()

        box.append_blocking([pending(1)], [StateUpdate("d1", "recent_events", "a")])
        first = rowid()
        box.append_blocking([pending(2)], [StateUpdate("d1", "recent_events", "b")])
        assert rowid() == first
        assert box.device_state() == {("d1", "recent_events"): "b"}
    finally:
        box.close()
