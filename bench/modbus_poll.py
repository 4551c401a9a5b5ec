"""Modbus polling benchmark: register reads per second and CPU per 1,000 reads.

100 simulated relays (pymodbus servers, one TCP port each, in a *separate* process) are
polled by 100 Modbus drivers in this process; each poll reads one block of 34 input
registers (17 float32 measurements) and delivers one observation (all 17 values) to a
counting sink.
CPU is this process's only (`time.process_time`), so the simulator's cost is excluded.

    .venv/bin/python bench/modbus_poll.py                      # offered 20 polls/s per unit
    .venv/bin/python bench/modbus_poll.py --interval 0.001     # saturate: overruns counted

Overruns (poll periods that could not run on time) are counted by the pollers and
reported, never silently merged. RSS is sampled to show memory stays flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.modbus.config import ModbusDevice
from protocols.modbus.driver import ModbusDriver
from protocols.observations import Observation
from protocols.profile_loader import load_profile
from protocols.registry import LinkPlan, PlannedDevice

REGISTERS = 34


def profile_text() -> str:
    lines = ["[profile]", 'name = "bench-modbus"', 'protocol = "modbus"', ""]
    for i in range(REGISTERS // 2):
        lines += [
            "[[modbus.measurements]]",
            f'name = "m{i}"',
            'table = "input"',
            f"address = {2 * i}",
            'type = "f32"',
            "",
        ]
    return "\n".join(lines)


class CountingSink:
    def __init__(self) -> None:
        self.observations = 0

    async def deliver(self, observations: Sequence[Observation]) -> None:
        self.observations += len(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.observations += len(observations)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def serve(profile_path: Path, units: int, base_port: int) -> None:
    """The simulator side: one pymodbus TCP server per relay."""
    from simulator.relays.modbus.relay import make_relay
    from simulator.scenario import RelaySpec

    profile = load_profile(profile_path)
    relays = []
    for i in range(units):
        link = {"transport": "tcp", "port": base_port + i, "unit_id": 1}
        relay = make_relay(
            RelaySpec(id=f"r{i}", protocol="modbus", profile="x", link=link), profile
        )
        for m in range(REGISTERS // 2):
            relay.image.set_measurement(f"m{m}", 50.0 + m)
        await relay.start()
        relays.append(relay)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def poll(args: argparse.Namespace, profile_path: Path) -> None:
    profile = load_profile(profile_path)
    drivers = []
    for i in range(args.units):
        device = ModbusDevice(
            id=f"r{i}", profile="bench", protocol="modbus", host="127.0.0.1",
            port=args.base_port + i, unit_id=1, measurements_interval_s=args.interval,
            identity_interval_s=3600, timeout_ms=2000,
        )  # fmt: skip
        plan = LinkPlan(device.link_key, "modbus", (PlannedDevice(device, profile.section),))
        drivers.append(ModbusDriver(plan))
    sink = CountingSink()
    tasks = [asyncio.create_task(d.run(sink)) for d in drivers]

    def totals() -> tuple[int, int, int]:
        reads = overruns = timeouts = 0
        for d in drivers:
            for c in d.counters.values():
                reads += c["responses"]
                overruns += c["overruns"]
                timeouts += c["no_response"]
        return reads, overruns, timeouts

    await asyncio.sleep(args.warmup)
    reads0, over0, to0 = totals()
    cpu0, wall0, rss0 = time.process_time(), time.perf_counter(), rss_mb()
    rss_samples = [rss0]
    for _ in range(int(args.seconds)):
        await asyncio.sleep(1)
        rss_samples.append(rss_mb())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    reads1, over1, to1 = totals()
    reads, overruns = reads1 - reads0, over1 - over0
    while pending := [t for t in tasks if not t.done()]:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=1)
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    offered = args.units / args.interval
    print(f"units={args.units} interval={args.interval}s offered={offered:.0f} polls/s "
          f"registers/read={REGISTERS} window={wall:.1f}s")  # fmt: skip
    print(f"reads={reads} reads/s={reads / wall:.0f} registers/s={reads * REGISTERS / wall:.0f}")
    print(f"agent cpu={cpu:.2f}s cpu_per_1000_reads={1000 * cpu / max(reads, 1):.3f}s "
          f"reads_per_cpu_second={reads / max(cpu, 1e-9):.0f}")  # fmt: skip
    print(f"overruns={overruns} (counted poll periods that could not run on time) "
          f"timeouts={to1 - to0} observations={sink.observations}")  # fmt: skip
    print(f"rss_mb start={rss0:.1f} end={rss_samples[-1]:.1f} max={max(rss_samples):.1f} "
          f"maxrss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.05, help="poll interval per unit")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--base-port", type=int, default=25100)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.profile, args.units, args.base_port))
        return
    with tempfile.TemporaryDirectory() as tmp:
        profile_path = Path(tmp) / "bench-modbus.toml"
        profile_path.write_text(profile_text())
        sim = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--profile", str(profile_path),
             "--units", str(args.units), "--base-port", str(args.base_port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert sim.stdout is not None
            if sim.stdout.readline().strip() != "ready":
                raise SystemExit("simulator failed to start")
            asyncio.run(poll(args, profile_path))
        finally:
            sim.terminate()
            sim.wait(10)


if __name__ == "__main__":
    main()
