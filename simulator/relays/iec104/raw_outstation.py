"""An IEC 104 outstation on raw sockets: it sends exactly the bytes a test or bench asks for.

c104's `Server` builds only well-formed ASDUs, sends on its tick and drops what a dying
connection had in flight. The agent's hardening needs the opposite: a relay that sends
malformed or unusual ASDUs (and raw garbage), writes at once, records every frame the master
sends (to prove what leaves the agent), and behaves like a real relay about acknowledgement:

- an I-frame stays in `unacked` until the master's N(R) (S- or I-frame) confirms it, then
  its ASDU goes to `acked` (what the master has taken responsibility for);
- a new connection gets every unacknowledged ASDU again, first and in order (renumbered:
  sequence numbers restart with each connection), so a master that failed to store an event
  before acknowledging it cannot hide it;
- at most `k` unacknowledged I-frames are on the wire; `send_asdu` waits for the window;
- a general interrogation (C_IC_NA_1) is confirmed and terminated, answered with `gi_answer`
  ASDUs in between; other commands get a negative confirmation.

One master at a time; a second connection replaces the first. Used by the 104 tests
(tests/protocols/iec104/), `bench/raw104_sender.py` and the fuzz sender in
`simulator/harness/fuzz104.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

K = 12
U_STARTDT_ACT, U_STARTDT_CON = 0x07, 0x0B
U_STOPDT_ACT, U_STOPDT_CON = 0x13, 0x23
U_TESTFR_ACT, U_TESTFR_CON = 0x43, 0x83
C_IC_NA_1 = 100
COT_SPONTANEOUS, COT_ACTCON, COT_ACTTERM = 3, 7, 10
SEQ_MOD = 32768


def cp56(at: datetime) -> bytes:
    """CP56Time2a of an aware datetime, no flags."""
    at = at.astimezone(UTC)
    ms = at.second * 1000 + at.microsecond // 1000
    day = at.day | (at.isoweekday() << 5)
    return struct.pack("<HBBBBB", ms, at.minute, at.hour, day, at.month, at.year - 2000)


def asdu(type_id: int, cot: int, ca: int, objects: bytes, count: int, *, sq: bool = False) -> bytes:
    """An ASDU: data unit identifier (originator 0) plus the objects' bytes as given."""
    vsq = (0x80 if sq else 0) | (count & 0x7F)
    return bytes([type_id, vsq, cot, 0]) + struct.pack("<H", ca) + objects


def single_point_tb(ca: int, ioa: int, on: bool, at: datetime, cot: int = COT_SPONTANEOUS) -> bytes:
    """M_SP_TB_1 (30): one single point with its CP56Time2a."""
    element = struct.pack("<I", ioa)[:3] + bytes([int(on)]) + cp56(at)
    return asdu(30, cot, ca, element, 1)


def kind_of(apdu_body: bytes) -> str:
    """ "I", "S" or "U" of an APDU body (control field onwards)."""
    if apdu_body[0] & 0x01 == 0:
        return "I"
    return "S" if apdu_body[0] & 0x03 == 0x01 else "U"


@dataclass
class RawOutstation:
    port: int
    common_address: int = 1
    k: int = K
    gi_answer: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)  # every APDU body from the master
    connections: int = 0
    sent: int = 0  # I-frames written (resends included)

    def __post_init__(self) -> None:
        self.unacked: deque[tuple[int, bytes]] = deque()  # (N(S), ASDU) in send order
        self.acked: list[bytes] = []  # ASDUs the master confirmed, in order
        self.started = asyncio.Event()
        self._window = asyncio.Event()
        self._acked = asyncio.Event()  # set whenever the master confirmed something
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._vs = self._vr = 0

    async def start(self) -> RawOutstation:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def drop_master(self) -> None:
        """Close the master's connection (what a relay does after t1)."""
        if self._writer is not None:
            self._writer.close()

    # --- sending ----------------------------------------------------------------------------

    async def send_asdu(self, body: bytes, wait_s: float = 30.0) -> None:
        """Send one ASDU as an I-frame once the master started data transfer and the window
        has room; it stays unacknowledged until the master's N(R) covers it."""
        async with asyncio.timeout(wait_s):
            while not (self.started.is_set() and self._window.is_set()):
                await self._window.wait() if self.started.is_set() else await self.started.wait()
        self._send_i(body, keep=True)

    async def send_many(self, bodies: Iterable[bytes], wait_s: float = 30.0) -> None:
        for body in bodies:
            await self.send_asdu(body, wait_s)

    def send_raw(self, frame: bytes) -> None:
        """Write bytes as they are (APCI included): for garbage and broken framing."""
        if self._writer is not None:
            self._writer.write(frame)

    async def drain(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def wait_all_acked(self, wait_s: float = 30.0) -> None:
        async with asyncio.timeout(wait_s):
            while self.unacked:
                self._acked.clear()
                await self._acked.wait()

    def _send_i(self, body: bytes, keep: bool) -> None:
        if keep:
            self.unacked.append((self._vs, body))
        self._write(struct.pack("<HH", self._vs << 1, self._vr << 1) + body)
        self._vs = (self._vs + 1) % SEQ_MOD
        self.sent += 1
        self._update_window()

    def _write(self, apdu_body: bytes) -> None:
        if self._writer is not None:
            self._writer.write(bytes([0x68, len(apdu_body)]) + apdu_body)

    # --- receiving --------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer, self._vs, self._vr = writer, 0, 0
        self.connections += 1
        self.started.clear()
        self._window.clear()
        try:
            while True:
                head = await reader.readexactly(2)
                if head[0] != 0x68:
                    return
                self._on_apdu(await reader.readexactly(head[1]))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the master left, or the outstation is closing
        finally:
            if self._writer is writer:
                self._writer = None
                self.started.clear()
                self._window.clear()
            writer.close()

    def _on_apdu(self, body: bytes) -> None:
        self.received.append(body)
        kind = kind_of(body)
        if kind == "I":
            self._vr = (self._vr + 1) % SEQ_MOD
            self._confirmed(struct.unpack_from("<H", body, 2)[0] >> 1)
            self._answer_command(body[4:])
        elif kind == "S":
            self._confirmed(struct.unpack_from("<H", body, 2)[0] >> 1)
        elif body[0] == U_STARTDT_ACT:
            self._write(bytes([U_STARTDT_CON, 0, 0, 0]))
            self._resend_unacked()
            self.started.set()
            self._update_window()
        elif body[0] == U_STOPDT_ACT:
            self._write(bytes([U_STOPDT_CON, 0, 0, 0]))
            self.started.clear()
        elif body[0] == U_TESTFR_ACT:
            self._write(bytes([U_TESTFR_CON, 0, 0, 0]))

    def _answer_command(self, command: bytes) -> None:
        if command[0] == C_IC_NA_1:
            self._send_i(command[:2] + bytes([COT_ACTCON]) + command[3:], keep=False)
            for body in self.gi_answer:
                self._send_i(body, keep=False)
            self._send_i(command[:2] + bytes([COT_ACTTERM]) + command[3:], keep=False)
        else:  # negative confirmation: this relay executes nothing
            self._send_i(command[:2] + bytes([COT_ACTCON | 0x40]) + command[3:], keep=False)

    def _confirmed(self, nr: int) -> None:
        """Drop every kept I-frame with N(S) before `nr` (modulo 2^15)."""
        while self.unacked and 0 < (nr - self.unacked[0][0]) % SEQ_MOD <= (
            (self._vs - self.unacked[0][0]) % SEQ_MOD
        ):
            self.acked.append(self.unacked.popleft()[1])
        self._acked.set()
        self._update_window()

    def _resend_unacked(self) -> None:
        pending = list(self.unacked)
        self.unacked.clear()
        for _, body in pending:
            self._send_i(body, keep=True)

    def _update_window(self) -> None:
        outstanding = (self._vs - (self.unacked[0][0] if self.unacked else self._vs)) % SEQ_MOD
        if self.started.is_set() and self._writer is not None and outstanding < self.k:
            self._window.set()
        else:
            self._window.clear()


async def _serve_events(port: int, rate: float, count: int, points: int) -> None:
    """Send `count` M_SP_TB_1 events (device time: now) at `rate` per second (0: as fast
    as the window allows) to the first master, then wait until all are acknowledged."""
    relay = await RawOutstation(port).start()
    print(f"raw 104 outstation on port {port}", flush=True)
    await relay.started.wait()
    await asyncio.sleep(0.5)  # the master's connect interrogation
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for n in range(count):
        if rate > 0 and (delay := t0 + n / rate - loop.time()) > 0:
            await asyncio.sleep(delay)
        body = single_point_tb(relay.common_address, 1 + n % points, n % 2 == 0, datetime.now(UTC))
        await relay.send_asdu(body, wait_s=60)
    await relay.wait_all_acked(wait_s=60)
    print(f"sent {count} events in {loop.time() - t0:.1f}s, all acknowledged", flush=True)
    await relay.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=_serve_events.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--points", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(_serve_events(args.port, args.rate, args.count, args.points))
