"""The chaos suite, long: three IEC 104 relays sending for `--minutes` while the agent,
the broker and the center are SIGKILLed and the agent's disk is filled, in turn, one
fault every `--every` seconds; then every event the relays sent is looked up in the
center's store. Prints the faults, events sent, stored, lost and stored twice.

    .venv/bin/python bench/chaos.py [--minutes 30] [--rate 20] [--every 60] [--down 3]

The relays resend what the agent had not acknowledged (as real ones do), so "lost" counts
events a relay gave up after the agent confirmed them. The disk-full fault needs root (the
agent's state directory is a tmpfs of its own); without root it is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.harness.chaos import ChaosRig, DiskFiller, event_scenario


async def run(args: argparse.Namespace) -> None:
    duration = args.minutes * 60
    disk = DiskFiller.available()
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        rig = ChaosRig(Path(tmp), event_scenario(args.rate, duration), disk=disk, progress=print)
        faults: list[Callable[[float], Awaitable[None]]] = [
            rig.kill_agent,
            rig.kill_broker,
            rig.kill_center,
        ]
        if disk:
            faults.append(rig.fill_disk)
        try:
            await rig.start()
            started = time.monotonic()
            play = asyncio.create_task(rig.runner.play())
            for fault in itertools.cycle(faults):
                await asyncio.sleep(args.every)
                if play.done() or time.monotonic() - started > duration - args.every:
                    break
                await fault(args.down)
                print(f"{time.monotonic() - started:7.0f} s  {dict(rig.faults)}", flush=True)
            await play
            tally = await rig.drain(timeout_s=600, quiet_s=60)
            print(f"{args.minutes} min at {3 * args.rate:g} events/s: {dict(rig.faults)}")
            print(f"events: {tally}")
        finally:
            await rig.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="events a second per relay")
    parser.add_argument("--every", type=float, default=60, help="seconds between faults")
    parser.add_argument("--down", type=float, default=3, help="seconds each fault lasts")
    asyncio.run(run(parser.parse_args()))
