"""1,000,000 hostile inputs each for the IEC 103 codec (with the driver's observations and
the stream's resync) and for Modbus answers (pymodbus' client side, the link's
classification, the driver's register decoding): any error other than the ones each
decoder names ends the run with its traceback; prints the outcome counts and the rate.

    .venv/bin/python bench/fuzz.py [--inputs 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.harness.fuzz import fuzz_iec103, fuzz_modbus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for name, run in (("iec103", fuzz_iec103), ("modbus", fuzz_modbus)):
        started = time.perf_counter()
        out = run(args.inputs, args.seed)
        took = time.perf_counter() - started
        counts = ", ".join(f"{k} {v}" for k, v in sorted(out.items()))
        print(f"{name}: {args.inputs} inputs in {took:.1f} s ({args.inputs / took:,.0f}/s), "
              f"no unexpected exception; {counts}", flush=True)  # fmt: skip
        if out.get("resync missed"):
            raise SystemExit(f"{name}: the stream missed a good frame after noise")


if __name__ == "__main__":
    main()
