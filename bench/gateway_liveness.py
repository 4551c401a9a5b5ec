"""How fast the center and the agent learn that the other side is gone, with a real
Mosquitto, the agent as a process and the center's service (SQLite).

    .venv/bin/python bench/gateway_liveness.py [--rounds 3] [--keepalive 10]

1. Clean stop: SIGTERM to the agent until the center has the gateway offline.
2. Broker SIGKILLed and restarted on its port, the agent idle: from the restart until the
   center has stored the agent's new birth.
3. Broker frozen (SIGSTOP), the agent idle: until the agent drops the connection, against
   `broker.keepalive_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.outbox import Outbox
from tests.conftest import SAVE_EVERY_CHANGE
from tests.e2e.test_gateway_liveness_e2e import running_plant
from tests.gateway.test_uplink import running_uplink
from tests.support.mosquitto import Mosquitto

BIRTHS = "SELECT count(*) FROM lifecycle WHERE kind = 'birth'"


async def seconds_until(check: Callable[[], object]) -> float:
    started = time.monotonic()
    async with asyncio.timeout(120):
        while not check():
            await asyncio.sleep(0.01)
    return time.monotonic() - started


def line(what: str, samples: list[float]) -> str:
    return (
        f"{what:<44} median {statistics.median(samples):6.2f} s  "
        f"min {min(samples):6.2f}  max {max(samples):6.2f}  (n={len(samples)})"
    )


async def center_cases(work: Path, rounds: int) -> None:
    broker = Mosquitto(work / "mosquitto", extra_conf=SAVE_EVERY_CHANGE)
    broker.start()
    stops: list[float] = []
    returns: list[float] = []
    try:
        async with running_plant(work, broker) as plant:
            for n in range(rounds):
                if n:
                    plant.agent.start()
                await seconds_until(plant.online)
                before = plant.value(BIRTHS)
                broker.kill()
                broker.start()
                returns.append(await seconds_until(lambda: plant.value(BIRTHS) > before))  # noqa: B023
                started = time.monotonic()
                assert plant.agent.proc is not None
                plant.agent.proc.terminate()
                await seconds_until(lambda: plant.online() is False)
                stops.append(time.monotonic() - started)
                plant.agent.proc.wait(15)
    finally:
        broker.stop()
    print(line("clean stop -> offline at the center", stops))
    print(line("broker killed+restarted -> new birth stored", returns))


async def frozen_broker(work: Path, rounds: int, keepalive: int) -> None:
    broker = Mosquitto(work / "frozen")
    broker.start()
    box = Outbox(work / "outbox.sqlite")
    box.open()
    noticed: list[float] = []
    try:
        async with running_uplink(box, broker, keepalive_s=keepalive) as uplink:
            for _ in range(rounds):
                await seconds_until(lambda: uplink.stats.connected)
                assert broker.proc is not None
                os.kill(broker.proc.pid, signal.SIGSTOP)
                try:
                    noticed.append(await seconds_until(lambda: not uplink.stats.connected))
                finally:
                    os.kill(broker.proc.pid, signal.SIGCONT)
    finally:
        box.close()
        broker.stop()
    print(line(f"broker frozen -> agent noticed (keepalive {keepalive} s)", noticed))
    print(f"{'':<44} worst / keepalive_s = {max(noticed) / keepalive:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keepalive", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(center_cases(Path(tmp), args.rounds))
        asyncio.run(frozen_broker(Path(tmp), args.rounds, args.keepalive))


if __name__ == "__main__":
    main()
