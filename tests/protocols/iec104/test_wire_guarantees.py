"""What the IEC 104 driver puts on the wire, seen at a raw outstation.

- Read-only: with the default config only STARTDT/STOPDT/TESTFR, S-frames and
  interrogations or reads leave the agent; clock sync (a write) only when configured.
- Durable before acknowledgement: an event the sink failed to store (disk full), or was
  still storing, stays unacknowledged at the relay, which sends it again to the next
  connection, where it is stored.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from protocols.driver import PollKind
from protocols.errors import LinkError
from protocols.observations import Observation
from simulator.relays.iec104.raw_outstation import RawOutstation, kind_of, single_point_tb

from .helpers import RecordingSink, device, driver_for, free_port, running, wait_until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = single_point_tb(1, 1001, True, T0)
MALFORMED = bytes.fromhex("01ff0300010001000001")  # SQ=1, 127 objects declared, 1 sent

U_NAMES = {0x07: "STARTDT_ACT", 0x13: "STOPDT_ACT", 0x43: "TESTFR_ACT", 0x83: "TESTFR_CON"}
# Type ids a read-only master may send: interrogation, counter interrogation, read.
READS = {100: "C_IC_NA_1", 101: "C_CI_NA_1", 102: "C_RD_NA_1"}
COT_ACTIVATION = 6


def not_a_read(received: Sequence[bytes]) -> list[str]:
    """Every frame from the master that is not link control, an S-frame or a read."""
    found = []
    for body in received:
        kind = kind_of(body)
        if kind == "U" and body[0] not in U_NAMES:
            found.append(f"U-frame 0x{body[0]:02x}")
        elif kind == "I" and (body[4] not in READS or body[6] & 0x3F != COT_ACTIVATION):
            found.append(f"I-frame type {body[4]} cause {body[6] & 0x3F}")
    return found


@pytest.mark.parametrize("writes", [False, True], ids=["default", "clock_sync_enabled"])
async def test_only_reads_leave_the_agent(writes: bool) -> None:
    """The default config: nothing but link control and interrogations, through connect,
    a status poll and a relay that drops and comes back. With clock sync configured the
    same check finds the C_CS_NA_1, so it can fail."""
    relay = await RawOutstation(free_port()).start()
    extra = {"clock_sync": True, "allow_commands": True} if writes else {}
    cfg = device("r1", relay.port, 1, connect_timeout_s=20.0, **extra)
    driver = driver_for(cfg)
    sink = RecordingSink()
    try:
        async with running(driver, sink) as task:
            await wait_until(lambda: driver.ready, what="connect interrogation")
            await driver.poll("r1", PollKind.STATUS)
            await relay.send_asdu(EVENT)
            await relay.wait_all_acked()
            if writes:
                await wait_until(lambda: any(b[4:5] == b"\x67" for b in relay.received))
            relay.drop_master()
            with pytest.raises(LinkError):
                await asyncio.wait_for(task, 30)
    finally:
        await relay.close()
    sent = not_a_read(relay.received)
    assert any(kind_of(b) == "I" and b[4] == 100 for b in relay.received)  # the GI went out
    assert sent == (["I-frame type 103 cause 6"] if writes else [])


class FailingSink(RecordingSink):
    """Raises like an outbox whose commit fails (disk full) while `failing` is set;
    with `stall`, each failing call first waits until the test releases it."""

    def __init__(self, stall: bool = False) -> None:
        super().__init__()
        self.failing = True
        self.stall = stall
        self.entered = threading.Event()
        self.release = threading.Event()
        self.failed_calls = 0

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        if self.failing:
            self.entered.set()
            if self.stall:
                self.release.wait(30)
            self.failed_calls += 1
            raise OSError(28, "No space left on device")
        super().deliver_blocking(observations)


@pytest.mark.parametrize(
    ("frame", "stall"),
    [(EVENT, False), (EVENT, True), (MALFORMED, False)],
    ids=["event_commit_fails", "event_commit_stalls_then_fails", "raw_asdu_commit_fails"],
)
async def test_what_could_not_be_stored_is_never_acknowledged(frame: bytes, stall: bool) -> None:
    relay = await RawOutstation(free_port()).start()
    sink = FailingSink(stall=stall)
    try:
        driver = driver_for(device("r1", relay.port, 1))
        async with running(driver, sink) as task:
            await wait_until(lambda: driver.ready, what="connect interrogation")
            await relay.send_asdu(frame)
            await asyncio.to_thread(sink.entered.wait, 30)
            # While the store is still running (stall) or after it failed: the relay
            # still holds the frame as unacknowledged.
            assert [body for _, body in relay.unacked] == [frame]
            sink.release.set()
            with pytest.raises(LinkError, match="sink failed"):
                await asyncio.wait_for(task, 30)
        assert [body for _, body in relay.unacked] == [frame]
        assert sink.failed_calls == 1
        sink.failing = False  # the disk has room again; the next connection gets it again
        async with running(driver_for(device("r1", relay.port, 1)), sink):
            await wait_until(lambda: relay.connections == 2 and not relay.unacked)
    finally:
        await relay.close()
    stored = [o for o in sink.points("r1") if o.address == "1001" or "diverted" in o.details]
    assert len(stored) == 1
    if frame == EVENT:
        assert stored[0].device_time == T0
    else:
        assert stored[0].details["raw"] == MALFORMED.hex()
