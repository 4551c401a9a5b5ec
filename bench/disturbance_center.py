"""Center benchmark: the time to analyse one disturbance record, and to take one in whole.

    .venv/bin/python -m bench.disturbance_center                       # defaults below
    .venv/bin/python -m bench.disturbance_center --channels 10 --samples 2000 --records 20

1. Analysis: `center.disturbance.analysis.analyse` on a record read back from COMTRADE
   (a phase-A fault; `--channels` analog channels: IA-IC, UA-UC, then flat extras), CPU
   time per record, and the COMTRADE parse alone for comparison.
2. Intake: manifest + chunks (the agent's 32 KiB) through the center's ingest on SQLite:
   staging, reassembly, SHA-256, parse, analysis, storage, ticket attachment; wall time
   per record.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.disturbance import DEFAULT_CHUNK_BYTES, comtrade_record, transfer_records
from agent.normalize import DeviceContext
from center.disturbance.analysis import analyse
from gateway import comtrade
from protocols.profile_loader import load_named
from tests.center.conftest import Harness
from tests.center.records import Gateway
from tests.support.disturbance_synth import T_FAULT, Fault, observation

CTX = DeviceContext("north", "gw1", "line1", "iec103", load_named("line-protection"))


def per_call(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.process_time()
        fn()  # type: ignore[operator]
        out.append(time.process_time() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--records", type=int, default=20)
    args = p.parse_args()
    fault = Fault(
        duration_ms=args.samples,  # 1 kHz: one sample per ms
        extra_channels=max(0, args.channels - 6),
    )
    cfg, dat = comtrade.write(comtrade_record(CTX, observation(fault, "line1")))
    print(f"record: {args.channels} analog + 2 digital channels, {args.samples} samples, "
          f"{len(cfg) + len(dat):,} bytes of COMTRADE")  # fmt: skip

    parse = per_call(lambda: comtrade.read(cfg, dat), args.records)
    record = comtrade.read(cfg, dat)
    analysis = per_call(lambda: analyse(record), args.records)
    print(f"  parse    median {1000 * statistics.median(parse):7.2f} ms CPU")
    print(f"  analyse  median {1000 * statistics.median(analysis):7.2f} ms CPU "
          f"(max {1000 * max(analysis):.2f})")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(f"sqlite:///{Path(tmp) / 'center.sqlite'}")
        gw = Gateway()
        walls = []
        for i in range(args.records):
            obs = observation(
                Fault(
                    duration_ms=args.samples,
                    extra_channels=fault.extra_channels,
                    trigger_time=T_FAULT + timedelta(minutes=i),
                    fault_number=i,
                ),
                "line1",
            )
            m, chunks = transfer_records(CTX, obs, T_FAULT, DEFAULT_CHUNK_BYTES)
            ids = {"session": 1, "seq": next(gw._seq)}
            messages = [m.model_copy(update=ids)] + [c.model_copy(update=ids) for c in chunks]
            start = time.perf_counter()
            for r in messages:
                h.send(r)
            walls.append(time.perf_counter() - start)
        done = h.scalar("SELECT count(*) FROM disturbance_records WHERE status = 'complete'")
        h.close()
    print(f"  intake   median {1000 * statistics.median(walls):7.2f} ms wall per record "
          f"({len(chunks) + 1} messages each; {done}/{args.records} complete)")  # fmt: skip
    print(f"  analysis is {statistics.median(analysis) / statistics.median(walls):.0%} "
          "of the intake's time")  # fmt: skip


if __name__ == "__main__":
    main()
