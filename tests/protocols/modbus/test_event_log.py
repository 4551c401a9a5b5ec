"""The event ring: wrap detection, near-full warning, restarts mid-log without gaps or
duplicates, and the read position never moving before a delivery is durable."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from protocols.modbus.driver import ModbusDriver

from .helpers import (
    RecordingSink,
    free_port,
    plan,
    relay,
    running,
    state_file,
    tcp_device,
    wait_until,
)


async def test_ring_wrap_is_detected_and_counted(tmp_path: Path) -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    try:
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"))
        sink = RecordingSink()
        sim.append_event(1, fields={"value": 0})
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(sink.events()) == 1)
        # While the agent is away the relay writes 64 + 10 records into its 64-slot ring.
        for i in range(1, 75):
            sim.append_event(1, fields={"value": i})
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(sink.events()) == 1 + 64, what="the surviving records")
            await wait_until(lambda: sink.conditions("events_lost"))
        lost = sink.conditions("events_lost")
        assert len(lost) == 1
        assert lost[0].details["lost"] == 10
        assert lost[0].message == "10 events lost on device f1"
        assert [e.details["value"] for e in sink.events()] == [0, *range(11, 75)]
        near_full = sink.conditions("buffer_near_full")
        assert near_full
        assert near_full[0].state == "raised"
    finally:
        await sim.stop()


async def test_near_full_is_raised_then_cleared(tmp_path: Path) -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    try:
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"), initial_events="new")
        sink = RecordingSink()
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: sink.link_states("f1") == [True])
        for i in range(55):  # 55 of 64 unread: above the 80 % mark, nothing lost yet
            sim.append_event(2, fields={"value": i})
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(sink.events()) == 55)
            sim.append_event(2, fields={"value": 55})
            await wait_until(lambda: len(sink.conditions("buffer_near_full")) == 2)
        states = [c.state for c in sink.conditions("buffer_near_full")]
        assert states == ["raised", "cleared"]
        assert not sink.conditions("events_lost")
    finally:
        await sim.stop()


async def test_restarts_in_the_middle_of_a_log_lose_and_repeat_nothing(tmp_path: Path) -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    total = 300
    try:
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"))
        sink = RecordingSink()

        async def relay_writes() -> None:
            for i in range(total):
                sim.append_event(11, fields={"value": i})
                await asyncio.sleep(0.004)

        writer = asyncio.create_task(relay_writes())
        restarts = 0
        while not writer.done() or len(sink.events()) < total:
            driver = ModbusDriver(plan([device]))
            task = asyncio.create_task(driver.run(sink))
            await asyncio.sleep(0.15)
            if restarts == 3:
                sink.fail_next = 1  # one delivery is not durable: it must be read again
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ExceptionGroup):
                await task
            restarts += 1
            assert restarts < 200, f"stuck at {len(sink.events())} events"
        await writer
        values = [e.details["value"] for e in sink.events()]
        assert values == list(range(total)), "a gap or a duplicate after restarts"
        assert not sink.conditions("events_lost")
        assert restarts >= 5
    finally:
        await sim.stop()


async def test_a_failed_delivery_does_not_move_the_position(tmp_path: Path) -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    try:
        path = state_file(tmp_path, "f1")
        device = tcp_device("f1", port, state_file=path)
        sink = RecordingSink()
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: sink.link_states("f1") == [True] and path.exists())
        before = path.read_text()
        sim.append_event(12)
        sink.fail_next = 10**6
        driver = ModbusDriver(plan([device]))
        task = asyncio.create_task(driver.run(sink))
        await wait_until(task.done, what="the driver to stop on the failing outbox")
        assert task.exception() is not None
        assert path.read_text() == before
        assert not sink.events()
        sink.fail_next = 0
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(sink.events()) == 1)
        assert path.read_text() != before
    finally:
        await sim.stop()
