"""The agent spine end to end: paced IEC 104 relays -> agent process -> Mosquitto.

    .venv/bin/python bench/agent_spine.py                    # all three measurements
    .venv/bin/python bench/agent_spine.py --only throughput --relays 20 --rate 6000

- throughput: events/s from N relays arriving at a subscriber (each after its PUBACK),
  and the agent's CPU per event;
- latency at a fixed rate: relay transmit (the event's device time, stamped at send) to
  arrival at the subscriber, p50 and p99. Arrival follows the agent's PUBACK by one
  broker hop, so this slightly over-states transmit-to-PUBACK;
- memory: the agent's RSS with 200 configured relays, all connected;
- soak: `--only soak --relays 200 --rate 1000 --minutes 30`: the agent's RSS sampled every
  10 s while events flow, and its slope per hour after the warm-up (least squares);
- bare: the same generator read by bare c104 clients that only count (no conversion, no
  outbox, no MQTT), in this process: the ceiling the agent is compared with.

The load generator (`relay-sim --load`) and the agent run as separate processes; this
script runs the subscriber and Mosquitto. On 2 cores the three share the machine, so
read figures as this machine's, with the generator's own cost included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bare104_client import start_clients  # noqa: E402
from ports import free_port_run  # noqa: E402

from center import acks  # noqa: E402
from common import mqtt_client  # noqa: E402
from gateway import wire  # noqa: E402
from simulator.harness.agent_config import to_toml  # noqa: E402
from simulator.harness.broker import Mosquitto  # noqa: E402

POINTS = 20


def profile_text() -> str:
    lines = ['[profile]\nname = "bench-load"\nprotocol = "iec104"\n']
    for ioa in range(1, POINTS + 1):
        lines.append(f'[[points]]\naddress = "{ioa}"\nname = "p{ioa}"\nkind = "status"\n')
    return "\n".join(lines)


def agent_config(
    work: Path, relays: int, base_port: int, broker: Mosquitto, state_root: Path | None = None
) -> Path:
    """The agent's config for `relays` bench relays; its state directory under `work`, or
    under `state_root` (a diagnostic: /dev/shm, where a flush costs nothing)."""
    (work / "profiles").mkdir(exist_ok=True)
    (work / "profiles" / "bench-load.toml").write_text(profile_text())
    state = (state_root / work.name if state_root is not None else work) / "state"
    config = {
        "agent": {"site": "bench", "gateway_id": "gw-bench", "state_dir": str(state),
                  "profile_dirs": [str(work / "profiles")]},
        "broker": {"host": broker.host, "port": broker.port, "max_records_per_message": 200},
        "outbox": {"synchronous": "FULL"},
        "devices": [
            {"id": f"r{i}", "protocol": "iec104", "profile": "bench-load", "host": "127.0.0.1",
             "port": base_port + i, "common_address": i + 1}
            for i in range(relays)
        ],
    }  # fmt: skip
    path = work / "agent.toml"
    path.write_text(to_toml(config))
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Subscriber:
    """Counts the events after the broker and acknowledges every message as a center does
    (`center/acks.py`: `relay-ack/v1/{site}/{gateway}`, once the records are "stored"):
    the agent keeps a record in its outbox until then, and caps how many await one. A
    record sent again (no acknowledgement in time) is counted once."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.arrivals: list[float] = []
        self.latencies: list[float] = []
        self.resent = 0  # records that arrived a second time
        self._seen: set[tuple[int, int]] = set()
        self._acks: set[asyncio.Task[None]] = set()

    @property
    def events(self) -> int:
        return len(self.arrivals)

    async def run(self, ready: asyncio.Event) -> None:
        async with mqtt_client.Client(self.broker.host, self.broker.port, identifier="bench-sub",
                                  max_queued_incoming_messages=0) as client:  # fmt: skip
            await client.subscribe("relay/v1/bench/#", qos=1)
            ready.set()
            async for message in client.messages:
                now = time.time()
                payload = bytes(message.payload)
                self._count(json.loads(payload)["records"], now)
                for ack in acks.collect([(message.topic.value, payload)]):
                    task = asyncio.create_task(
                        client.publish(
                            wire.ack_topic(ack.site, ack.gateway_id), acks.encode(ack), qos=1
                        )
                    )
                    self._acks.add(task)
                    task.add_done_callback(self._acks.discard)

    def _count(self, records: list[dict[str, object]], now: float) -> None:
        for record in records:
            if record["kind"] != "event" or record["cause"] != "spontaneous":
                continue
            key = (int(str(record["session"])), int(str(record["seq"])))
            if key in self._seen:
                self.resent += 1
                continue
            self._seen.add(key)
            self.arrivals.append(now)
            sent = datetime.fromisoformat(str(record["device_time"])).timestamp()
            self.latencies.append(now - sent)


SENDER = "c104"  # or "raw": bench/raw104_sender.py, events written at once (set by --sender)
ALLOCATOR_ENV: dict[str, str] = {}  # the agent's allocator: set by --allocator unit


def start_generator(
    work: Path, relays: int, rate: float, duration: float, batch: int
) -> tuple[subprocess.Popen[bytes], int]:
    base_port = free_port_run(relays)
    common = ["--relays", str(relays), "--rate", str(rate), "--duration", str(duration),
              "--base-port", str(base_port), "--points", str(POINTS),
              "--wait-for-clients", str(relays)]  # fmt: skip
    if SENDER == "raw":  # one event per I-frame, stamped as it is written
        command = [sys.executable, str(ROOT / "bench" / "raw104_sender.py"), *common]
    else:
        command = [sys.executable, "-m", "simulator.cli", "--load", *common,
                   "--batch", str(batch), "--no-hold"]  # fmt: skip
    gen = subprocess.Popen(
        command, stdout=(work / "gen.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT
    )
    return gen, base_port


def summary(arrivals: list[float], latencies: list[float], cpu: float) -> dict[str, float]:
    events = len(arrivals)
    span = (arrivals[-1] - arrivals[0]) if events > 1 else 0.0
    lat = sorted(latencies) or [0.0]
    return {
        "events": events,
        "rate": events / span if span else 0.0,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "cpu_us_per_event": 1e6 * cpu / events if events else 0.0,
    }


async def run_bare(relays: int, rate: float, duration: float, batch: int = 20) -> dict[str, float]:
    """The generator read by c104 clients that only count and stamp arrival."""
    with tempfile.TemporaryDirectory() as tmp:
        gen, base_port = start_generator(Path(tmp), relays, rate, duration, batch)
        await asyncio.sleep(1.0)
        counting = start_clients(relays, base_port, POINTS)
        cpu0 = time.process_time()
        try:
            while gen.poll() is None:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)
        finally:
            cpu = time.process_time() - cpu0
            counting.stop()
            gen.kill()
            gen.wait()
    return summary(counting.arrivals, counting.latencies, cpu)


@contextlib.asynccontextmanager
async def spine(
    relays: int, rate: float, duration: float, batch: int
) -> AsyncIterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], Subscriber]]:
    """Mosquitto, the load generator, the agent process and the acknowledging subscriber,
    running: (generator, agent, subscriber); all stopped on the way out."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        gen, base_port = start_generator(work, relays, rate, duration, batch)
        await asyncio.sleep(1.0)
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config",
             str(agent_config(work, relays, base_port, broker)), "--log-level", "warning"],
            stdout=(work / "agent.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **ALLOCATOR_ENV},
        )  # fmt: skip
        sub = Subscriber(broker)
        ready = asyncio.Event()
        task = asyncio.create_task(sub.run(ready))
        try:
            await ready.wait()
            yield gen, agent, sub
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            agent.terminate()
            agent.wait(20)
            gen.kill()
            gen.wait()
            broker.stop()


async def run_case(
    relays: int, rate: float, duration: float, settle: float, batch: int = 20
) -> dict[str, float]:
    async with spine(relays, rate, duration, batch) as (gen, agent, sub):
        cpu0 = None
        while gen.poll() is None:
            if cpu0 is None and sub.events:
                cpu0 = cpu_seconds(agent.pid)
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + settle
        last = -1
        while time.monotonic() < deadline and sub.events != last:
            last = sub.events
            await asyncio.sleep(1.0)
        cpu = cpu_seconds(agent.pid) - (cpu0 or 0.0)
        rss = rss_mb(agent.pid)
    return {**summary(sub.arrivals, sub.latencies, cpu), "rss_mb": rss}


async def soak_case(relays: int, rate: float, minutes: float, warmup_s: float) -> None:
    """The agent's RSS over a long run at a steady rate: samples every 10 s, the slope per
    hour after the warm-up by least squares, events delivered as a check that load flowed."""
    samples: list[tuple[float, float, int]] = []  # (s since start, RSS MB, events)
    duration = warmup_s + minutes * 60 + 30
    async with spine(relays, rate, duration, 1) as (_, agent, sub):
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < warmup_s + minutes * 60:
            samples.append((elapsed, rss_mb(agent.pid), sub.events))
            if len(samples) % 30 == 0:
                print(f"  {elapsed / 60:5.1f} min: RSS {samples[-1][1]:.1f} MB, "
                      f"{sub.events} events", flush=True)  # fmt: skip
            await asyncio.sleep(10.0)
        cpu = cpu_seconds(agent.pid)
    window = [(t, r) for t, r, _ in samples if t >= warmup_s]
    slope = fitted_slope(window)
    half = len(window) // 2
    flowed = samples[-1][2] - next(e for t, _, e in samples if t >= warmup_s)
    span = samples[-1][0] - warmup_s
    print(f"soak: {relays} relays at {rate:g} ev/s offered, {minutes:g} min after a "
          f"{warmup_s:g} s warm-up: {flowed} events durable and acknowledged "
          f"({flowed / span:.0f} ev/s), agent CPU {cpu:.0f} s in all\n"
          f"  RSS {window[0][1]:.1f} MB at the start of the window, {window[-1][1]:.1f} MB at "
          f"its end, max {max(r for _, r in window):.1f} MB; slope {slope * 3600:+.2f} MB/h "
          f"(goal < 1 MB/h, under 120 MB); first half {fitted_slope(window[:half]) * 3600:+.2f}"
          f" MB/h, second half {fitted_slope(window[half:]) * 3600:+.2f} MB/h")  # fmt: skip


def fitted_slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per second."""
    mean_t = statistics.fmean(t for t, _ in samples)
    mean_r = statistics.fmean(r for _, r in samples)
    return sum((t - mean_t) * (r - mean_r) for t, r in samples) / sum(
        (t - mean_t) ** 2 for t, _ in samples
    )


def unit_allocator() -> dict[str, str]:
    """The allocator environment the agent's systemd unit sets."""
    text = (ROOT / "systemd" / "relay-agent.service").read_text()
    env = dict(re.findall(r"^Environment=(LD_PRELOAD|MALLOC_CONF)=(\S+)$", text, re.M))
    if "LD_PRELOAD" not in env:
        raise SystemExit("systemd/relay-agent.service preloads no allocator")
    return env


async def memory_case(relays: int) -> float:
    """RSS of the agent with `relays` connected relays and a trickle of events."""
    result = await run_case(relays, rate=relays, duration=20, settle=2)
    return result["rss_mb"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["throughput", "latency", "memory", "soak"])
    p.add_argument("--minutes", type=float, default=30, help="soak: the measured window")
    p.add_argument("--warmup-s", type=float, default=120, help="soak: before the window")
    p.add_argument("--relays", type=int, default=20)
    p.add_argument("--rate", type=float, default=6000, help="offered rate for throughput")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--sender", choices=["c104", "raw"], default="c104",
                   help="c104: relay-sim --load (c104 Server, sends on a 50 ms tick); "
                        "raw: bench/raw104_sender.py (writes each event at once)")  # fmt: skip
    p.add_argument("--allocator", choices=["glibc", "unit"], default="glibc",
                   help="unit: the allocator systemd/relay-agent.service preloads "
                        "(its LD_PRELOAD and MALLOC_CONF)")  # fmt: skip
    args = p.parse_args()
    global SENDER
    SENDER = args.sender
    if args.allocator == "unit":
        ALLOCATOR_ENV.update(unit_allocator())
        print(f"allocator: {ALLOCATOR_ENV}")
    offered = args.rate * args.duration
    if args.only in (None, "throughput"):
        b = asyncio.run(run_bare(args.relays, args.rate, args.duration))
        r = asyncio.run(run_case(args.relays, args.rate, args.duration, settle=5))
        print(f"throughput: {args.relays} relays offered {args.rate:g} ev/s for {args.duration:g}s "
              f"({offered:.0f} events):\n"
              f"  bare c104 : {b['events']:.0f} arrived, {b['rate']:.0f} ev/s, "
              f"{b['cpu_us_per_event']:.0f} us CPU/event\n"
              f"  agent     : {r['events']:.0f} durable at the broker, {r['rate']:.0f} ev/s, "
              f"{r['cpu_us_per_event']:.0f} us CPU/event, p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms\n"
              f"  agent/bare: {r['rate'] / max(b['rate'], 1e-9):.0%} of the rate")  # fmt: skip
    if args.only in (None, "latency"):
        # One event per ASDU: with batching the generator holds events back for a batch.
        b = asyncio.run(run_bare(args.relays, 1000, args.duration, batch=1))
        r = asyncio.run(run_case(args.relays, 1000, args.duration, settle=5, batch=1))
        print(f"latency at 1000 ev/s ({args.relays} relays, one event per ASDU), from the "
              f"generator's time stamp:\n"
              f"  bare c104 : {b['events']:.0f} events, to the callback p50 {b['p50_ms']:.1f} ms, "
              f"p99 {b['p99_ms']:.1f} ms\n"
              f"  agent     : {r['events']:.0f} events, to a subscriber (after PUBACK) p50 "
              f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
              f"{r['cpu_us_per_event']:.0f} us CPU/event\n"
              f"  agent adds: p50 {r['p50_ms'] - b['p50_ms']:+.1f} ms, "
              f"p99 {r['p99_ms'] - b['p99_ms']:+.1f} ms")  # fmt: skip
    if args.only == "soak":
        asyncio.run(soak_case(args.relays, args.rate, args.minutes, args.warmup_s))
    if args.only in (None, "memory"):
        small = asyncio.run(memory_case(20))
        big = asyncio.run(memory_case(200))
        print(f"memory: agent RSS {small:.0f} MB with 20 relays, {big:.0f} MB with 200 relays "
              f"({(big - small) / 180 * 1024:.0f} KB per extra relay)")  # fmt: skip


if __name__ == "__main__":
    main()
