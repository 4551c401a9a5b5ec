"""The outbox's bulk lane: parts of a record, kept apart from events, durable, ordered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.outbox import Outbox, Pending


def main(i: int, kind: str = "event") -> Pending:
    return Pending(f"relay/v1/s/g/{kind}/d", kind, b'{"n":%d}' % i)


def part(i: int) -> Pending:
    return Pending("relay/v1/s/g/disturbance_chunk/d", "disturbance_chunk", b'{"i":%d}' % i, True)


def test_parts_carry_their_records_id_and_stay_out_of_the_main_lane(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        box.append_blocking([main(1)])
        box.append_blocking([main(2, "disturbance"), part(0), part(1), part(2)])
        box.append_blocking([main(3)])
        assert [(r.kind, r.seq) for r in box.read(100)] == [
            ("event", 1), ("disturbance", 2), ("event", 3),
        ]  # fmt: skip
        assert [(r.body, r.seq) for r in box.read_bulk(10)] == [
            (b'{"i":0}', 2), (b'{"i":1}', 2), (b'{"i":2}', 2),
        ]  # fmt: skip
        assert (box.depth, box.bulk_depth, box.last_seq) == (3, 3, 3)
    finally:
        box.close()


def test_unsent_parts_survive_a_restart_and_leave_once_deleted(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    first = Outbox(path)
    first.open()
    first.append_blocking([main(1, "disturbance"), part(0), part(1)])
    first.close()
    second = Outbox(path)
    second.open()
    try:
        assert second.bulk_depth == 2
        rows = second.read_bulk(1)
        assert (rows[0].body, rows[0].session, rows[0].seq) == (b'{"i":0}', 1, 1)

        async def delete() -> None:
            await second.acknowledge(bulk_ids=[rows[0].id])

        asyncio.run(delete())
        assert [r.body for r in second.read_bulk(5)] == [b'{"i":1}']
        assert second.bulk_depth == 1
    finally:
        second.close()


def test_a_part_without_its_record_is_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        with pytest.raises(ValueError, match="must follow"):
            box.append_blocking([part(0)])
        assert box.bulk_depth == 0
    finally:
        box.close()
