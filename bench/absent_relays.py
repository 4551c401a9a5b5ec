"""The agent's memory while relays stay away: N configured IEC 104 relays that never
answer (nothing listens on their ports), for `--minutes`, the agent's RSS every 10 s.

    .venv/bin/python bench/absent_relays.py --relays 100 --minutes 10 [--allocator unit]
    .venv/bin/python bench/absent_relays.py --fast  # ~40 attempts/s: does it level off?

Each relay's supervisor tries again with its backoff (1 s doubling to 60 s, jittered)
after each attempt's connect timeout (10 s): some 1,500 attempts a day per absent relay.
Prints the RSS at 1 minute and at the end, the slope (least squares, after the first
minute) and the attempts made (the supervisor's "restarting" lines). `--fast` retries
within 2 s and gives each attempt 1 s, to show in minutes what a gateway sees in weeks.
What one attempt leaves behind is `bench/link_flap.py`'s measurement; this is the same,
in the whole agent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_spine import agent_config, rss_mb, unit_allocator  # noqa: E402
from ports import free_port_run  # noqa: E402

from simulator.harness.agent_config import to_toml  # noqa: E402
from simulator.harness.broker import Mosquitto  # noqa: E402


def hurried(config: Path) -> None:
    """Retry within 2 s, each attempt given 1 s to connect."""
    doc = tomllib.loads(config.read_text())
    doc["supervision"] = {"backoff_min_s": 0.5, "backoff_max_s": 2.0}
    for device in doc["devices"]:
        device["connect_timeout_s"] = 1.0
    config.write_text(to_toml(doc))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        config = agent_config(work, args.relays, free_port_run(args.relays), broker)
        if args.fast:
            hurried(config)
        log = (work / "agent.log").open("w")
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config),
             "--log-level", "info"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **(unit_allocator() if args.allocator == "unit" else {})},
        )  # fmt: skip
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                await asyncio.sleep(10)
                samples.append((elapsed / 3600, rss_mb(agent.pid)))
                print(f"{elapsed:5.0f} s  RSS {samples[-1][1]:.1f} MB", flush=True)
        finally:
            agent.terminate()
            agent.wait(30)
            broker.stop()
        attempts = (work / "agent.log").read_text().count(": restarting in ")
    window = [s for s in samples if s[0] * 3600 >= 60]
    slope = statistics.linear_regression(*zip(*window, strict=True)).slope
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"allocator: {unit_allocator() if args.allocator == 'unit' else 'glibc'}")
    print(f"{args.relays} absent relays, {args.minutes} min, {attempts} link attempts: RSS "
          f"{window[0][1]:.1f} MB at 1 min, {samples[-1][1]:.1f} MB at the end, "
          f"{slope:+.1f} MB/h after the first minute")  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--relays", type=int, default=100)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--allocator", choices=["glibc", "unit"], default="glibc",
                   help="unit: the allocator systemd/relay-agent.service preloads")  # fmt: skip
    p.add_argument("--fast", action="store_true", help="retry within 2 s, 1 s per attempt")
    asyncio.run(main(p.parse_args()))
