"""One relay's procedures never hold up the other relays on its bus, `read_settings =
false` is obeyed, and a late ASDU 5 is not reported missing.

Every check counts frames on the simulated bus (`SimulatedBus.frames`, in the order the
relays received them) or bytes the relays received, never wall-clock time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.rpc import PollKind
from protocols.iec103 import driver as driver_module
from protocols.iec103.codec.frames import FixedFrame, PrimaryFunction, VariableFrame
from protocols.observations import IdentityObservation, SettingsObservation
from tests.protocols.iec103.conftest import Bench, make_bench, running

GENERIC_COMMAND = 21


def bus_frames(bench: Bench) -> list[object]:
    bus = bench.relays["relay1"].bus
    assert bus is not None
    return list(bus.frames)


def class1_poll(frames: Sequence[FixedFrame | VariableFrame], address: int) -> int | None:
    """Index of the first class-1 poll of `address` in `frames`."""
    return next(
        (
            i
            for i, f in enumerate(frames)
            if f.address == address and f.control.function == PrimaryFunction.REQUEST_CLASS_1
        ),
        None,
    )


async def relay1_frames_until_fetched(bench: Bench, value: bool) -> int:
    """Queue an event on relay2 (link address 2); how many frames went to relay1 (address
    1) between that moment and relay2's class-1 poll that fetched it."""
    bus = bench.relays["relay1"].bus
    assert bus is not None
    queued_at = len(bus.frames)
    point = bench.profile.by_name["self_check_fail"]
    await bench.relays["relay2"].emit(point, value, [], datetime.now(UTC))
    await bench.until(lambda: class1_poll(bus.frames[queued_at:], 2) is not None)
    frames = bus.frames[queued_at:]
    polled = class1_poll(frames, 2)
    assert polled is not None
    return sum(f.address == 1 for f in frames[:polled])


def generic_reads(bench: Bench) -> list[VariableFrame]:
    return [
        f
        for f in bus_frames(bench)
        if isinstance(f, VariableFrame) and f.asdu and f.asdu[0] == GENERIC_COMMAND
    ]


async def test_a_settings_read_that_never_ends_does_not_hold_up_the_other_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "PROCEDURE_TIMEOUT_S", 5.0)
    # poll_interval_ms = 0: relay2 may be polled at every turn, so its turns are visible
    bench = await make_bench(tmp_path, poll_interval_ms=0)
    async with running(bench):
        await bench.until(
            lambda: all(bench.sink.of(SettingsObservation, d) for d in ("relay1", "relay2"))
        )
        slow = bench.relays["relay1"]
        slow.answer_generic = False  # relay1 accepts the next read and never answers it
        reads_before = len(generic_reads(bench))
        await slow.set_setting("zone1_reach", 4.4)  # INF 22: relay1 starts a settings read
        await bench.until(lambda: len(generic_reads(bench)) > reads_before)

        fetched = [await relay1_frames_until_fetched(bench, n % 2 == 0) for n in range(3)]
        # relay1's read is still waiting for its answer
        assert len(bench.sink.of(SettingsObservation, "relay1")) == 1
        assert bench.driver.relays["relay1"].counters["settings_refused"] == 0
        # Between the event and relay2's class-1 poll that fetches it, relay1 had at most:
        # the frame in flight, the turn in which relay2 announced ACD and one more turn
        # (a procedure step is at most a send and a poll).
        assert all(relay1_frames <= 5 for relay1_frames in fetched), fetched
        await bench.until(lambda: len(bench.sink.events("relay2")) >= 3)


async def test_read_settings_false_sends_no_settings_request_ever(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path, read_settings=False, settings_interval_s=0.05)
    async with running(bench):
        for device in ("relay1", "relay2"):
            polled = bench.driver.relays[device]
            await bench.until(lambda: polled.counters["gi_completed"] > 0)  # noqa: B023
        # the relay signals changed settings (INF 22): still no read
        await bench.relays["relay1"].set_setting("zone1_reach", 4.6)
        await bench.until(lambda: any(e.address == "128/22" for e in bench.sink.events("relay1")))
        # many poll turns later (well past settings_interval_s): nothing either
        polls = len(bus_frames(bench))
        await bench.until(lambda: len(bus_frames(bench)) > polls + 200)
        for relay in bench.relays.values():
            assert [f for f in relay.received if f.type_id == GENERIC_COMMAND] == []
        assert generic_reads(bench) == []
        assert bench.sink.of(SettingsObservation) == []
        with pytest.raises(ValueError, match="read_settings = false"):
            await bench.driver.poll("relay1", PollKind.SETTINGS)  # an engineer's poll is refused


async def test_a_late_identification_is_not_reported_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="protocols.iec103.driver")
    bench = await make_bench(tmp_path)
    for relay in bench.relays.values():
        relay.identity_after = 6  # ACD stays off after the reset; ASDU 5 comes 6 polls later
    async with running(bench):
        await bench.until(
            lambda: all(bench.sink.of(IdentityObservation, d) for d in ("relay1", "relay2"))
        )
        await bench.until(
            lambda: all(bench.sink.of(SettingsObservation, d) for d in ("relay1", "relay2"))
        )
    assert not [r for r in caplog.records if "ASDU 5" in r.getMessage()]


async def test_an_identification_that_never_comes_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "PROCEDURE_TIMEOUT_S", 0.5)
    caplog.set_level(logging.WARNING, logger="protocols.iec103.driver")
    bench = await make_bench(tmp_path)
    bench.relays["relay1"].send_identity = False
    async with running(bench):
        await bench.until(lambda: bench.driver.relays["relay1"].counters["identity_missing"] == 1)
        polls = len(bus_frames(bench))
        await bench.until(lambda: len(bus_frames(bench)) > polls + 100)
        assert bench.sink.of(IdentityObservation, "relay2")
    missing = [r.getMessage() for r in caplog.records if "ASDU 5" in r.getMessage()]
    assert len(missing) == 1
    assert "relay1" in missing[0]
    assert bench.driver.relays["relay2"].counters["identity_missing"] == 0
