"""A minimal IEC 104 outstation on raw sockets, for latency measurements only.

c104's `Server` sends spontaneous data on its tick (50 ms at least), so a time stamp
taken when an event is queued says little about when it left: measured from it, even a
client that does nothing shows p50 50 ms. This sender writes each event's I-frame to the
socket at once, stamping its CP56Time2a (UTC) just before the write, so "transmit" is the
moment the bytes leave.

It speaks just enough of IEC 60870-5-104 for a master such as c104's client: STARTDT,
STOPDT and TESTFR confirmations, S-frame acknowledgements (it stops at k = 12
unacknowledged I-frames), general interrogation confirmed and terminated (no points),
and M_SP_TB_1 events with cause spontaneous. Not a simulator: no points to read, no
commands. Used by `bench/agent_spine.py --sender raw`.

    .venv/bin/python bench/raw104_sender.py --relays 20 --rate 1000 --duration 10 \\
        --base-port 26000 --wait-for-clients 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import Sequence
from datetime import UTC, datetime

K = 12  # unacknowledged I-frames allowed
U_STARTDT_ACT, U_STARTDT_CON = 0x07, 0x0B
U_STOPDT_ACT, U_STOPDT_CON = 0x13, 0x23
U_TESTFR_ACT, U_TESTFR_CON = 0x43, 0x83
M_SP_TB_1, C_IC_NA_1 = 30, 100
COT_SPONT, COT_ACTCON, COT_ACTTERM = 3, 7, 10


def cp56(at: datetime) -> bytes:
    ms = at.second * 1000 + at.microsecond // 1000
    day = at.day | (at.isoweekday() << 5)
    return struct.pack("<HBBBBB", ms, at.minute, at.hour, day, at.month, at.year - 2000)


class Station:
    """One relay: one TCP listener, at most one master."""

    def __init__(self, index: int, port: int, points: int) -> None:
        self.ca = index + 1
        self.port = port
        self.points = points
        self.writer: asyncio.StreamWriter | None = None
        self.started = False
        self.vs = 0  # our send sequence number
        self.vr = 0  # next receive sequence number expected
        self.acked = 0
        self.can_send = asyncio.Event()
        self.state = [False] * points
        self.cursor = 0
        self.sent = 0

    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._session, "127.0.0.1", self.port)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer, self.started = writer, False
        self.vs = self.vr = self.acked = 0
        try:
            while True:
                head = await reader.readexactly(2)
                if head[0] != 0x68:
                    return
                body = await reader.readexactly(head[1])
                self._on_apdu(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writer, self.started = None, False
            self.can_send.clear()
            writer.close()

    def _on_apdu(self, body: bytes) -> None:
        c1 = body[0]
        if c1 & 0x01 == 0:  # I-frame from the master
            self.vr = (self.vr + 2) % 65536
            self._ack_from(body)
            if body[4] == C_IC_NA_1:
                self._send_asdu(body[4:6] + bytes([COT_ACTCON]) + body[7:])
                self._send_asdu(body[4:6] + bytes([COT_ACTTERM]) + body[7:])
            else:
                self._send_s()
        elif c1 & 0x03 == 0x01:  # S-frame
            self._ack_from(body)
        elif c1 == U_STARTDT_ACT:
            self._send_u(U_STARTDT_CON)
            self.started = True
            self._update_window()
        elif c1 == U_STOPDT_ACT:
            self._send_u(U_STOPDT_CON)
            self.started = False
            self.can_send.clear()
        elif c1 == U_TESTFR_ACT:
            self._send_u(U_TESTFR_CON)

    def _ack_from(self, body: bytes) -> None:
        nr = struct.unpack_from("<H", body, 2)[0]
        self.acked = nr
        self._update_window()

    def _update_window(self) -> None:
        outstanding = ((self.vs - self.acked) % 65536) // 2
        if self.started and self.writer is not None and outstanding < K:
            self.can_send.set()
        else:
            self.can_send.clear()

    def _write(self, apdu: bytes) -> None:
        if self.writer is not None:
            self.writer.write(bytes([0x68, len(apdu)]) + apdu)

    def _send_u(self, code: int) -> None:
        self._write(bytes([code, 0, 0, 0]))

    def _send_s(self) -> None:
        self._write(bytes([0x01, 0]) + struct.pack("<H", self.vr))

    def _send_asdu(self, asdu: bytes) -> None:
        self._write(struct.pack("<HH", self.vs, self.vr) + asdu)
        self.vs = (self.vs + 2) % 65536
        self._update_window()

    def send_event(self, at: datetime | None = None) -> None:
        """One M_SP_TB_1 for the next point, its device time `at`, by default now (UTC)."""
        i = self.cursor % self.points
        self.cursor += 1
        self.state[i] = not self.state[i]
        ioa = struct.pack("<I", i + 1)[:3]
        asdu = (
            bytes([M_SP_TB_1, 1, COT_SPONT, 0])
            + struct.pack("<H", self.ca)
            + ioa
            + bytes([int(self.state[i])])
            + cp56(at or datetime.now(UTC))
        )
        self._send_asdu(asdu)
        self.sent += 1


async def drive(station: Station, rate: float, duration: float, t0: float) -> None:
    interval = 1.0 / rate
    n = 0
    while True:
        due = t0 + n * interval
        if due - t0 >= duration:
            return
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        n += 1
        if not station.can_send.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(station.can_send.wait(), 5)
        if station.can_send.is_set():
            station.send_event()


async def masters_started(stations: Sequence[Station], count: int) -> None:
    """Wait (at most 60 s) until `count` masters started data transfer and interrogated."""
    deadline = time.monotonic() + 60
    while sum(1 for s in stations if s.started) < count:
        if time.monotonic() > deadline:
            raise SystemExit("masters did not start data transfer")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # let the masters' interrogations finish


async def main(args: argparse.Namespace) -> None:
    stations = [Station(i, args.base_port + i, args.points) for i in range(args.relays)]
    servers = [await s.serve() for s in stations]
    print(f"{args.relays} raw 104 stations on ports {args.base_port}..", flush=True)
    await masters_started(stations, args.wait_for_clients)
    t0 = time.monotonic()
    per_relay = args.rate / args.relays
    await asyncio.gather(*(drive(s, per_relay, args.duration, t0) for s in stations))
    sent = sum(s.sent for s in stations)
    print(f"sent {sent} events in {time.monotonic() - t0:.2f}s", flush=True)
    await asyncio.sleep(args.hold)
    for server in servers:
        server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--relays", type=int, default=20)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--base-port", type=int, required=True)
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--wait-for-clients", type=int, default=0)
    p.add_argument("--hold", type=float, default=3.0, help="keep serving after the last event")
    asyncio.run(main(p.parse_args()))
