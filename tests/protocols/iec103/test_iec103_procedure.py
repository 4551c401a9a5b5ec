"""The whole 103 procedure on a pty pair: the driver against the simulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from protocols.driver import PollKind, SettingsResult, StatusResult
from protocols.iec103.config import Iec103Device
from protocols.observations import (
    IdentityObservation,
    LinkStateObservation,
    Observation,
    PointObservation,
    SettingsObservation,
)
from tests.protocols.iec103.conftest import Bench


def _point(bench: Bench, name: str):
    return bench.profile.by_name[name]


async def _initialised(bench: Bench) -> None:
    await bench.until(
        lambda: all(len(bench.sink.of(SettingsObservation, d)) >= 1 for d in bench.relays)
    )


async def test_reset_identity_time_sync_gi_settings_then_events(bench: Bench) -> None:
    await _initialised(bench)
    sink = bench.sink
    for device_id, relay in bench.relays.items():
        assert sink.of(LinkStateObservation, device_id)[0].up
        ident = sink.of(IdentityObservation, device_id)[0]
        assert (ident.manufacturer, ident.firmware_version) == ("DEMO", "V4.7")
        assert relay.time_syncs == 1
        gi = [o for o in sink.of(PointObservation, device_id) if o.cause == "interrogated"]
        assert {o.address for o in gi} >= {"128/69", "128/47"}
        assert {o.cause_raw for o in gi} == {"general_interrogation"}  # COT 9
        settings = {s.name: s.value for s in sink.of(SettingsObservation, device_id)[0].settings}
        assert settings == {"zone1_reach": 4.2, "zone1_time": 0.0, "station_name": "North"}
    status = await bench.driver.poll("relay1", PollKind.STATUS)
    assert isinstance(status, StatusResult)
    assert status.counters["up"]
    assert status.counters["gi_completed"] == 1

    # A fault on relay 1: start, trip phase A (ASDU 2 with fault number), a disturbance record.
    relay = bench.relays["relay1"]
    t0 = datetime.now(UTC).replace(microsecond=500_000)
    await relay.emit(_point(bench, "start"), True, [], t0)
    await relay.emit(_point(bench, "trip_phase_a"), True, ["IV"], t0 + timedelta(milliseconds=23))
    await bench.until(
        lambda: any(o.address == "128/0" for o in sink.events("relay1", "disturbance_data"))
    )
    start, trip = sink.events("relay1")[-2:]
    assert (start.address, start.value, trip.address, trip.value) == (
        "128/84",
        True,
        "128/69",
        True,
    )
    assert trip.details["fault_number"] == start.details["fault_number"] == 1
    assert trip.details["relative_time_ms"] == 23
    assert trip.details["type"] == 2
    assert trip.device_time == t0 + timedelta(milliseconds=23)
    assert trip.device_time_flags == ("invalid",)
    record = sink.events("relay1", "disturbance_data")[-1]
    assert record.value == "disturbance record 1 available"
    assert record.details["trip"] is True
    assert record.raised is True  # an announcement, never a "cleared" state

    # Measurands arrive as measurements, scaled by the profile.
    meas = [o for o in sink.of(PointObservation, "relay1") if o.measurement]
    assert any(o.address == "128/148.1" and o.value == 300.0 for o in meas)

    # A setting changed on the relay: INF 22, then a fresh settings snapshot.
    await bench.relays["relay2"].set_setting("zone1_reach", 4.5)
    await bench.until(lambda: len(sink.of(SettingsObservation, "relay2")) >= 2)
    latest = {s.name: s.value for s in sink.of(SettingsObservation, "relay2")[-1].settings}
    assert latest["zone1_reach"] == 4.5
    # New firmware: ASDU 5 with cause start/restart.
    await bench.relays["relay2"].set_firmware("V4.8")
    await bench.until(lambda: sink.of(IdentityObservation, "relay2")[-1].firmware_version == "V4.8")
    # An engineer's on-demand settings read goes through the same serialised bus.
    polled = await bench.driver.poll("relay2", PollKind.SETTINGS)
    assert isinstance(polled, SettingsResult)
    assert {s.name: s.value for s in polled.settings}["zone1_reach"] == 4.5


async def test_an_event_is_durable_before_the_fcb_acknowledges_it(bench: Bench) -> None:
    await _initialised(bench)
    relay = bench.relays["relay1"]
    sink = bench.sink
    violations: list[str] = []

    def check(_: Sequence[Observation]) -> None:
        stored = Counter((o.address, o.value) for o in sink.events("relay1"))
        acked = Counter((t[1], t[2]) for t in relay.delivered if t[0] == "point")
        if acked - stored:
            violations.append(f"relay acknowledged {acked - stored} before it was stored")

    sink.on_deliver = check
    sink.delay_s = 0.05  # a slow disk: the FCB toggle has to wait for it
    now = datetime.now(UTC)
    names = ["start", "trip_phase_a", "trip_phase_b", "reclose", "self_check_fail"]
    for i, name in enumerate(names * 4):
        await relay.emit(_point(bench, name), i % 2 == 0, [], now + timedelta(milliseconds=i))
    await bench.until(lambda: len(sink.events("relay1")) >= 20)
    await bench.until(lambda: sum(t[0] == "point" for t in relay.delivered) >= 20)
    check([])
    assert violations == []
    assert len(sink.events("relay1")) == 20


async def test_time_sync_needs_allow_commands() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="allow_commands"):
        Iec103Device(
            id="r",
            profile="p",
            protocol="iec103",
            bus="b",
            link_address=1,
            common_address=1,
            time_sync=True,
        )
