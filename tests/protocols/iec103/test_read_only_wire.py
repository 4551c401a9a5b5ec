"""Read-only on the wire: with a relay's default config (no `allow_commands`, no
`time_sync`) nothing leaves the agent but link-layer frames, general interrogation, polls
and reads. Everything the master writes to the bus is recorded as bytes and decoded
again here, independently of what the driver believes it sent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocols.driver import PollKind, SettingsResult
from protocols.iec103.codec.asdu import decode_asdu
from protocols.iec103.codec.asdu_generic import GenericCommand
from protocols.iec103.codec.frames import (
    FixedFrame,
    FrameExtractor,
    PrimaryFunction,
    SingleCharFrame,
    VariableFrame,
)
from protocols.observations import DisturbanceObservation, SettingsObservation
from tests.protocols.iec103.conftest import Bench, make_bench, running

# Fixed frames a master may send that change nothing on a relay: the link resets (they
# reset the link layer only: FCB and the relay's send buffer pointer), status and polls.
LINK_AND_POLLS = {
    PrimaryFunction.RESET_CU,
    PrimaryFunction.RESET_FCB,
    PrimaryFunction.REQUEST_STATUS,
    PrimaryFunction.REQUEST_CLASS_1,
    PrimaryFunction.REQUEST_CLASS_2,
}
GENERAL_INTERROGATION = 7
GENERIC_COMMAND = 21  # its INF says read (240-245) or write (248-251)
GENERIC_READS = {240, 241, 243, 244, 245}
DISTURBANCE_ORDER, DISTURBANCE_ACK = 24, 25  # select, request, abort; acknowledge


def sent_by_type(wire: bytes) -> Counter[str]:
    """What the master wrote, by kind; anything that is not a read fails the test."""
    extractor = FrameExtractor()
    kinds: Counter[str] = Counter()
    for frame in extractor.feed(wire):
        assert not isinstance(frame, SingleCharFrame), "the master sent E5"
        assert frame.control.prm, f"a secondary frame from the master: {frame}"
        function = frame.control.function
        if isinstance(frame, FixedFrame):
            assert function in LINK_AND_POLLS, f"fixed frame with function {function}"
            kinds[f"fixed {function}"] += 1
            continue
        assert isinstance(frame, VariableFrame)
        assert function == PrimaryFunction.SEND_CONFIRM, f"user data with function {function}"
        type_id = frame.asdu[0]
        allowed = (GENERAL_INTERROGATION, GENERIC_COMMAND, DISTURBANCE_ORDER, DISTURBANCE_ACK)
        assert type_id in allowed, f"ASDU {type_id} sent: {frame.asdu.hex(' ')}"
        if type_id == GENERIC_COMMAND:
            command = decode_asdu(frame.asdu)
            assert isinstance(command, GenericCommand)
            assert command.inf in GENERIC_READS, f"generic services INF {command.inf} (a write)"
        kinds[f"asdu {type_id}"] += 1
    assert extractor.garbage_bytes == 0
    assert extractor.bad_frames == 0
    return kinds


async def exercise(bench: Bench) -> None:
    """Everything a default-config relay does: reset, identity, GI, settings read (at start,
    after a change on the relay, and on demand), events, a disturbance record transfer."""
    relay, sink = bench.relays["relay1"], bench.sink
    await bench.until(lambda: len(sink.of(SettingsObservation, "relay1")) >= 1)
    now = datetime.now(UTC)
    trip = bench.profile.by_name["trip_phase_a"]
    await relay.emit(trip, True, [], now)  # a trip records a disturbance
    await relay.emit(trip, False, [], now + timedelta(milliseconds=80))
    await relay.set_setting("zone1_reach", 4.4)
    await bench.until(lambda: len(sink.of(DisturbanceObservation, "relay1")) >= 1, timeout=60)
    await bench.until(lambda: len(sink.of(SettingsObservation, "relay1")) >= 2)
    polled = await bench.driver.poll("relay2", PollKind.SETTINGS)
    assert isinstance(polled, SettingsResult)


async def test_default_config_sends_only_link_frames_interrogation_polls_and_reads(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path, state_dir=tmp_path / "state")
    assert not any(d.allow_commands or d.time_sync for d in bench.devices)  # the defaults
    wire = bytearray()
    bus = bench.relays["relay1"].bus
    assert bus is not None
    bus.taps.append(wire.extend)
    async with running(bench):
        await exercise(bench)
    kinds = sent_by_type(bytes(wire))
    # Each kind of read really happened, so the recording covers them all.
    for kind in ("asdu 7", "asdu 21", "asdu 24", "asdu 25", "fixed 0", "fixed 10", "fixed 11"):
        assert kinds[kind] > 0, (kind, kinds)


async def test_the_recording_sees_a_write_when_one_is_allowed(tmp_path: Path) -> None:
    """The same recording with time sync allowed shows ASDU 6: the check above can fail."""
    bench = await make_bench(tmp_path, allow_commands=True, time_sync=True)
    wire = bytearray()
    bus = bench.relays["relay1"].bus
    assert bus is not None
    bus.taps.append(wire.extend)
    async with running(bench):
        await bench.until(lambda: len(bench.sink.of(SettingsObservation, "relay1")) >= 1)
    with pytest.raises(AssertionError, match="ASDU 6 sent"):
        sent_by_type(bytes(wire))
