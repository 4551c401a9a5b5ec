"""A relay whose ring records carry epoch seconds + milliseconds, a phase bit mask and a
measured value, read by the driver from the simulator over real Modbus TCP (pymodbus),
and turned into wire events with that time, phase and value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agent.normalize import DeviceContext, point_record
from gateway import wire
from profiles.model import Profile
from protocols.modbus.config import ModbusDevice
from protocols.modbus.driver import ModbusDriver
from protocols.profile_loader import load_profile
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.modbus.relay import make_relay
from simulator.scenario import RelaySpec

from .helpers import FAST, RecordingSink, free_port, running, wait_until

PROFILE = """
[profile]
name = "epoch-ms-relay"
protocol = "modbus"

[[points]]
address = "event:7"
name = "earth_fault"
kind = "trip"
severity = "critical"

[[points]]
address = "event:8"
name = "overcurrent_a"
kind = "trip"
severity = "critical"
phase = "A"

[modbus.event_log]
pointer_register = 0
first_register = 10
capacity = 16
record_registers = 6
state_field = "state"
fields = [
  { name = "code", type = "u16" },
  { name = "state", type = "u8" },
  { name = "phases", type = "u8" },
  { name = "time", type = "u32" },
  { name = "ms", type = "u16" },
  { name = "current", type = "u16" },
]
timestamp = { kind = "epoch", epoch = "time", millisecond = "ms" }
phase = { field = "phases", bits = { 0 = "A", 1 = "B", 2 = "C", 3 = "N" } }
value = { field = "current", scale = 0.5, unit = "A" }
"""


def _profile(tmp_path: Path) -> Profile:
    path = tmp_path / "epoch-ms-relay.toml"
    path.write_text(PROFILE)
    return load_profile(path)


async def test_time_phase_and_value_come_from_the_record(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    port = free_port()
    spec = RelaySpec(id="r1", protocol="modbus", profile=str(profile.source),
                     link={"transport": "tcp", "port": port})  # fmt: skip
    sim = make_relay(spec, profile)
    await sim.start()
    try:
        t1 = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
        t2 = datetime(2026, 2, 3, 4, 5, 7, 1000, tzinfo=UTC)
        # A general earth-fault trip whose record names phase B to earth and 1.2 kA; then
        # the phase-A overcurrent trip clears (its record still carries a current).
        sim.append_event(7, True, t1, {"phases": 0b1010, "current": 2400})
        sim.append_event(8, False, t2, {"current": 40})
        device = ModbusDevice(id="r1", profile=str(profile.source), protocol="modbus",
                              host="127.0.0.1", port=port, **FAST)  # fmt: skip
        plan = LinkPlan(device.link_key, "modbus", (PlannedDevice(device, profile.section),))
        sink = RecordingSink()
        async with running(ModbusDriver(plan), sink):
            await wait_until(lambda: len(sink.events()) == 2, what="both records")
    finally:
        await sim.stop()
    first, second = sink.events()
    assert (first.device_time, second.device_time) == (t1, t2)
    assert (first.phase, first.value, first.raised) == ("B", 1200.0, True)
    assert (second.phase, second.value, second.raised) == (None, 20.0, False)
    assert first.details["unit"] == "A"

    ctx = DeviceContext("site", "gw", "r1", "modbus", profile)
    earth, overcurrent = (point_record(ctx, o, t2) for o in (first, second))
    assert isinstance(earth, wire.Event)
    assert isinstance(overcurrent, wire.Event)
    assert (earth.phase, earth.value, earth.raised, earth.device_time) == ("B", 1200.0, True, t1)
    # No phase in the record: the profile's; a cleared record with a non-zero value.
    assert (overcurrent.phase, overcurrent.value, overcurrent.raised) == ("A", 20.0, False)
