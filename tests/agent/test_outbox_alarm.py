"""The outbox near-cap alarm against a real outbox: raised at 90 % of the cap, cleared at
70 %, nothing in between (hysteresis), and its state survives a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agent.outbox_alarm import AlarmState, OutboxCapAlarm
from agent.pipeline import Pipeline
from gateway.outbox import Outbox, Pending
from gateway.wire import AckRange

CAP = 1000


def fill(box: Outbox, n: int) -> None:
    box.append_blocking([Pending("relay/v1/s1/gw1/event/d1", "event", b"{}")] * n)


async def drain_to(box: Outbox, depth: int) -> None:
    """Delete the oldest rows, as the center's acknowledgement does, down to `depth`."""
    rows = box.read(box.depth - depth)
    await box.acknowledge([AckRange(session=r.session, first=r.seq, last=r.seq) for r in rows])


def alarms(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in box.read(10 * CAP) if r.kind == "alarm"]


def watch(box: Outbox) -> OutboxCapAlarm:
    return OutboxCapAlarm(box, Pipeline(box, {}), "s1", "gw1")


def open_box(path: Path) -> Outbox:
    box = Outbox(path, max_records=CAP)
    box.open()
    return box


def test_raised_near_the_cap_cleared_once_drained_and_quiet_in_between(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.sqlite")

    async def scenario() -> list[AlarmState | None]:
        alarm = watch(box)
        seen = []
        fill(box, 899)
        seen.append(await alarm.check())  # 89.9 %: nothing
        fill(box, 1)
        seen.append(await alarm.check())  # 90 %: raised (and the alarm adds a row)
        await drain_to(box, 800)
        seen.append(await alarm.check())  # 80 %: still raised
        fill(box, 150)
        seen.append(await alarm.check())  # back to 95 %: no second raise
        await drain_to(box, 701)
        seen.append(await alarm.check())  # 70.1 %: still raised
        await drain_to(box, 700)
        seen.append(await alarm.check())  # 70 %: cleared
        fill(box, 100)
        seen.append(await alarm.check())  # 80 %: no raise below 90 %
        return seen

    try:
        assert asyncio.run(scenario()) == [None, "raised", None, None, None, "cleared", None]
    finally:
        box.close()


def test_the_record_is_a_gateway_alarm_that_counts_what_was_evicted(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.sqlite")
    try:
        box.append_blocking([Pending("m", "measurement", b"{}")] * 100)
        fill(box, 950)  # 1050 rows: the 50 oldest measurements go
        assert asyncio.run(watch(box).check()) == "raised"
        (raised,) = alarms(box)
        assert raised["code"] == "outbox_near_cap"
        assert raised["state"] == "raised"
        assert raised["device_id"] is None
        assert raised["gateway_id"] == "gw1"
        assert raised["details"] == {
            "depth": 1000, "max_records": CAP, "raise_at": 900, "clear_at": 700, "evicted": 50,
            "bytes": 2000, "max_bytes": box.max_bytes,
        }  # fmt: skip
    finally:
        box.close()


def test_a_restarted_agent_sends_the_clear_it_owes_and_never_raises_twice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite"
    box = open_box(path)
    fill(box, 950)
    assert asyncio.run(watch(box).check()) == "raised"
    box.close()

    box = open_box(path)  # restarted, still near the cap
    try:
        assert asyncio.run(watch(box).check()) is None
        asyncio.run(drain_to(box, 0))
    finally:
        box.close()

    box = open_box(path)  # restarted after the outbox drained
    try:
        assert asyncio.run(watch(box).check()) == "cleared"
        assert [a["state"] for a in alarms(box)] == ["cleared"]
        assert watch(box).raised is False
    finally:
        box.close()


def measurements(box: Outbox, n: int) -> None:
    box.append_blocking([Pending("relay/v1/s1/gw1/measurement/d1", "measurement", b"{}")] * n)


def test_evictions_are_alarmed_and_counted_exactly_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = open_box(path)
    measurements(box, 1000)
    alarm = watch(box)
    assert asyncio.run(alarm.check_evictions()) is None  # at the cap, nothing evicted yet
    measurements(box, 30)  # 30 measurements evicted
    assert asyncio.run(alarm.check()) == "raised"  # its record evicts one more
    assert asyncio.run(alarm.check_evictions()) == "raised"
    (raised,) = [a for a in alarms(box) if a["code"] == "outbox_evicted"]
    assert raised["details"] == {"evicted": 31, "evicted_measurement": 31}
    assert asyncio.run(alarm.check_evictions()) is None  # raised once per episode
    fill(box, 200)  # events: 200 more measurements evicted (and 1 for the last alarm)
    box.close()

    box = open_box(path)  # restarted mid-episode: no second raise, the count goes on
    alarm = watch(box)
    try:
        assert asyncio.run(alarm.check_evictions()) is None
        asyncio.run(drain_to(box, 500))
        assert asyncio.run(alarm.check()) == "cleared"
        assert asyncio.run(alarm.check_evictions()) == "cleared"
        cleared = [a for a in alarms(box) if a["code"] == "outbox_evicted"][-1]
        assert cleared["state"] == "cleared"
        assert cleared["details"]["evicted"] == box.evicted_by_kind["measurement"] == 232
        measurements(box, 10)  # below the cap: no new episode
        assert asyncio.run(alarm.check_evictions()) is None
    finally:
        box.close()
