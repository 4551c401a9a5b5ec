"""The outbox's caps, in rows and in bytes: what is evicted first, what never is, the exact
count of what went, and a refusal (not a silent loss) when only protected records are left."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway import outbox_retention as retention
from gateway.outbox import Outbox, OutboxFull, Pending
from gateway.wire import AckRange


def record(kind: str, signal: str | None = None, size: int = 10, bulk: bool = False) -> Pending:
    body = json.dumps({"kind": kind, "signal": signal, "pad": "x" * size}).encode()
    return Pending(f"relay/v1/s/g/{kind}/d", kind, body, bulk, retention.priority(kind, signal))


def kinds(box: Outbox) -> list[str]:
    return [json.loads(r.body)["signal"] or r.kind for r in box.read(100_000)]


def test_eviction_goes_class_by_class_and_never_touches_trips_or_alarms(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_records=1000)
    box.open()
    try:
        box.append_blocking([record("event", "trip")] * 100 + [record("alarm")] * 100)
        box.append_blocking([record("settings")] * 100 + [record("event", "start")] * 100)
        box.append_blocking([record("disturbance"), *[record("disturbance_chunk", bulk=True)] * 50])
        box.append_blocking([record("event", "status")] * 200 + [record("audit")] * 49)
        box.append_blocking([record("measurement")] * 300)
        assert (box.depth, box.bulk_depth) == (950, 50)
        assert box.evicted == 0
        box.append_blocking([record("alarm")] * 200)  # measurements go first
        assert box.evicted_by_kind == {"measurement": 200}
        box.append_blocking([record("event", "trip")] * 250)  # the rest of them, then routine
        assert box.evicted_by_kind == {"measurement": 300, "event": 150}
        assert kinds(box).count("status") == 50
        assert kinds(box).count("audit") == 49
        box.append_blocking([record("alarm")] * 149)  # routine, then a whole bulk record
        assert box.bulk_depth == 0
        assert box.evicted_by_kind == {
            "measurement": 300, "event": 200, "audit": 49, "disturbance_chunk": 50,
        }  # fmt: skip
        box.append_blocking([record("event", "trip")] * 150)  # reports: oldest first
        assert box.evicted_by_kind["settings"] == 100
        assert box.evicted_by_kind["event"] == 250
        left = kinds(box)
        assert left.count("trip") == 500
        assert left.count("alarm") == 449
        assert left.count("start") == 50
        assert "measurement" not in left
        assert "status" not in left
        assert (box.depth, box.bulk_depth) == (1000, 0)
        evicted = dict(box.evicted_by_kind)
    finally:
        box.close()
    again = Outbox(tmp_path / "o.sqlite", max_records=1000)
    again.open()
    try:
        assert again.evicted_by_kind == evicted  # committed with the evictions
        assert sum(evicted.values()) == 300 + 250 + 49 + 50 + 100
    finally:
        again.close()


def test_the_byte_cap_binds_before_the_row_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_records=100_000, max_bytes=100_000)
    box.open()
    try:
        box.append_blocking([record("measurement", size=1000)] * 50)
        box.append_blocking([record("event", "trip", size=1000)] * 60)
        assert box.size_bytes <= 100_000
        assert kinds(box).count("trip") == 60
        assert box.evicted_by_kind["measurement"] == 50 - kinds(box).count("measurement")
        assert box.near_cap
    finally:
        box.close()


def test_with_only_protected_records_left_an_append_is_refused_not_lost(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_records=1000)
    box.open()
    try:
        box.append_blocking([record("event", "trip")] * 1000)
        with pytest.raises(OutboxFull):
            box.append_blocking([record("event", "trip"), record("measurement")])
        assert box.unavailable is not None
        assert box.refused == 2
        assert box.depth == 1000
        assert box.last_seq == 1000

        async def ack() -> int:  # the center's acknowledgement still goes through
            return await box.acknowledge([AckRange(session=box.session, first=1, last=10)])

        assert asyncio.run(ack()) == 10
        box.append_blocking([record("event", "trip")] * 10)
        assert box.unavailable is None
        assert box.depth == 1000
        assert [r.seq for r in box.read(1000)][-10:] == list(range(1001, 1011))
    finally:
        box.close()
