"""Events/s through `Iec104Driver` into a null sink, with N paced simulated relays.

    .venv/bin/python bench/iec104_receive.py --relays 20 --rate 8000 --duration 10

Also prints the process CPU time per event. The generator runs in this process too (on
2 cores, pass --rate below what the machine can do, or the figure measures the sender).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from collections.abc import Sequence

from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.driver import Iec104Driver
from protocols.observations import Observation, PointObservation
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.iec104.load import LoadGenerator


class NullSink:
    def __init__(self) -> None:
        self.events = 0

    async def deliver(self, observations: Sequence[Observation]) -> None:
        return None

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            if isinstance(o, PointObservation) and o.cause == "spontaneous":
                self.events += 1


def _driver(i: int, base_port: int) -> Iec104Driver:
    dev = Iec104Device(
        id=f"r{i}", protocol="iec104", profile="bench", host="127.0.0.1",
        port=base_port + i, common_address=i + 1,
    )  # fmt: skip
    return Iec104Driver(LinkPlan(f"iec104:r{i}", "iec104", (PlannedDevice(dev, None),)))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(args: argparse.Namespace) -> None:
    gen = LoadGenerator(args.relays, args.base_port, points=args.points, batch=args.batch)
    gen.start()
    sink = NullSink()
    tasks = [asyncio.create_task(_driver(i, args.base_port).run(sink)) for i in range(args.relays)]
    try:
        await gen.wait_for_clients(60)
        await asyncio.sleep(1.0)  # let the general interrogations finish
        cpu0, t0 = _cpu(), time.monotonic()
        result = await gen.run(args.rate, args.duration)
        deadline = time.monotonic() + 30
        while sink.events < result.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        seconds, cpu = time.monotonic() - t0, _cpu() - cpu0
        print(f"relays={args.relays} batch={args.batch} offered={args.rate:g}/s")
        print(f"sent={result.sent} received={sink.events} lost={result.sent - sink.events}")
        per_event_us = cpu / max(sink.events, 1) * 1e6
        print(f"rate={sink.events / seconds:.0f} events/s  cpu={per_event_us:.0f} us/event"
              " (sender + receiver)")  # fmt: skip
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, LinkError):
                await t
        await asyncio.to_thread(gen.stop)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--relays", type=int, default=20)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--base-port", type=int, default=26000)
    p.add_argument("--points", type=int, default=20)
    p.add_argument("--batch", type=int, default=20)
    asyncio.run(main(p.parse_args()))
