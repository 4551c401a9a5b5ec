"""Writes that may wait share a commit (gateway/outbox_writer.py); an urgent one never
waits for them, and every awaiting caller is woken only once its write is durable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.outbox import Outbox, Pending
from gateway.wire import AckRange
from tests.gateway.durable_view import durable_count

AN_HOUR = 3600.0  # longer than any test runs: a write that waited for it would hang


def pending(i: int, kind: str = "measurements") -> Pending:
    return Pending(f"relay/v1/s/g/{kind}/d", kind, b'{"n":%d}' % i)


def stored(path: Path) -> int:
    """Rows durable on disk, read apart from the outbox (SQLite and its journal)."""
    return durable_count(path)


async def test_polls_that_complete_together_share_one_commit(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        before = box.commits
        await asyncio.gather(*(box.append([pending(i)], commit_within_s=0.2) for i in range(50)))
        assert box.commits - before == 1
        assert stored(box.path) == 50  # durable when the callers were woken
        assert [r.seq for r in box.read(100)] == list(range(1, 51))
    finally:
        box.close()


async def test_an_urgent_write_commits_at_once_and_takes_the_waiting_ones_along(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        before = box.commits
        waiting = asyncio.ensure_future(box.append([pending(1)], commit_within_s=AN_HOUR))
        await asyncio.sleep(0.05)  # the periodic write is queued first, with an hour to go
        assert not waiting.done()
        await box.append([pending(2, "event")])  # an event: at once
        await waiting
        assert box.commits - before == 1
        assert [(r.kind, r.seq) for r in box.read(10)] == [("measurements", 1), ("event", 2)]
    finally:
        box.close()


async def test_a_waiting_acknowledgement_removes_only_once_committed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        await box.append([pending(i) for i in range(4)])
        acked = [AckRange(session=box.session, first=1, last=3)]
        removed = await box.acknowledge(acked, commit_within_s=0.05)
        assert removed == 3
        assert stored(box.path) == 1
        assert box.depth == 1
    finally:
        box.close()


async def test_closing_wakes_a_waiting_write_durable(tmp_path: Path) -> None:
    """Close commits what is queued, however long it could have waited."""
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    waiting = asyncio.ensure_future(box.append([pending(1)], commit_within_s=AN_HOUR))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(box.close)
    await waiting
    assert stored(box.path) == 1


async def test_a_reader_is_woken_by_the_first_commit_of_rows_it_expects(tmp_path: Path) -> None:
    """The forwarder's wake-up (`expect_rows`): once, by rows, only when expected. The
    writer schedules the wake-up before the committed write's own outcome, so once an
    append returns, a wake-up it made has happened."""
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    box.bind_loop(asyncio.get_running_loop())
    try:
        wake = asyncio.Event()
        box.expect_rows(wake)
        await box.append([pending(1, "event")])
        assert wake.is_set()
        wake.clear()
        await box.append([pending(2, "event")])
        assert not wake.is_set()  # nobody expected rows: the loop was not woken
        box.expect_rows(wake)
        await box.acknowledge([AckRange(session=box.session, first=1, last=1)])
        assert not wake.is_set()  # a commit without new rows
        await box.append([pending(3, "event")])
        assert wake.is_set()
    finally:
        box.close()
