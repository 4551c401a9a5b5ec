"""Modbus relays that number every poll, so a bench counts lost polls instead of guessing.

Each unit (its own TCP port, unit id 1, as `simulator.relays.modbus.relay` serves it) holds 34
holding registers: a u32 sequence at 0-1 and 16 float32 measurements at 2-33. Every read that
covers register 0 increments the sequence before it is answered and records the moment
of the read, so the n-th poll of a unit carries n, and a poll that a master read but
never forwarded shows as a gap at the broker. The read times give poll-to-broker latency.

Driven by a bench over stdin/stdout: it prints `ready` once every unit listens; a line
`reads` makes it print one JSON line, {unit index: [read time (epoch s) of poll 1, 2, …]}.

    .venv/bin/python bench/modbus_seq_simulator.py --units 100 --base-port 25100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymodbus.constants import ExcCodes  # noqa: E402

from profiles.model import Profile  # noqa: E402
from protocols.profile_loader import load_profile  # noqa: E402
from simulator.relays.modbus.relay import ModbusRelay  # noqa: E402
from simulator.scenario import RelaySpec  # noqa: E402

REGISTERS = 34
MEASUREMENTS = (REGISTERS - 2) // 2


def profile_text() -> str:
    """The agent's profile of these units: the sequence, then the 16 measurements."""
    lines = ['[profile]\nname = "bench-seq"\nprotocol = "modbus"\n']
    lines.append('[[modbus.measurements]]\nname = "seq"\ntable = "holding"\naddress = 0\n'
                 'type = "u32"\n')  # fmt: skip
    for i in range(MEASUREMENTS):
        lines.append(f'[[modbus.measurements]]\nname = "m{i}"\ntable = "holding"\n'
                     f'address = {2 + 2 * i}\ntype = "f32"\n')  # fmt: skip
    return "\n".join(lines)


class SequencedRelay(ModbusRelay):
    """A simulated relay whose sequence register counts the reads of its block."""

    def __init__(self, spec: RelaySpec, profile: Profile) -> None:
        super().__init__(spec, profile)
        self.reads: list[float] = []

    async def _action(self, *call: Any) -> ExcCodes | None:
        """pymodbus' action (function code, start, address, count, registers, values)."""
        function_code, _, address, count, _, set_values = call
        if set_values is None and function_code == 3 and address <= 0 < address + count:
            self.reads.append(time.time())
            seq = len(self.reads)
            self.image.write("holding", 0, [seq >> 16, seq & 0xFFFF])
        return await super()._action(*call)


async def start_units(units: int, base_port: int) -> list[SequencedRelay]:
    """`units` sequenced relays listening on `base_port`, `base_port + 1`, …"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-seq.toml"
        path.write_text(profile_text())
        profile = load_profile(path)
    relays = []
    for i in range(units):
        link = {"transport": "tcp", "port": base_port + i, "unit_id": 1}
        relay = SequencedRelay(RelaySpec(id=f"u{i}", protocol="modbus", profile="x", link=link),
                               profile)  # fmt: skip
        for m in range(MEASUREMENTS):
            relay.image.set_measurement(f"m{m}", 50.0 + m)
        await relay.start()
        relays.append(relay)
    return relays


async def serve(units: int, base_port: int) -> None:
    relays = await start_units(units, base_port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "reads":
            print(json.dumps({i: r.reads for i, r in enumerate(relays)}), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--base-port", type=int, required=True)
    args = p.parse_args()
    asyncio.run(serve(args.units, args.base_port))
