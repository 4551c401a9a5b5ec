"""Identity and settings of an IEC 104 relay from its profile's `[iec104]` points: the
driver against the simulated relay (c104 on both sides, real loopback sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from protocols.driver import PollKind, SettingsResult
from protocols.errors import LinkError
from protocols.iec104.driver import Iec104Driver
from protocols.iec104.profile import Iec104ProfileSection
from protocols.observations import IdentityObservation, SettingsObservation, SettingValue
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.iec104.relay import Iec104Relay, make_relay
from simulator.scenario import SEED_SCENARIO, load_scenario

from .helpers import RecordingSink, device, free_port, wait_until

LINE = load_named("line-protection")


def _line_section() -> Iec104ProfileSection:
    section = LINE.section
    assert isinstance(section, Iec104ProfileSection)
    return section


SECTION = _line_section()
SEED_LINE1 = load_scenario(SEED_SCENARIO).relay("line1")


def identities(sink: RecordingSink) -> list[IdentityObservation]:
    return [o for o in sink.observations if isinstance(o, IdentityObservation)]


def snapshots(sink: RecordingSink) -> list[SettingsObservation]:
    return [o for o in sink.observations if isinstance(o, SettingsObservation)]


def settings_of(obs: SettingsObservation) -> dict[str, object]:
    return {s.name: s.value for s in obs.settings}


@contextlib.asynccontextmanager
async def relay_and_driver(
    section: Iec104ProfileSection, **device_keys: float
) -> AsyncIterator[tuple[Iec104Relay, Iec104Driver, RecordingSink]]:
    port = free_port()
    spec = SEED_LINE1.model_copy(update={"link": {"port": port, "common_address": 1}})
    relay = make_relay(spec, LINE)
    await relay.start()
    config = device("line1", port, 1, **device_keys)
    points = tuple(p.address for p in LINE.points)
    drv = Iec104Driver(
        LinkPlan("iec104:line1", "iec104", (PlannedDevice(config, section, points),))
    )
    sink = RecordingSink()
    task = asyncio.create_task(drv.run(sink))
    try:
        yield relay, drv, sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LinkError):
            await task
        await relay.stop()


async def test_identity_and_settings_on_connect_and_a_signalled_change() -> None:
    async with relay_and_driver(SECTION) as (relay, drv, sink):
        await wait_until(lambda: identities(sink) and snapshots(sink), what="first reports")
        (identity,) = identities(sink)
        assert (identity.manufacturer, identity.model, identity.serial) == (
            "Demo Relays",
            "LP-900",
            "LP9-1001",
        )
        assert identity.firmware_version == "2.4.1"
        (first,) = snapshots(sink)
        assert first.settings == (
            SettingValue("zone1_reach", 4.2, "ohm"),
            SettingValue("zone1_time_delay", 0.0, "s"),
            SettingValue("autoreclose_enabled", True),
            SettingValue("station_name", "North 220kV"),
        )
        assert not first.signalled

        await relay.set_setting("zone1_reach", 4.5)
        await wait_until(lambda: len(snapshots(sink)) == 2, what="the signalled snapshot")
        second = snapshots(sink)[1]
        assert second.signalled
        assert settings_of(second) == {**settings_of(first), "zone1_reach": 4.5}

        # an engineer's poll reads the same points afresh
        polled = await drv.poll("line1", PollKind.SETTINGS)
        assert isinstance(polled, SettingsResult)
        assert {s.name: s.value for s in polled.settings}["zone1_reach"] == 4.5

    # the mapped points are inventory, never events
    seen = {o.address for o in sink.points()}
    assert seen
    assert not seen & SECTION.consumed_addresses()
    assert seen <= {p.address for p in LINE.points}


async def test_without_a_signal_the_periodic_read_finds_changes() -> None:
    unsignalled = SECTION.model_copy(update={"settings_signal": None})
    async with relay_and_driver(unsignalled, identity_interval_s=0.2, settings_interval_s=0.2) as (
        relay,
        _drv,
        sink,
    ):
        await wait_until(lambda: identities(sink) and snapshots(sink), what="first reports")
        await relay.set_setting("autoreclose_enabled", False)
        await relay.set_firmware("2.5.0")
        await wait_until(
            lambda: any(settings_of(s)["autoreclose_enabled"] is False for s in snapshots(sink)),
            what="the changed setting",
        )
        await wait_until(
            lambda: identities(sink)[-1].firmware_version == "2.5.0", what="the new firmware"
        )
    assert not any(s.signalled for s in snapshots(sink))
