"""The relay's fault report block: the simulator writes one when a fault that tripped is
over, and the driver reads it when the counter changes, over real Modbus TCP, once each,
across restarts, and never remembers a counter before the report is durable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from protocols.modbus.driver import ModbusDriver
from protocols.modbus.faultreport import FaultReportReader
from protocols.modbus.profile import ModbusProfile
from protocols.modbus.readers import DeviceReader
from protocols.observations import FaultReportObservation
from simulator.relays.modbus.faults import DISTANCE_KM, FAULT_CURRENT_A, LOAD_CURRENT_A
from simulator.relays.modbus.relay import ModbusRelay

from .helpers import (
    RecordingSink,
    free_port,
    plan,
    profile,
    relay,
    running,
    served_relay,
    state_file,
    tcp_device,
    wait_until,
)

T0 = datetime(2026, 5, 4, 3, 2, 1, 234000, tzinfo=UTC)


def reports(sink: RecordingSink) -> list[FaultReportObservation]:
    return [o for o in sink.observations if isinstance(o, FaultReportObservation)]


async def play_phase_a_fault(sim: ModbusRelay, at: datetime) -> None:
    """Start, trip TJA 30 ms later, trip and start drop off: what the feeder scenario plays."""
    points = sim.profile.by_name
    await sim.emit(points["start"], True, [], at)
    await sim.emit(points["trip_phase_a"], True, [], at + timedelta(milliseconds=30))
    await sim.emit(points["trip_phase_a"], False, [], at + timedelta(milliseconds=90))
    await sim.emit(points["start"], False, [], at + timedelta(milliseconds=100))


async def test_a_fault_in_the_simulator_arrives_as_one_fault_report(tmp_path: Path) -> None:
    async with served_relay() as (sim, port):
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"))
        sink = RecordingSink()
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: sink.link_states("f1") == [True])
            await play_phase_a_fault(sim, T0)
            await wait_until(lambda: reports(sink), what="the fault report")
            await wait_until(lambda: len(sink.events()) == 4, what="the four ring events")
        (report,) = reports(sink)
        assert report.device_id == "f1"
        assert report.fault_time == T0  # the inception (start), to the millisecond
        assert (report.fault_type, report.phases) == ("AG", ("A", "N"))
        assert report.trip_time_ms == 30.0
        assert report.distance_km == DISTANCE_KM
        assert report.currents_a == {
            "A": FAULT_CURRENT_A, "B": LOAD_CURRENT_A, "C": LOAD_CURRENT_A, "N": FAULT_CURRENT_A,
        }  # fmt: skip
        assert report.details == {"counter": 1}  # every field had a meaning


async def test_reports_are_read_once_across_restarts(tmp_path: Path) -> None:
    async with served_relay() as (sim, port):
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"))
        await play_phase_a_fault(sim, T0)  # before the agent ever ran: initial = "all"
        sink = RecordingSink()
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(reports(sink)) == 1)
        # Restarted with nothing new: nothing again. A fault while it was away: read at start.
        await play_phase_a_fault(sim, T0 + timedelta(hours=1))
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: len(reports(sink)) == 2)
            await asyncio.sleep(0.3)  # several polls of an unchanged counter
        assert [r.details["counter"] for r in reports(sink)] == [1, 2]
        assert reports(sink)[1].fault_time == T0 + timedelta(hours=1)


async def test_first_contact_with_initial_new_skips_the_old_report(tmp_path: Path) -> None:
    async with served_relay() as (sim, port):
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"), initial_events="new")
        await play_phase_a_fault(sim, T0)
        sink = RecordingSink()
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: sink.link_states("f1") == [True])
            await asyncio.sleep(0.3)
            assert not reports(sink)
            await play_phase_a_fault(sim, T0 + timedelta(minutes=5))
            await wait_until(lambda: reports(sink))
        assert [r.details["counter"] for r in reports(sink)] == [2]


async def test_a_failed_delivery_keeps_the_report_unread(tmp_path: Path) -> None:
    async with served_relay() as (sim, port):
        device = tcp_device("f1", port, state_file=state_file(tmp_path, "f1"))
        await play_phase_a_fault(sim, T0)
        sink = RecordingSink()
        sink.fail_next = 10**6  # the outbox refuses everything
        task = asyncio.create_task(ModbusDriver(plan([device])).run(sink))
        await wait_until(task.done, what="the driver to stop on the failing outbox")
        assert task.exception() is not None
        assert not reports(sink)
        sink.fail_next = 0
        async with running(ModbusDriver(plan([device])), sink):
            await wait_until(lambda: reports(sink))
        assert reports(sink)[0].details["counter"] == 1


class RewritingRelay:
    """A relay that writes a new report (and moves its counter) while the block is read:
    a small stand-in for `DeviceReader` over the simulator's register image."""

    def __init__(self, sim: ModbusRelay, rewrites: int) -> None:
        self.device_id = "f1"
        self.sim = sim
        self.rewrites = rewrites

    async def registers(self, table: str, address: int, count: int) -> list[int]:
        section = self.sim.section
        assert section.fault_report is not None
        regs = self.sim.image.read(table, address, count)
        if address == section.fault_report.first_register and self.rewrites:
            self.rewrites -= 1
            await play_phase_a_fault(self.sim, T0 + timedelta(minutes=7))
        return regs


async def test_a_report_rewritten_while_read_is_read_again() -> None:
    sim = relay("f1", {"transport": "tcp", "port": free_port(), "unit_id": 1})
    section = profile().section
    assert isinstance(section, ModbusProfile)
    assert section.fault_report is not None
    await play_phase_a_fault(sim, T0)
    fake = RewritingRelay(sim, rewrites=1)
    reader = FaultReportReader(cast(DeviceReader, fake), section.fault_report, None, "all")
    pending = await reader.collect()
    assert pending is not None
    # The block read while counter 1 became 2 is dropped; the second read is report 2's.
    assert pending.counter == 2
    assert reader.torn == 1
    assert pending.observation.fault_time == T0 + timedelta(minutes=7)
    reader.committed(pending)
    assert await reader.collect() is None
