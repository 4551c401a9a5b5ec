"""Every relay of a gateway drops at once and comes back: does the agent live through it?

    .venv/bin/python bench/reconnect_storm.py [--relays 200] [--storms 3] [--hogs 2]

The agent process reads `--relays` IEC 104 relays (`relay-sim --load`, a trickle of
events) through Mosquitto, with `--hogs` busy processes on the cores (a starved gateway,
the condition under which c104 once aborted the agent: docs/performance.md, "Reconnect
storms"). Each storm kills the simulator (every link lost within its t1), starts it again
at once on the same ports, and times how long until every link reported "connected"
again. Prints, per storm: seconds until all were back, and whether the agent is alive;
at the end the agent's log lines that show an abort (`Potential Deadlock`, `terminate
called`). Links take turns to connect (8 at a time, protocols/iec104/connect_turns.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from agent_spine import agent_config, start_generator  # noqa: E402

from simulator.harness.broker import Mosquitto  # noqa: E402

ABORT_SIGNS = ("Potential Deadlock", "terminate called", "Segmentation fault")


def connects(log: Path) -> int:
    return log.read_text(errors="replace").count(": connected")


def hog() -> subprocess.Popen[bytes]:
    """A busy process for at most 600 s (so a crashed bench leaves nothing spinning)."""
    code = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


async def wait_connects(
    agent: subprocess.Popen[bytes], log: Path, target: int, limit_s: float
) -> float | None:
    """Seconds until the log shows `target` connects in all; None if the agent died or
    the limit passed."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if agent.poll() is not None:
            return None
        if connects(log) >= target:
            return time.monotonic() - t0
        await asyncio.sleep(0.2)
    return None


async def run(relays: int, storms: int, hogs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        gen, base_port = start_generator(work, relays, relays, 3600, 1)
        await asyncio.sleep(1.0)
        log = work / "agent.log"
        config = agent_config(work, relays, base_port, broker)
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config),
             "--log-level", "info"],
            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        busy: list[subprocess.Popen[bytes]] = []
        try:
            first = await wait_connects(agent, log, relays, 300)
            print(f"{relays} relays connected in {first if first is None else round(first, 1)} s")
            busy = [hog() for _ in range(hogs)]
            for storm in range(1, storms + 1):
                before = connects(log)
                gen.kill()
                gen.wait()
                await asyncio.sleep(1.0)
                gen = restart_generator(work, relays, base_port)
                back = await wait_connects(agent, log, before + relays, 300)
                alive = agent.poll() is None
                took = "not all back within 300 s" if back is None else f"all back in {back:.1f} s"
                print(f"storm {storm}: {took}; agent {'alive' if alive else 'DEAD'}", flush=True)
                if not alive:
                    break
        finally:
            for process in busy:
                process.kill()
            agent.terminate()
            agent.wait(30)
            gen.kill()
            gen.wait()
            broker.stop()
        signs = [line for line in log.read_text(errors="replace").splitlines()
                 if any(sign in line for sign in ABORT_SIGNS)]  # fmt: skip
        print(f"agent exit code {agent.returncode}; abort lines in its log: {len(signs)}")
        for line in signs[:5]:
            print(f"  {line}")


def restart_generator(work: Path, relays: int, base_port: int) -> subprocess.Popen[bytes]:
    """The simulator again on the same ports (the agent's config names them)."""
    command = [sys.executable, "-m", "simulator.cli", "--load", "--relays", str(relays),
               "--rate", str(relays), "--duration", "3600", "--base-port", str(base_port),
               "--points", "20", "--wait-for-clients", "0", "--batch", "1",
               "--no-hold"]  # fmt: skip
    return subprocess.Popen(
        command, stdout=(work / "gen.log").open("a"), stderr=subprocess.STDOUT, cwd=ROOT
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--relays", type=int, default=200)
    p.add_argument("--storms", type=int, default=3)
    p.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    asyncio.run(run(args.relays, args.storms, args.hogs))


if __name__ == "__main__":
    main()
