"""1,000,000 fuzzed IEC 104 ASDUs from one raw outstation into the real link (APDU guard,
decoder, c104) while two healthy relays send events beside it: prints how many were
decoded, passed to c104 or diverted (kept raw), the rate, and whether anything was lost or
restarted.

    .venv/bin/python bench/fuzz104.py [--inputs 1000000] [--seed 104]

The same shape as `tests/protocols/iec104/test_hostile_relay.py` (100,000 in CI), run long:
any restart of a link, any healthy event missing, or any frame left unacknowledged ends
the run with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols.observations import Observation
from simulator.harness.fuzz104 import fuzzed_asdus
from simulator.relays.iec104.raw_outstation import RawOutstation, single_point_tb
from tests.protocols.iec104.helpers import device, driver_for, free_port, running

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingSink:
    def __init__(self) -> None:
        self.diverted = 0
        self.passed = 0
        self.healthy: dict[str, int] = {"a": 0, "b": 0}

    async def deliver(self, observations: Sequence[Observation]) -> None:
        self.deliver_blocking(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            if o.device_id in self.healthy:
                # events carry a device time; link-state observations do not
                self.healthy[o.device_id] += getattr(o, "device_time", None) is not None
            elif "diverted" in getattr(o, "details", {}):
                self.diverted += 1
            else:
                self.passed += 1


async def run(inputs: int, seed: int, healthy_events: int) -> int:
    sink = CountingSink()
    relays = [
        await RawOutstation(free_port(), common_address=9, k=200).start(),
        await RawOutstation(free_port(), common_address=2).start(),
        await RawOutstation(free_port(), common_address=3).start(),
    ]
    fuzzed, healthy_a, healthy_b = relays
    drivers = [
        driver_for(device("fuzzed", fuzzed.port, 9, interrogation_timeout_s=120)),
        driver_for(device("a", healthy_a.port, 2)),
        driver_for(device("b", healthy_b.port, 3)),
    ]

    async def healthy(relay: RawOutstation) -> None:
        for i in range(healthy_events):
            at = T0 + timedelta(milliseconds=i)
            await relay.send_asdu(single_point_tb(relay.common_address, 1 + i % 20, True, at))

    started = time.perf_counter()
    try:
        async with (
            running(drivers[0], sink) as t0,
            running(drivers[1], sink) as t1,
            running(drivers[2], sink) as t2,
        ):
            await asyncio.gather(
                fuzzed.send_many(fuzzed_asdus(seed=seed, count=inputs, ca=9)),
                healthy(healthy_a),
                healthy(healthy_b),
            )
            for relay in relays:
                await relay.wait_all_acked(wait_s=120)
            alive = not (t0.done() or t1.done() or t2.done())
    finally:
        for relay in relays:
            await relay.close()
    took = time.perf_counter() - started
    connections = [r.connections for r in relays]
    ok = (
        alive
        and connections == [1, 1, 1]
        and sink.healthy == {"a": healthy_events} | {"b": healthy_events}
    )
    print(f"iec104 fuzz: {inputs:,} ASDUs (seed {seed}) in {took:.0f} s ({inputs / took:,.0f}/s)")
    print(f"  decoded {sink.passed:,} objects, diverted (kept raw) {sink.diverted:,}")
    print(f"  healthy relays: {sink.healthy} of {healthy_events} each; connections {connections}")
    print(f"  links alive at the end: {alive}; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=104)
    parser.add_argument("--healthy-events", type=int, default=1000)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.inputs, args.seed, args.healthy_events)))


if __name__ == "__main__":
    main()
