"""The rows of the latest commits, served from memory (gateway/outbox_tail.py): every read
must give exactly what the outbox holds on disk after the cursor (SQLite, and the journal's
rows not yet moved into it), whatever happened meanwhile."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from gateway import outbox_lane
from gateway.outbox import Outbox, Pending, Row
from gateway.outbox_tail import CommittedTail
from gateway.wire import AckRange
from tests.gateway.durable_view import durable_rows


def pending(i: int, kind: str = "event") -> Pending:
    return Pending(f"relay/v1/s/g/{kind}/d", kind, b'{"n":%d}' % i)


def in_sqlite(path: Path, limit: int, after: tuple[int, int]) -> list[Row]:
    """The oracle: what the outbox holds on disk (SQLite on a connection of its own, and
    the journal's rows not yet moved into it), read apart from the outbox."""
    return [row for row in durable_rows(path) if (row.session, row.seq) > after][:limit]


def test_reads_match_sqlite_through_acks_evictions_rewinds_and_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each acknowledgement waits for the journal's rows to move into SQLite: sooner than
    # in service, so that 300 turns take seconds; each read still finds rows there.
    monkeypatch.setattr(outbox_lane, "APPLY_AFTER_S", 0.005)
    path = tmp_path / "o.sqlite"
    rng = random.Random(7)

    async def session(box: Outbox, turns: int) -> tuple[int, int]:
        box.bind_loop(asyncio.get_running_loop())
        cursor, served, n = (0, 0), 0, 0
        for turn in range(turns):
            center_away = turn % 40 >= 30  # meanwhile measurements fill it: evictions
            kind = "measurement" if center_away or rng.random() < 0.5 else "event"
            await box.append([pending(n + i, kind) for i in range(rng.randint(1, 20))])
            n += 20
            if rng.random() < 0.05:
                cursor = (0, 0)  # a new connection sends everything unacknowledged again
            # Away, the link is slow too: unsent rows in the tail are evicted.
            limit = 1 if center_away else rng.choice((1, 5, 50, 1600, 1600))
            before = box._tail.after(limit, cursor) is not None  # what read() will do
            rows = box.read(limit, cursor)
            assert rows == in_sqlite(path, limit, cursor), f"turn {turn}, cursor {cursor}"
            served += before
            if rows:
                cursor = (rows[-1].session, rows[-1].seq)
            if cursor[0] == box.session and cursor[1] > 3 and not center_away:
                ack = AckRange(session=box.session, first=1, last=cursor[1] - rng.randint(0, 3))
                await box.acknowledge([ack])
        return served, turns

    first = Outbox(path, max_records=100)  # measurements are evicted along the way
    first.open()
    try:
        served, turns = asyncio.run(session(first, 300))
        assert first.evicted > 0
        assert served > turns // 2  # most reads came from memory
    finally:
        first.close()
    second = Outbox(path, max_records=100)  # rows of the first session are still there
    second.open()
    try:
        asyncio.run(session(second, 100))
    finally:
        second.close()


def row(seq: int, session: int = 1, size: int = 10) -> Row:
    return Row(seq, session, seq, "t", "event", 0.0, b"x" * size)


def test_a_read_the_tail_cannot_answer_goes_to_sqlite() -> None:
    tail = CommittedTail(max_rows=5)
    assert tail.after(10, (1, 0)) is None  # nothing added yet
    tail.add([row(s) for s in range(3, 6)])
    assert tail.after(10, (1, 1)) is None  # row 2 is not held
    assert tail.after(10, (0, 0)) is None  # a rewind
    assert tail.after(10, (1, 6)) is None  # past what was added
    assert [r.seq for r in tail.after(10, (1, 2)) or []] == [3, 4, 5]
    assert [r.seq for r in tail.after(1, (1, 3)) or []] == [4]  # row 3 was sent: dropped
    assert tail.after(10, (1, 2)) is None
    assert tail.after(10, (1, 5)) == []  # all sent, nothing new: no read needed


def test_the_tail_is_bounded_and_restarts_after_a_gap_or_an_eviction() -> None:
    tail = CommittedTail(max_rows=4, max_bytes=100)
    tail.add([row(s) for s in range(1, 8)])
    assert [r.seq for r in tail.after(10, (1, 3)) or []] == [4, 5, 6, 7]
    assert tail.after(10, (1, 2)) is None  # dropped for the bound
    tail.add([row(8, size=95)])  # over the bytes: the oldest go
    assert [r.seq for r in tail.after(10, (1, 7)) or []] == [8]
    tail.clear()  # main rows were evicted
    assert tail.after(10, (1, 7)) is None
    assert tail.after(10, (1, 8)) is None


def test_a_gap_starts_the_tail_again() -> None:
    tail = CommittedTail()
    tail.add([row(s) for s in range(1, 4)])
    tail.add([row(5)])  # row 4 was not committed through here
    assert tail.after(10, (1, 3)) is None
    assert [r.seq for r in tail.after(10, (1, 4)) or []] == [5]
