"""Wire benchmark: what validating an event costs the center, per record, for records that
carry the `cause` vocabulary and for records of older agents (the protocol's own cause name
in `cause`, read into the vocabulary on the way in).

    .venv/bin/python -m bench.wire_decode
    .venv/bin/python -m bench.wire_decode --records 1000 --rounds 7

Prints µs per event for each kind, the best of `--rounds` rounds, interleaved so that both
see the same machine load, and their ratio. One envelope holds `--records` events (at most
1 MiB, the wire's limit).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gateway import wire

EVENT: dict[str, Any] = {
    "kind": "event", "site": "north", "gateway_id": "gw1", "device_id": "line1",
    "session": 1, "gateway_time": "2026-03-01T08:00:00.123456Z", "address": "1011",
    "point": "trip_phase_a", "label": "Trip phase A (TJA)", "signal": "trip",
    "severity": "critical", "phase": "A", "value": True, "quality": ["NT"],
    "device_time": "2026-03-01T08:00:00.120000Z",
    "details": {"type": "M_SP_TB_1", "type_id": 30, "ioa": 1011, "common_address": 1},
    "raised": True,
}  # fmt: skip


def envelope(records: int, cause: dict[str, str]) -> bytes:
    body = [{**EVENT, **cause, "seq": seq} for seq in range(1, records + 1)]
    return json.dumps({"v": 1, "records": body}).encode()


def per_event_us(payload: bytes, records: int) -> float:
    started = time.perf_counter()
    decoded = wire.decode_envelope(payload)
    elapsed = time.perf_counter() - started
    assert len(decoded) == records
    return elapsed / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    kinds = {
        "current (cause + cause_raw)": envelope(
            args.records, {"cause": "spontaneous", "cause_raw": "SPONTANEOUS"}
        ),
        "older agent (cause = SPONTANEOUS)": envelope(args.records, {"cause": "SPONTANEOUS"}),
    }
    best = dict.fromkeys(kinds, float("inf"))
    for _ in range(args.rounds):
        for name, payload in kinds.items():
            best[name] = min(best[name], per_event_us(payload, args.records))
    for name, us in best.items():
        print(f"{name:36s} {us:6.2f} µs/event")
    current, older = best.values()
    print(f"{'older / current':36s} {older / current:6.2f}")


if __name__ == "__main__":
    main()
