"""IEC 103 disturbance record transfer at a real line's pace.

    .venv/bin/python bench/iec103_disturbance.py [--baud 19200] [--channels 10]
        [--samples 2000] [--others 2]

The driver and simulated relays talk over a pty pair (the simulator's, like
`socat pty,link=...`). A pty has no baud rate, so the simulated bus holds each answer back
until the request and the answer would have crossed a line of `--baud` (11 bits per
octet: start, 8 data, even parity, stop); the driver's own timing is real.

1. Transfer alone: one relay on the bus transfers a record of `--channels` x `--samples`.
   Figure: the line time of every octet the transfer put on the bus (both directions)
   as a share of the measured transfer time (goal >= 80%), and the samples' own bits as
   a share of that time (what the protocol's framing leaves for data).
2. Transfer among `--others` relays polled at their default interval (100 ms), each
   sending an event every ~0.4 s: the events' delay (emit -> stored) while the bus is
   otherwise idle, and during the transfer. Figure: the added delay against one poll
   turn (one transfer exchange plus one poll of every other relay at line rate; goal:
   added delay <= one turn).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols.config import SerialBusConfig
from protocols.iec103.config import Iec103Device
from protocols.iec103.driver import Iec103Driver
from protocols.observations import DisturbanceObservation, PointObservation
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.iec103.relay import Iec103Relay, make_relay
from simulator.scenario import RelaySpec
from simulator.waveforms import FaultSpec

PROFILE = "line-protection-103"
EVENT = "self_check_fail"  # 128/47
BITS_PER_CHAR = 11


class TimingSink:
    """Stores nothing; notes when each event and record arrived."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, bool], list[float]] = {}
        self.records: list[DisturbanceObservation] = []

    async def deliver(self, observations: Sequence[Any]) -> None:
        now = time.monotonic()
        for o in observations:
            if isinstance(o, DisturbanceObservation):
                self.records.append(o)
            elif (
                isinstance(o, PointObservation)
                and o.address == "128/47"
                and o.cause == "spontaneous"
            ):
                self.events.setdefault((o.device_id, bool(o.value)), []).append(now)

    def deliver_blocking(self, observations: Sequence[Any]) -> None:
        raise NotImplementedError


class Bus:
    def __init__(self, port: str, relays: int, baud: int) -> None:
        self.port, self.count, self.baud = port, relays, baud
        self.profile = load_named(PROFILE)
        self.relays: list[Iec103Relay] = []
        self.sink = TimingSink()
        self.driver: Iec103Driver | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for la in range(1, self.count + 1):
            spec = RelaySpec(
                id=f"r{la}",
                protocol="iec103",
                profile=PROFILE,
                link={"port": self.port, "link_address": la, "common_address": la},
                settings={"zone1_reach": 4.2},
            )
            relay = make_relay(spec, self.profile)
            await relay.start()
            self.relays.append(relay)
        assert self.relays[0].bus is not None
        self.relays[0].bus.line_baud = self.baud
        line = SerialBusConfig(
            id="bench", port=self.port, baudrate=self.baud, parity="N", timeout_ms=1000
        )
        devices = tuple(
            PlannedDevice(
                Iec103Device(
                    id=f"r{la}",
                    profile=PROFILE,
                    protocol="iec103",
                    bus="bench",
                    link_address=la,
                    common_address=la,
                    settings_interval_s=0,
                ),
                self.profile.section,
            )
            for la in range(1, self.count + 1)
        )
        self.driver = Iec103Driver(LinkPlan("iec103:bench", "iec103", devices, line))
        self.task = asyncio.create_task(self.driver.run(self.sink))
        while not all(r.up and not r.steps and not r.settings_due for r in self.relays_seen()):
            await asyncio.sleep(0.05)

    def relays_seen(self) -> list[Any]:
        assert self.driver is not None
        return list(self.driver.relays.values())

    def octets(self) -> int:
        assert self.driver is not None
        assert self.driver.port is not None
        return self.driver.port.bytes_in + self.driver.port.bytes_out

    async def transfer(self, spec: FaultSpec) -> tuple[float, int]:
        """Record a fault on relay 1 and wait until it is stored and acknowledged:
        (seconds from the selection to the positive ASDU 25, octets on the bus)."""
        recorder = self.relays[0].recorder
        (fan,) = await self.relays[0].record(spec, datetime.now(UTC))
        while (24, 1, fan, 0) not in recorder.orders:
            await asyncio.sleep(0.002)
        t0, octets0 = time.monotonic(), self.octets()
        while fan not in recorder.acknowledged:
            await asyncio.sleep(0.002)
        return time.monotonic() - t0, self.octets() - octets0

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for relay in self.relays:
            await relay.stop()


async def emit_events(bus: Bus, emitted: dict[tuple[str, bool], list[float]]) -> None:
    """Every ~0.4 s an event on each other relay, alternating its value."""
    point = bus.profile.by_name[EVENT]
    n = 0
    while True:
        for relay in bus.relays[1:]:
            value = n % 2 == 0
            emitted.setdefault((relay.spec.id, value), []).append(time.monotonic())
            await relay.emit(point, value, [], datetime.now(UTC))
        n += 1
        await asyncio.sleep(0.4 + 0.037 * (n % 5))  # not in step with the poll interval


def delays(
    bus: Bus, emitted: dict[tuple[str, bool], list[float]], start: float, end: float
) -> list[float]:
    out: list[float] = []
    for key, times in emitted.items():
        stored = bus.sink.events.get(key, [])
        for sent, got in zip(times, stored, strict=False):
            if start <= sent < end:
                out.append(got - sent)
    return out


def line_s(octets: float, baud: int) -> float:
    return octets * BITS_PER_CHAR / baud


async def alone(args: argparse.Namespace, spec: FaultSpec) -> None:
    bus = Bus(str(Path(tempfile.mkdtemp(prefix="iec103-dr-")) / "bus"), 1, args.baud)
    await bus.start()
    try:
        took, octets = await bus.transfer(spec)
    finally:
        await bus.stop()
    need = line_s(octets, args.baud)
    data_s = line_s(args.channels * args.samples * 2, args.baud)  # 2 octets per sample
    print(f"1. one relay, {args.channels} channels x {args.samples} samples at {args.baud} baud:")
    print(f"   transfer (select -> positive ASDU 25): {took:.2f} s, {octets:,} octets on the bus")
    print(
        f"   line time of those octets: {need:.2f} s -> {need / took:.1%} of what the line allows"
    )
    print(
        f"   the samples' own octets: {data_s:.2f} s of line time ({data_s / took:.1%} of the "
        f"transfer; the rest is headers, framing, polls and orders)"
    )


async def shared(args: argparse.Namespace, spec: FaultSpec) -> None:
    bus = Bus(str(Path(tempfile.mkdtemp(prefix="iec103-dr-")) / "bus"), 1 + args.others, args.baud)
    await bus.start()
    emitted: dict[tuple[str, bool], list[float]] = {}
    emitter = asyncio.create_task(emit_events(bus, emitted))
    try:
        t0 = time.monotonic()
        await asyncio.sleep(args.baseline)
        t1 = time.monotonic()
        exchanges0 = bus.relays_seen()[0].station.counters["exchanges"]
        took, octets = await bus.transfer(spec)
        exchanges = bus.relays_seen()[0].station.counters["exchanges"] - exchanges0
        t2 = time.monotonic()
        await asyncio.sleep(1.0)  # let the last events in
    finally:
        emitter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await emitter
        await bus.stop()
    idle, busy = delays(bus, emitted, t0 + 1.0, t1), delays(bus, emitted, t1 + took * 0.05, t2)
    # one turn at line rate: the transfer's largest exchange (class-1 poll, 5 octets, and a
    # full ASDU 30, 253 + 8 octets) plus one class-2 poll of every other relay (5 octets and
    # the ASDU 9 answer the simulator sends, 6 + 18 + 8 octets)
    turn = line_s(5 + 261, args.baud) + args.others * line_s(5 + 32, args.baud)
    added_mean = statistics.mean(busy) - statistics.mean(idle)
    added_max = max(busy) - max(idle)
    print(f"2. the same record with {args.others} other relays polled on the bus:")
    print(
        f"   transfer: {took:.2f} s ({line_s(octets, args.baud) / took:.1%} of the line busy; "
        f"{exchanges} exchanges of the transferring relay)"
    )
    print(
        f"   other relays' events, emit -> stored: idle bus mean {statistics.mean(idle) * 1000:.0f}"
        f" ms / max {max(idle) * 1000:.0f} ms ({len(idle)} events); during the transfer mean "
        f"{statistics.mean(busy) * 1000:.0f} ms / max {max(busy) * 1000:.0f} ms ({len(busy)})"
    )
    print(
        f"   added delay: mean {added_mean * 1000:.0f} ms, max {added_max * 1000:.0f} ms; one poll "
        f"turn at line rate = {turn * 1000:.0f} ms -> mean {added_mean / turn:.2f} turn, "
        f"max {added_max / turn:.2f} turn"
    )
    if len(bus.sink.records) != 1:
        raise SystemExit(f"expected one record stored, got {len(bus.sink.records)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--others", type=int, default=2)
    parser.add_argument("--baseline", type=float, default=6.0, help="seconds of idle bus")
    args = parser.parse_args()
    spec = FaultSpec(channels=args.channels, samples=args.samples)
    asyncio.run(alone(args, spec))
    asyncio.run(shared(args, spec))


if __name__ == "__main__":
    main()
