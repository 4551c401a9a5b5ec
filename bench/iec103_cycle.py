"""Polling-cycle time for N relays on one 103 bus vs the line-rate limit.

    .venv/bin/python bench/iec103_cycle.py [--relays 8] [--baud 19200] [--seconds 10]

The simulated relays run in a child process on a pty (so the driver has its own core, as
against real relays). A pty has no baud rate, so the *line time* is computed: every octet
exchanged costs 11 bits (start, 8 data, even parity, stop) at the configured baud rate.
The measured cycle on the pty is pure software overhead (driver + simulator + pty); on a
real line the cycle is at least line time + the relays' turnaround.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BITS_PER_CHAR = 11


def serve(port: str, relays: int, ready: multiprocessing.synchronize.Event) -> None:
    from protocols.profile_loader import load_named
    from simulator.relays.iec103.relay import make_relay
    from simulator.scenario import RelaySpec

    async def run() -> None:
        profile = load_named("line-protection-103")
        for la in range(1, relays + 1):
            spec = RelaySpec(
                id=f"r{la}",
                protocol="iec103",
                profile=profile.name,
                link={"port": port, "link_address": la, "common_address": la},
                settings={"zone1_reach": 4.2},
            )
            await make_relay(spec, profile).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def deliver(self, observations: Sequence[object]) -> None:
        self.count += len(observations)

    def deliver_blocking(self, observations: Sequence[object]) -> None:
        self.count += len(observations)


async def measure(port: str, relays: int, baud: int, seconds: float) -> None:
    from protocols.config import SerialBusConfig
    from protocols.iec103.config import Iec103Device
    from protocols.iec103.driver import Iec103Driver
    from protocols.profile_loader import load_named
    from protocols.registry import LinkPlan, PlannedDevice

    profile = load_named("line-protection-103")
    bus = SerialBusConfig(id="bench", port=port, baudrate=baud, parity="N", timeout_ms=500)
    devices = tuple(
        PlannedDevice(
            Iec103Device(
                id=f"r{la}",
                profile=profile.name,
                protocol="iec103",
                bus="bench",
                link_address=la,
                common_address=la,
                poll_interval_ms=0,
                measurand_interval_s=5.0,
                settings_interval_s=0,
            ),
            profile.section,
        )
        for la in range(1, relays + 1)
    )
    driver = Iec103Driver(LinkPlan("iec103:bench", "iec103", devices, bus))
    sink = NullSink()
    task = asyncio.create_task(driver.run(sink))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until every relay finished its initialisation
        if all(r.up and not r.settings_due and not r.station.acd for r in driver.relays.values()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)

    def snapshot() -> tuple[int, int]:
        assert driver.port is not None
        polls = sum(r.station.counters["exchanges"] for r in driver.relays.values())
        return polls, driver.port.bytes_out + driver.port.bytes_in

    polls0, bytes0 = snapshot()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    polls1, bytes1 = snapshot()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    exchanges = polls1 - polls0
    cycles = exchanges / relays
    cycle_s = wall / cycles
    octets = (bytes1 - bytes0) / cycles
    line_s = octets * BITS_PER_CHAR / baud
    print(
        f"iec103 polling cycle, {relays} relays on one bus (pty), class-2 polls answered with "
        f"ASDU 9 (9 measurands):"
    )
    print(
        f"  measured software cycle: {cycle_s * 1000:.2f} ms ({exchanges / wall:,.0f} "
        f"exchanges/s, driver CPU {cpu / exchanges * 1e6:.0f} us per exchange)"
    )
    print(
        f"  octets per cycle: {octets:.0f} -> line time at {baud} baud, {BITS_PER_CHAR} bits/char:"
        f" {line_s * 1000:.1f} ms per cycle ({line_s / relays * 1000:.1f} ms per relay)"
    )
    print(
        f"  software overhead is {cycle_s / line_s:.1%} of the line time: the line, not the "
        f"software, bounds the cycle"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relays", type=int, default=8)
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = str(Path(tempfile.mkdtemp(prefix="iec103-bench-")) / "bus")
    ready = multiprocessing.get_context("spawn").Event()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, args.relays, ready), daemon=True
    )
    child.start()
    try:
        if not ready.wait(30):
            raise SystemExit("simulator did not start")
        asyncio.run(measure(port, args.relays, args.baud, args.seconds))
    finally:
        child.terminate()
        child.join(5)
        if os.path.islink(port):
            os.unlink(port)


if __name__ == "__main__":
    main()
