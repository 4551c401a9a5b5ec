"""The simulated IEC 104 relay keeps every event until a master acknowledges it.

The first master is a raw socket speaking minimal IEC 104 (STARTDT act, read I-frames, never
or only partly acknowledge, drop the connection): the most deterministic way to leave events
unacknowledged. The next master must receive every unacknowledged event again, and none that
was acknowledged.

No `from __future__ import annotations`: c104 checks the callbacks below by annotation.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import c104
import pytest

from simulator.relays.iec104.acks import MOD, AckTracker, Key, event_key, spontaneous_key
from simulator.relays.iec104.relay import Iec104Relay
from simulator.runner import relocate
from simulator.scenario import SEED_SCENARIO, load_scenario
from tests.protocols.iec104.helpers import free_port, wait_until

STARTDT_ACT = bytes.fromhex("680407000000")
TESTFR_CON = bytes.fromhex("680483000000")
DEADLINE_S = 30.0


def s_frame(nr: int) -> bytes:
    n = (nr % MOD) << 1
    return bytes([0x68, 0x04, 0x01, 0x00, n & 0xFF, n >> 8])


def i_frame(ns: int, nr: int, asdu: bytes = b"\x64\x01\x06\x00\x01\x00\x00\x00\x00\x14") -> bytes:
    s, r = (ns % MOD) << 1, (nr % MOD) << 1
    return bytes([0x68, 4 + len(asdu), s & 0xFF, s >> 8, r & 0xFF, r >> 8]) + asdu


class RawMaster:
    """A minimal IEC 104 master on a plain TCP socket: it acknowledges only when told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = 0  # I-frames received: the next N(R)
        self.keys: list[Key] = []

    @classmethod
    async def connect(cls, port: int) -> "RawMaster":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        master = cls(reader, writer)
        writer.write(STARTDT_ACT)
        await writer.drain()
        async with asyncio.timeout(DEADLINE_S):
            while (await master._read())[2] != 0x0B:  # STARTDT con
                pass
        return master

    async def _read(self) -> bytes:
        head = await self.reader.readexactly(2)
        apdu = head + await self.reader.readexactly(head[1])
        if apdu[2] == 0x43:  # TESTFR act: keep the link alive
            self.writer.write(TESTFR_CON)
        return apdu

    async def receive(self, count: int, ack_each: bool = False) -> list[Key]:
        """Read until `count` more spontaneous I-frames arrived."""
        got: list[Key] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(got) < count:
                apdu = await self._read()
                if apdu[2] & 0x01:
                    continue  # S- or U-frame
                self.received += 1
                key = spontaneous_key(apdu)
                if key is not None:
                    got.append(key)
                if ack_each:
                    await self.ack()
        self.keys.extend(got)
        return got

    async def ack(self, upto: int | None = None) -> None:
        self.writer.write(s_frame(self.received if upto is None else upto))
        await self.writer.drain()

    def kill(self) -> None:
        """Drop the connection at once, as a SIGKILLed agent's kernel would."""
        self.writer.transport.abort()


@pytest.fixture
async def relay() -> AsyncIterator[Iec104Relay]:
    scenario = relocate(load_scenario(SEED_SCENARIO), {"line1": {"port": free_port()}})
    sim = Iec104Relay(scenario.relay("line1"), scenario.profiles["line1"])
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def emit(relay: Iec104Relay, count: int) -> list[Key]:
    """`count` events, 1 ms apart, cycling through every point (and so every ASDU type)."""
    points = list(relay.profile.points)
    base = datetime.now(UTC).replace(microsecond=0)
    keys = []
    for n in range(count):
        spec = points[n % len(points)]
        at = base + timedelta(milliseconds=n)
        await relay.emit(spec, n % 4 < 2, [], at)
        type_id = c104.Type.__members__[relay.type_of(spec.address)].value
        keys.append(event_key(type_id, int(spec.address), at))
    return keys


async def settled(relay: Iec104Relay) -> None:
    await wait_until(lambda: relay.backlog == 0 and relay.unconfirmed == 0, DEADLINE_S,
                     "every event acknowledged")  # fmt: skip


async def test_unacknowledged_events_go_to_the_next_master_in_order(relay: Iec104Relay) -> None:
    first = await RawMaster.connect(relay.link.port)
    keys = await emit(relay, 30)
    # k=12: the relay sends 12 I-frames, then waits for an acknowledgement that never comes.
    got = await first.receive(12)
    assert got == keys[:12]
    first.kill()

    second = await RawMaster.connect(relay.link.port)
    await second.receive(30, ack_each=True)
    assert second.keys == keys  # all of them again, first ones first
    await settled(relay)
    assert relay.acks.requeued >= 30


async def test_acknowledged_events_are_not_sent_again(relay: Iec104Relay) -> None:
    first = await RawMaster.connect(relay.link.port)
    keys = await emit(relay, 20)
    await first.receive(10)
    await first.ack(upto=7)  # confirms the I-frames with N(S) 0..6
    await wait_until(lambda: relay.acks.confirmed >= 7, DEADLINE_S, "the ack to be read")
    first.kill()

    second = await RawMaster.connect(relay.link.port)
    await second.receive(13, ack_each=True)
    await settled(relay)
    assert second.keys == keys[7:]
    assert relay.acks.confirmed == 20


async def test_an_i_frame_from_the_master_acknowledges_too(relay: Iec104Relay) -> None:
    first = await RawMaster.connect(relay.link.port)
    keys = await emit(relay, 5)
    await first.receive(5)
    # A command I-frame (here an interrogation) carries N(R) = 5: all five confirmed.
    first.writer.write(i_frame(0, first.received))
    await first.writer.drain()
    await wait_until(lambda: relay.acks.confirmed >= 5, DEADLINE_S, "the ack to be read")
    first.kill()
    assert first.keys == keys

    second = await RawMaster.connect(relay.link.port)
    later = await emit(relay, 3)
    await second.receive(3, ack_each=True)
    await settled(relay)
    assert second.keys == later


async def test_a_c104_client_gets_what_a_killed_master_never_acknowledged(
    relay: Iec104Relay,
) -> None:
    first = await RawMaster.connect(relay.link.port)
    keys = await emit(relay, 24)  # a multiple of w=8: the client acks without waiting for t2
    await first.receive(12)
    first.kill()

    got: list[Key] = []
    lock = threading.Lock()

    def on_point(
        point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        if message.cot == c104.Cot.SPONTANEOUS:
            raw = bytes(message.raw)
            key = spontaneous_key(raw if raw[:1] == b"\x68" else bytes(6) + raw)
            with lock:
                got.append(key if key is not None else (0, 0, None))
        return c104.ResponseState.SUCCESS

    def on_state(connection: c104.Connection, state: c104.ConnectionState) -> None:
        if state == c104.ConnectionState.OPEN_MUTED:
            connection.unmute()

    client = c104.Client(tick_rate_ms=50, command_timeout_ms=1000)
    connection = client.add_connection(ip="127.0.0.1", port=relay.link.port, init=c104.Init.MUTED)
    assert connection is not None
    station = connection.add_station(common_address=relay.link.common_address)
    assert station is not None
    for spec in relay.profile.points:
        point = station.add_point(
            io_address=int(spec.address), type=c104.Type.__members__[relay.type_of(spec.address)]
        )
        assert point is not None
        point.on_receive(callable=on_point)
    connection.on_state_change(callable=on_state)
    client.start()
    try:

        def all_arrived() -> bool:
            with lock:
                return len(got) >= len(keys)

        await wait_until(all_arrived, DEADLINE_S, "every unacknowledged event")
        await settled(relay)  # the client's S-frame (w=8 or t2) confirmed them all
        with lock:
            assert got == keys
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(client.stop)


def test_sequence_numbers_wrap() -> None:
    tracker: AckTracker[str] = AckTracker("t")
    asdu = bytes([30, 1, 3, 0, 1, 0]) + (1001).to_bytes(3, "little") + b"\x01" + bytes(7)
    zero = (30, 1001, (0, 0, 0, 0, 0, 0))
    for name in "abc":
        tracker.queued(name, zero)
    for ns in (MOD - 2, MOD - 1, 0):
        tracker.sent_frame(i_frame(ns, 0, asdu))
    assert tracker.unconfirmed == 3
    tracker.received_frame(s_frame(MOD - 1))  # confirms N(S) 32766 only
    assert tracker.confirmed == 1
    tracker.received_frame(s_frame(1))  # confirms 32767 and 0, across the wrap
    assert tracker.confirmed == 3
    assert tracker.unconfirmed == 0


def _frame_for(ioa: int) -> bytes:
    """A spontaneous M_SP_TB_1 ASDU for `ioa` with an all-zero CP56 time."""
    return bytes([30, 1, 3, 0, 1, 0]) + ioa.to_bytes(3, "little") + b"\x01" + bytes(7)


def _key(ioa: int) -> Key:
    return (30, ioa, (0, 0, 0, 0, 0, 0))


def test_a_new_connection_orphans_what_the_old_one_left_and_ignores_its_stale_frames() -> None:
    tracker: AckTracker[str] = AckTracker("t")
    for name in "abc":
        tracker.queued(name, _key(1001))
    tracker.sent_frame(i_frame(0, 0, _frame_for(1001)))
    tracker.sent_frame(i_frame(1, 0, _frame_for(1001)))
    tracker.received_frame(s_frame(1))  # "a" confirmed; "b" in flight; "c" still queued
    tracker.new_connection()
    assert tracker.take_orphans() == ["b", "c"]
    tracker.queued("b", _key(1001))
    # The old connection's frames, late in c104's callback queue, change nothing...
    tracker.sent_frame(i_frame(2, 0, _frame_for(1001)))
    tracker.received_frame(s_frame(3))
    assert tracker.confirmed == 1
    assert tracker.unconfirmed == 1
    # ...until the new connection's STARTDT act: then its numbering (from 0) counts.
    tracker.received_frame(STARTDT_ACT)
    tracker.sent_frame(i_frame(0, 0, _frame_for(1001)))
    tracker.received_frame(s_frame(1))
    assert tracker.confirmed == 2
    assert tracker.unconfirmed == 0


def test_events_c104_skipped_are_sent_again() -> None:
    tracker: AckTracker[str] = AckTracker("t")
    for name, ioa in zip("abc", (1001, 1002, 1003), strict=True):
        tracker.queued(name, _key(ioa))
    tracker.sent_frame(i_frame(0, 0, _frame_for(1003)))  # "a" and "b" never went out
    assert tracker.take_orphans() == ["a", "b"]
    tracker.received_frame(s_frame(1))
    assert tracker.confirmed == 1
    assert tracker.unconfirmed == 0
