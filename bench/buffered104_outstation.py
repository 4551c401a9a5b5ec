"""IEC 104 outstations with a relay's bounded event buffer, counting what they lose.

A protection relay records each event when it happens into a buffer of fixed size and
sends from it as fast as the master's acknowledgements allow (k = 12 unacknowledged
I-frames). When the master is slow the buffer fills and the relay overwrites its oldest
event: the loss happens in the relay, and no master sees it. This outstation does the
same, one event per ASDU (M_SP_TB_1, its CP56 time the moment the event was recorded),
and at the end prints one JSON line with what it generated, overwrote, sent and saw
acknowledged, so a bench can count "lost at the outstation" instead of guessing it.

It reuses the wire handling of `raw104_sender.Station` (STARTDT, TESTFR, S-frames,
general interrogation). `--buffer 0` means unbounded: nothing is ever overwritten, so a
master that keeps up with nothing measures its own capacity.

    .venv/bin/python bench/buffered104_outstation.py --relays 1 --rate 2000 --events 4000 \\
        --base-port 26000 --wait-for-clients 1 --buffer 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw104_sender import Station, masters_started


class BufferedStation(Station):  # type: ignore[misc]  # imported by path: Any to mypy
    """One relay whose events wait in a bounded buffer until the window lets them out."""

    def __init__(self, index: int, port: int, points: int, buffer: int) -> None:
        super().__init__(index, port, points)
        self.buffer: deque[datetime] = deque()
        self.capacity = buffer  # 0: unbounded
        self.generated = 0
        self.overwritten = 0
        self.acked_frames = 0
        self.frames = 0  # I-frames sent: events, and the answers to an interrogation

    def record(self, at: datetime) -> None:
        """An event happened: keep it, overwriting the oldest one when the buffer is full."""
        self.generated += 1
        if self.capacity and len(self.buffer) >= self.capacity:
            self.buffer.popleft()
            self.overwritten += 1
        self.buffer.append(at)

    def pump(self) -> None:
        while self.buffer and self.can_send.is_set():
            self.send_event(self.buffer.popleft())

    def _send_asdu(self, asdu: bytes) -> None:
        super()._send_asdu(asdu)
        self.frames += 1

    def _ack_from(self, body: bytes) -> None:
        nr = struct.unpack_from("<H", body, 2)[0]
        self.acked_frames += ((nr - self.acked) % 65536) // 2
        super()._ack_from(body)
        self.pump()

    def _on_apdu(self, body: bytes) -> None:
        super()._on_apdu(body)
        self.pump()  # STARTDT opens the window

    def totals(self) -> dict[str, int]:
        return {
            "generated": self.generated,
            "overwritten": self.overwritten,
            "sent": self.sent,
            # Frames are acknowledged in order, and the interrogation's answers came first.
            "acked": max(0, self.acked_frames - (self.frames - self.sent)),
            "left_in_buffer": len(self.buffer),
            "frames": self.frames,
            "frames_acked": self.acked_frames,
        }


async def generate(stations: list[BufferedStation], rate: float, events: int) -> float:
    """Record `events` events across the stations, round robin, paced at `rate` per second.
    Each event's device time is when it was due (`n / rate` after the start), not the time
    of the loop turn that records it: events of one turn sharing a time stamp would repeat
    a point's value at the same millisecond, which the agent rightly drops as a resend."""
    t0, start = time.monotonic(), datetime.now(UTC)
    made = 0
    while made < events:
        due = min(events, int((time.monotonic() - t0) * rate) + 1)
        while made < due:
            stations[made % len(stations)].record(start + timedelta(seconds=made / rate))
            made += 1
        for station in stations:
            station.pump()
        await asyncio.sleep(0.001)
    return time.monotonic() - t0


async def main(args: argparse.Namespace) -> None:
    stations = [
        BufferedStation(i, args.base_port + i, args.points, args.buffer) for i in range(args.relays)
    ]
    servers = [await s.serve() for s in stations]
    print(f"{args.relays} buffered 104 stations on ports {args.base_port}..", flush=True)
    await masters_started(stations, args.wait_for_clients)
    print("generating", flush=True)
    seconds = await generate(stations, args.rate, args.events)
    # Drain, then wait for the master's last acknowledgements (its t2 timer, 10 s in c104).
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        if all(not s.buffer and s.acked_frames == s.frames for s in stations):
            break
    totals = {k: sum(s.totals()[k] for s in stations) for k in stations[0].totals()}
    print(json.dumps({"generate_seconds": seconds, **totals}), flush=True)
    for station in stations:
        if station.writer is not None:
            station.writer.close()  # the session ends on its own read error
    await asyncio.sleep(0.2)
    for server in servers:
        server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--relays", type=int, default=1)
    p.add_argument("--rate", type=float, default=2000, help="events/s over all relays")
    p.add_argument("--events", type=int, default=4000, help="events over all relays")
    p.add_argument("--base-port", type=int, required=True)
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--buffer", type=int, default=100, help="events per relay; 0 = unbounded")
    p.add_argument("--wait-for-clients", type=int, default=0)
    p.add_argument("--hold", type=float, default=60.0, help="longest wait for the last acks")
    asyncio.run(main(p.parse_args()))
