"""The relay's settings change counter: a change is read at once, not at the next periodic
settings read, and the observation says the relay signalled it."""

from __future__ import annotations

from protocols.modbus.driver import ModbusDriver
from protocols.observations import SettingsObservation

from .helpers import RecordingSink, free_port, plan, relay, running, tcp_device, wait_until


def _settings(sink: RecordingSink) -> list[SettingsObservation]:
    return [o for o in sink.observations if isinstance(o, SettingsObservation)]


async def test_a_counted_settings_change_is_read_at_once_and_marked_signalled() -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1},
                settings={"i_pickup": 1.2, "bay_name": "Feeder 1"})  # fmt: skip
    await sim.start()
    try:
        # the periodic read is an hour away: only the counter can bring the change
        driver = ModbusDriver(plan([tcp_device("f1", port, settings_interval_s=3600)]))
        sink = RecordingSink()
        async with running(driver, sink):
            await wait_until(lambda: _settings(sink), what="the first settings read")
            assert _settings(sink)[0].signalled is False
            await sim.set_setting("i_pickup", 1.5)
            await wait_until(lambda: len(_settings(sink)) == 2, what="the signalled read")
            second = _settings(sink)[1]
            assert second.signalled is True
            assert {s.name: s.value for s in second.settings}["i_pickup"] == 1.5
    finally:
        await sim.stop()
