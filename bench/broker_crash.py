"""A broker SIGKILLed while the center is down and events flow: what reaches the center.

    .venv/bin/python bench/broker_crash.py [--rate 500] [--seconds 20]

Real parts: Mosquitto saving its state on its default schedule (every 30 min: a SIGKILL
loses its queue), the agent as a process, the center's service on SQLite, the load
generator's IEC 104 outstation. The center stops, the relay sends `rate` events/s for
`seconds`, the broker is SIGKILLed and restarted, the center started again. Prints the
events sent, stored, lost, the agent's re-sends, and how long the center took to have
them all after its restart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.test_end_to_end_ack import Center, outbox_rows
from tests.e2e.test_gateway_liveness_e2e import relay_and_agent
from tests.support.mosquitto import Mosquitto, free_port

EVENTS = "SELECT count(*) FROM records WHERE kind = 'event'"


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.split()[-1])
    return float("nan")


async def run(tmp: Path, rate: float, seconds: float) -> None:
    broker = Mosquitto(tmp / "mosquitto")
    broker.start()
    center = Center(tmp, broker)
    await center.start()
    metrics_port = free_port()
    relay, agent = relay_and_agent(
        tmp, broker, broker={"ack_timeout_s": 5.0},
        metrics={"listen": f"127.0.0.1:{metrics_port}"},
    )  # fmt: skip
    agent.start()
    try:
        await relay.wait_for_clients()
        while center.value(EVENTS) < 20:  # the interrogation
            await asyncio.sleep(0.1)
        await center.stop()
        result = await relay.run(rate=rate, duration_s=seconds)
        await asyncio.sleep(1.0)
        sent = 20 + result.sent
        broker.kill()
        broker.start()
        restarted = time.monotonic()
        await center.start()
        deadline = restarted + 300
        while center.value(EVENTS) < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        took = time.monotonic() - restarted
        stored = center.value(EVENTS)
        while outbox_rows(tmp / "state") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        print(f"events sent by the relay        {sent}")
        print(f"events stored at the center     {stored}")
        print(f"lost                            {sent - stored}")
        print(f"outbox rows left                {outbox_rows(tmp / 'state')}")
        timeouts = metric(metrics_port, "relay_agent_ack_timeouts_total")
        published = metric(metrics_port, "relay_agent_records_published_total")
        print(f"agent ack timeouts (re-sends)   {timeouts:.0f}")
        print(f"records sent incl. re-sends     {published:.0f}")
        print(f"center restart to all stored    {took:.1f} s")
    finally:
        agent.stop()
        relay.stop()
        await center.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp), args.rate, args.seconds))


if __name__ == "__main__":
    main()
