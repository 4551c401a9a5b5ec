"""The agent spine end to end: paced IEC 104 relays -> agent process -> Mosquitto.

    .venv/bin/python bench/agent_spine.py                    # all three measurements
    .venv/bin/python bench/agent_spine.py --only throughput --relays 20 --rate 6000

- throughput: events/s from N relays arriving at a subscriber (each after its PUBACK),
  and the agent's CPU per event;
- latency at a fixed rate: relay transmit (the event's device time, stamped at send) to
  arrival at the subscriber, p50 and p99. Arrival follows the agent's PUBACK by one
  broker hop, so this slightly over-states transmit-to-PUBACK;
- memory: the agent's RSS with 200 configured relays, all connected.

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
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.agent_config import to_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto, free_port  # noqa: E402

POINTS = 20


def profile_text() -> str:
    lines = ['[profile]\nname = "bench-load"\nprotocol = "iec104"\n']
    for ioa in range(1, POINTS + 1):
        lines.append(f'[[points]]\naddress = "{ioa}"\nname = "p{ioa}"\nkind = "status"\n')
    return "\n".join(lines)


def agent_config(work: Path, relays: int, base_port: int, broker: Mosquitto) -> Path:
    (work / "profiles").mkdir(exist_ok=True)
    (work / "profiles" / "bench-load.toml").write_text(profile_text())
    config = {
        "agent": {"site": "bench", "gateway_id": "gw-bench", "state_dir": str(work / "state"),
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
    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.events = 0
        self.latencies: list[float] = []
        self.first: float | None = None
        self.last = 0.0

    async def run(self, ready: asyncio.Event) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port, identifier="bench-sub",
                                  max_queued_incoming_messages=0) as client:  # fmt: skip
            await client.subscribe("relay/v1/bench/#", qos=1)
            ready.set()
            async for message in client.messages:
                now = time.time()
                for record in json.loads(message.payload)["records"]:  # type: ignore[arg-type]
                    if record["kind"] != "event" or record["cause"] != "SPONTANEOUS":
                        continue
                    self.events += 1
                    self.first = self.first or now
                    self.last = now
                    sent = datetime.fromisoformat(record["device_time"]).timestamp()
                    self.latencies.append(now - sent)


async def run_case(
    relays: int, rate: float, duration: float, settle: float, batch: int = 20
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        base_port = free_port()
        base_port = base_port if base_port + relays < 65000 else 20000
        gen = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "--load", "--relays", str(relays),
             "--rate", str(rate), "--duration", str(duration), "--base-port", str(base_port),
             "--points", str(POINTS), "--batch", str(batch), "--wait-for-clients", str(relays),
             "--no-hold"],
            stdout=(work / "gen.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        await asyncio.sleep(1.0)
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config",
             str(agent_config(work, relays, base_port, broker)), "--log-level", "warning"],
            stdout=(work / "agent.log").open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        sub = Subscriber(broker)
        ready = asyncio.Event()
        task = asyncio.create_task(sub.run(ready))
        try:
            await ready.wait()
            cpu0, t0 = None, time.monotonic()
            while gen.poll() is None:
                if cpu0 is None and sub.events:
                    cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
                await asyncio.sleep(0.05)
            deadline = time.monotonic() + settle
            last = -1
            while time.monotonic() < deadline and sub.events != last:
                last = sub.events
                await asyncio.sleep(1.0)
            cpu = cpu_seconds(agent.pid) - (cpu0 or 0.0)
            rss = rss_mb(agent.pid)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            agent.terminate()
            agent.wait(20)
            gen.kill()
            gen.wait()
            broker.stop()
        span = (sub.last - sub.first) if sub.first else 0.0
        lat = sorted(sub.latencies) or [0.0]
        return {
            "events": sub.events,
            "rate": sub.events / span if span else 0.0,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "cpu_us_per_event": 1e6 * cpu / sub.events if sub.events else 0.0,
            "rss_mb": rss,
            "wall": time.monotonic() - t0,
        }


async def memory_case(relays: int) -> float:
    """RSS of the agent with `relays` connected relays and a trickle of events."""
    result = await run_case(relays, rate=relays, duration=20, settle=2)
    return result["rss_mb"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["throughput", "latency", "memory"])
    p.add_argument("--relays", type=int, default=20)
    p.add_argument("--rate", type=float, default=6000, help="offered rate for throughput")
    p.add_argument("--duration", type=float, default=10)
    args = p.parse_args()
    if args.only in (None, "throughput"):
        r = asyncio.run(run_case(args.relays, args.rate, args.duration, settle=5))
        print(f"throughput: {args.relays} relays offered {args.rate:g} ev/s for "
              f"{args.duration:g}s: {r['events']:.0f} events arrived, {r['rate']:.0f} ev/s, "
              f"agent CPU {r['cpu_us_per_event']:.0f} us/event, p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms")  # fmt: skip
    if args.only in (None, "latency"):
        # One event per ASDU: with batching the generator holds events back for a batch.
        r = asyncio.run(run_case(args.relays, 1000, args.duration, settle=5, batch=1))
        print(f"latency at 1000 ev/s ({args.relays} relays): {r['events']:.0f} events, "
              f"transmit->subscriber p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
              f"agent CPU {r['cpu_us_per_event']:.0f} us/event")  # fmt: skip
    if args.only in (None, "memory"):
        small = asyncio.run(memory_case(20))
        big = asyncio.run(memory_case(200))
        print(f"memory: agent RSS {small:.0f} MB with 20 relays, {big:.0f} MB with 200 relays "
              f"({(big - small) / 180 * 1024:.0f} KB per extra relay)")  # fmt: skip


if __name__ == "__main__":
    main()
