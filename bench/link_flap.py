"""What each attempt of an IEC 104 link costs in memory: a relay that stays away, or one
that accepts, is interrogated and is dropped, `--cycles` times in this process.

    .venv/bin/python bench/link_flap.py absent --cycles 300
    .venv/bin/python bench/link_flap.py flapping --cycles 150

Prints the RSS before and after (after 30 warm-up attempts, `gc.collect()` both times),
the growth per attempt, and how many of the ended links are still alive (each should be
freed once its threads have finished). Absent: each attempt gives up after the
connect timeout (0.3 s); flapping: a simulated relay (c104's server) stays up, and each
link is cancelled once connected and interrogated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
import weakref
from importlib import metadata
from pathlib import Path

import c104

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.link import Iec104Link
from tests.protocols.iec104.helpers import RecordingSink, free_port

WARMUP = 30


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def attempt(kind: str, port: int, links: list[weakref.ref[Iec104Link]]) -> None:
    config = Iec104Device(id="r0", protocol="iec104", profile="line-protection",
                          host="127.0.0.1", port=port, common_address=1,
                          connect_timeout_s=0.3)  # fmt: skip
    link = Iec104Link(config, frozenset(), RecordingSink())
    links.append(weakref.ref(link))
    task = asyncio.create_task(link.run())
    if kind == "flapping":
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await link.ready.wait()
        task.cancel()
    with contextlib.suppress(LinkError, asyncio.CancelledError):
        await task


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    if args.kind == "flapping":
        server = c104.Server(ip="127.0.0.1", port=port)
        server.add_station(common_address=1)
        server.start()
    links: list[weakref.ref[Iec104Link]] = []
    for _ in range(WARMUP):
        await attempt(args.kind, port, links)
    gc.collect()
    before, started = rss_kb(), time.monotonic()
    for _ in range(args.cycles):
        await attempt(args.kind, port, links)
    await asyncio.sleep(2)  # the last links' threads finish
    gc.collect()
    after = rss_kb()
    alive = [i for i, ref in enumerate(links) if ref() is not None]
    print(f"c104 {metadata.version('c104')}, "
          f"Python {sys.version.split()[0]}, command: {' '.join(sys.argv)}")  # fmt: skip
    print(f"{args.kind}: {args.cycles} attempts in {time.monotonic() - started:.0f} s, RSS "
          f"{before / 1024:.1f} -> {after / 1024:.1f} MB, "
          f"{(after - before) * 1024 / args.cycles:,.0f} bytes per attempt; "
          f"links still alive: {len(alive)} of {len(links)} {alive[:10]}")  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("absent", "flapping"))
    p.add_argument("--cycles", type=int, default=300)
    asyncio.run(main(p.parse_args()))
