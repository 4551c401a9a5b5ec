"""The center's acknowledgements gathered and removed in one outbox write
(gateway/ack_batch.py), against a real outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.ack_batch import AckBatch, merged
from gateway.outbox import Outbox, Pending
from gateway.wire import AckRange


def r(session: int, first: int, last: int) -> AckRange:
    return AckRange(session=session, first=first, last=last)


def test_adjacent_and_overlapping_ranges_merge_per_session() -> None:
    given = [r(2, 12, 20), r(1, 5, 9), r(2, 1, 11), r(2, 15, 30), r(2, 40, 41), r(1, 1, 3)]
    assert merged(given) == [r(1, 1, 3), r(1, 5, 9), r(2, 1, 30), r(2, 40, 41)]
    assert merged([r(1, 1, 10), r(1, 2, 3)]) == [r(1, 1, 10)]  # one inside another
    assert merged([]) == []


def test_acknowledgements_of_a_moment_are_removed_by_one_write(tmp_path: Path) -> None:
    async def scenario() -> None:
        box = Outbox(tmp_path / "o.sqlite")
        box.open()
        box.bind_loop(asyncio.get_running_loop())
        try:
            await box.append([Pending("t", "event", b"{}") for _ in range(40)])
            writes: list[Sequence[AckRange]] = []

            async def remove(ranges: Sequence[AckRange]) -> int:
                writes.append(ranges)
                return await box.acknowledge(ranges)

            batch = AckBatch(remove, within_s=0.05)
            s = box.session
            counts = await asyncio.gather(
                *(batch.add([r(s, 1 + 10 * i, 10 + 10 * i)]) for i in range(3))
            )
            assert writes == [[r(s, 1, 30)]]
            assert counts == [30, 30, 30]  # each adder learns what its batch removed
            assert [row.seq for row in box.read(100)] == list(range(31, 41))
            assert await batch.add([r(s, 31, 40), r(s, 1, 5)]) == 10  # a new batch
            assert len(writes) == 2
            assert box.depth == 0
        finally:
            box.close()

    asyncio.run(scenario())


def test_a_failed_removal_reaches_every_adder_and_a_cancelled_one_stops_nothing() -> None:
    async def scenario() -> None:
        removed: list[Sequence[AckRange]] = []

        async def failing(ranges: Sequence[AckRange]) -> int:
            raise RuntimeError("outbox closed")

        batch = AckBatch(failing, within_s=0.02)
        adds = [asyncio.ensure_future(batch.add([r(1, i, i)])) for i in range(1, 4)]
        await asyncio.sleep(0)
        adds[0].cancel()
        results = await asyncio.gather(*adds, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert [str(e) for e in results[1:]] == ["outbox closed", "outbox closed"]

        async def remove(ranges: Sequence[AckRange]) -> int:
            removed.append(ranges)
            return 7

        batch = AckBatch(remove, within_s=0.02)
        lone = asyncio.ensure_future(batch.add([r(1, 1, 2)]))
        await asyncio.sleep(0)
        lone.cancel()  # its uplink task went away: the removal still happens
        await asyncio.sleep(0.1)
        assert removed == [[r(1, 1, 2)]]
        with pytest.raises(asyncio.CancelledError):
            await lone

    asyncio.run(scenario())
