"""What the 104 link costs against a bare c104 client, and whether it leaks: two measurements.

    .venv/bin/python bench/iec104_guard.py cpu --events 20000 --rounds 2
    .venv/bin/python bench/iec104_guard.py soak --rate 500 --minutes 30 --warmup-s 120

Both run one receiver in this process against `simulator/relays/iec104/raw_outstation.py` in a
child process (so the CPU and RSS figures are the receiving side only), with a sink that counts
and drops (the outbox's own cost is left out).

Variants: `guard` is the link as shipped (c104 for the session, the APDU guard's thread, the
agent's decoder); `bare` is a c104 client connected straight to the relay whose point callback
only counts (`bare104_client.py`): what c104's own receive and decode cost. (Before the agent
decoded ASDUs itself, `direct` was c104 decoding with `IncomingMessage.raw` read per object;
that design is gone.)

- `cpu`: the variants alternate (`--rounds` times each, in one run), each receiving
  `--events` single-point events as fast as the window allows; prints CPU µs/event
  and the guard/bare ratio.
- `soak`: one variant at `--rate` events/s; samples RSS every 10 s and prints the slope of
  a least-squares line through the samples after `--warmup-s` (MB/h; goal < 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.link import Iec104Link
from protocols.observations import Observation, PointObservation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bare104_client import start_clients  # noqa: E402


class CountingSink:
    def __init__(self) -> None:
        self.events = 0

    async def deliver(self, observations: Sequence[Observation]) -> None:
        pass

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.events += sum(isinstance(o, PointObservation) for o in observations)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outstation(port: int, count: int, rate: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "simulator.relays.iec104.raw_outstation", "--port", str(port)]
    command += ["--count", str(count), "--rate", str(rate)]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.readline()  # listening
    return child


def make_link(port: int, sink: CountingSink) -> Iec104Link:
    device = Iec104Device(
        id="bench", protocol="iec104", profile="bench", host="127.0.0.1", port=port,
        common_address=1, tick_rate_ms=50,
    )  # fmt: skip
    return Iec104Link(device, frozenset(), sink)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def connected(port: int, sink: CountingSink) -> asyncio.Task[None]:
    """A link that finished its connect interrogation; retried like the supervisor would
    (c104's first connect now and then takes longer than `connect_timeout_s`)."""
    for _ in range(5):
        link = make_link(port, sink)
        task = asyncio.create_task(link.run())
        ready = asyncio.create_task(link.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if link.ready.is_set():
            return task
        ready.cancel()
        with contextlib.suppress(LinkError):
            await task
    raise SystemExit("no connection to the outstation")


async def one_cpu_run(variant: str, events: int) -> float:
    port, sink = free_port(), CountingSink()
    child = outstation(port, events, 0)
    if variant == "bare":
        return await bare_cpu_run(port, events, child)
    task = await connected(port, sink)
    try:
        before = cpu_s()
        while sink.events < events:
            await asyncio.sleep(0.05)
        return (cpu_s() - before) / events * 1e6
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LinkError):
            await task
        child.wait(60)


async def bare_cpu_run(port: int, events: int, child: subprocess.Popen[bytes]) -> float:
    counting = start_clients(1, port)
    try:
        while not counting.arrivals:
            await asyncio.sleep(0.01)
        before = cpu_s()
        while len(counting.arrivals) < events:
            await asyncio.sleep(0.05)
        return (cpu_s() - before) / (events - 1) * 1e6
    finally:
        await asyncio.to_thread(counting.stop)
        child.wait(60)


async def cpu(args: argparse.Namespace) -> None:
    results: dict[str, list[float]] = {"guard": [], "bare": []}
    for _ in range(args.rounds):
        for variant in ("guard", "bare"):
            us = await one_cpu_run(variant, args.events)
            results[variant].append(us)
            print(f"{variant:6} {args.events} events: {us:6.1f} µs CPU per event", flush=True)
    guard, bare = (min(results[v]) for v in ("guard", "bare"))
    print(f"best of {args.rounds}: guard {guard:.1f} µs, bare c104 {bare:.1f} µs, "
          f"ratio {guard / bare:.2f}")  # fmt: skip


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def slope_mb_per_h(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    cov = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    return cov / var * 3600


async def soak(args: argparse.Namespace) -> None:
    port, sink = free_port(), CountingSink()
    duration = args.minutes * 60
    child = outstation(port, int(args.rate * (duration + 30)), args.rate)
    task = await connected(port, sink)
    samples: list[tuple[float, float]] = []
    try:
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < duration:
            await asyncio.sleep(10)
            elapsed, rss = time.monotonic() - t0, rss_mb()
            print(f"{elapsed:6.0f}s {sink.events:8d} events  RSS {rss:7.2f} MB", flush=True)
            if elapsed >= args.warmup_s:
                samples.append((elapsed, rss))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LinkError):
            await task
        child.kill()
    rate = sink.events / (time.monotonic() - t0)
    print(f"link: {rate:.0f} events/s for {args.minutes:g} min; RSS slope after "
          f"{args.warmup_s:g}s warm-up: {slope_mb_per_h(samples):+.2f} MB/h "
          f"({len(samples)} samples)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p_cpu = sub.add_parser("cpu")
    p_cpu.add_argument("--events", type=int, default=20000)
    p_cpu.add_argument("--rounds", type=int, default=2)
    p_soak = sub.add_parser("soak")
    p_soak.add_argument("--rate", type=float, default=500)
    p_soak.add_argument("--minutes", type=float, default=30)
    p_soak.add_argument("--warmup-s", type=float, default=120)
    args = parser.parse_args()
    asyncio.run(cpu(args) if args.what == "cpu" else soak(args))


if __name__ == "__main__":
    main()
