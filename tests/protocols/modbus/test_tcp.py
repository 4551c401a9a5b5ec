"""Modbus TCP end to end: the simulator's relay read by the driver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from protocols.errors import LinkError
from protocols.modbus.driver import ModbusDriver
from protocols.observations import (
    IdentityObservation,
    MeasurementsObservation,
    PointObservation,
    SettingsObservation,
)

from .helpers import RecordingSink, free_port, plan, relay, running, tcp_device, wait_until


async def test_tcp_identity_settings_status_measurements_and_events() -> None:
    port = free_port()
    sim = relay(
        "f1",
        {"transport": "tcp", "port": port, "unit_id": 1},
        identity={"model": "FP-300", "serial": "FP3-0042", "firmware_version": "2.4.1",
                  "checksum": "BEEF1234"},
        settings={"i_pickup": 1.25, "t_delay": 0.3, "ar_enabled": 1, "bay_name": "Feeder 7"},
    )  # fmt: skip
    await sim.start()
    try:
        sim.image.set_status("healthy", True)
        sim.image.set_measurement("frequency", 49.98)
        when = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
        sim.append_event(11, True, when, {"phase": 1, "value": 1234})
        driver = ModbusDriver(plan([tcp_device("f1", port)]))
        sink = RecordingSink()
        async with running(driver, sink):
            await wait_until(lambda: sink.events("f1"), what="the first event")
            event = sink.events("f1")[0]
            assert event.address == "event:11"
            assert event.value is True
            assert event.device_time == when
            assert event.details["phase"] == 1
            assert event.details["value"] == 1234
            assert (event.cause, event.cause_raw) == ("spontaneous", "event_log")
            identity = next(o for o in sink.observations if isinstance(o, IdentityObservation))
            assert (identity.model, identity.serial, identity.firmware_version) == (
                "FP-300", "FP3-0042", "2.4.1",
            )  # fmt: skip
            assert identity.checksum == "BEEF1234"
            settings = next(o for o in sink.observations if isinstance(o, SettingsObservation))
            assert {s.name: s.value for s in settings.settings} == {
                "i_pickup": 1.25, "t_delay": 0.3, "ar_enabled": 1, "bay_name": "Feeder 7",
            }  # fmt: skip
            points = {
                o.address: o.value for o in sink.observations if isinstance(o, PointObservation)
            }
            assert points["status:healthy"] is True
            # Every measurand of one poll in one observation (one record per poll).
            polled = next(o for o in sink.observations if isinstance(o, MeasurementsObservation))
            assert polled.values["measurement:frequency"] == 49.98
            assert (polled.cause, polled.cause_raw) == ("periodic", "measurement_read")
            first: dict[str, tuple[str | None, str | None]] = {}
            for o in sink.observations:
                if isinstance(o, PointObservation):
                    first.setdefault(o.address, (o.cause, o.cause_raw))
            # the first status read after contact reports states as found, not changes
            assert first["status:healthy"] == ("interrogated", "status_read")

            # Changes the relay makes later arrive too: a status bit, a firmware upgrade,
            # a settings change, a reset event.
            sim.image.set_status("breaker_closed", True)
            await sim.set_firmware("2.5.0")
            await sim.set_setting("i_pickup", 2.0)
            sim.append_event(11, False)

            def changed() -> bool:
                obs = sink.observations
                return (
                    any(isinstance(o, IdentityObservation) and o.firmware_version == "2.5.0"
                        for o in obs)
                    and any(isinstance(o, SettingsObservation)
                            and {s.name: s.value for s in o.settings}["i_pickup"] == 2.0
                            for o in obs)
                    and any(isinstance(o, PointObservation) and o.address == "status:breaker_closed"
                            and o.value is True and o.cause == "spontaneous"
                            and o.cause_raw == "status_change" for o in obs)
                    and len(sink.events("f1")) == 2
                )  # fmt: skip

            await wait_until(changed, what="the relay's changes")
            assert sink.events("f1")[1].value is False
            assert sink.link_states("f1") == [True]
            counters = driver.counters["f1"]
            assert counters["malformed"] == 0
            assert counters["events_delivered"] == 2
    finally:
        await sim.stop()


async def test_a_vanished_tcp_relay_is_a_lost_link() -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    try:
        driver = ModbusDriver(plan([tcp_device("f1", port)]))
        sink = RecordingSink()
        task = asyncio.create_task(driver.run(sink))
        await wait_until(lambda: sink.link_states("f1") == [True])
        await sim.set_online(False)
        with pytest.raises(LinkError):
            await asyncio.wait_for(task, 20)
    finally:
        await sim.stop()
