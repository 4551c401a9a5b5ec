"""Frames decoded per second by the IEC 103 codec (extractor + ASDU decoder), one core.

    .venv/bin/python bench/iec103_codec.py [--seconds 3]

The mix is what a polled bus carries: class-2 measurands (ASDU 9), events (ASDU 1/2),
short fixed frames and E5, plus generic data (ASDU 10).
"""

from __future__ import annotations

import argparse
import time

from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_generic import GenericData, GenericDataSet
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands2
from protocols.iec103.codec.asdu_messages import RelativeTimeMessage, TimeTaggedMessage
from protocols.iec103.codec.frames import (
    Control,
    FixedFrame,
    FrameExtractor,
    VariableFrame,
    encode_frame,
)
from protocols.iec103.codec.time import Cp32Time


def stream() -> tuple[bytes, int]:
    t = Cp32Time(milliseconds=1234, minute=5, hour=6)
    asdus = [
        Measurands2(
            cot=2,
            common_address=1,
            fun=128,
            inf=148,
            values=tuple(Measurand.of(i / 10) for i in range(9)),
        ),
        TimeTaggedMessage(cot=1, common_address=1, fun=128, inf=47, dpi=2, time=t),
        RelativeTimeMessage(
            cot=1,
            common_address=1,
            fun=128,
            inf=69,
            dpi=2,
            relative_time=20,
            fault_number=3,
            time=t,
        ),
        GenericData(
            cot=42,
            common_address=1,
            fun=254,
            inf=241,
            rii=1,
            sets=tuple(GenericDataSet.of_value(1, i, i * 1.5) for i in range(1, 9)),
        ),
    ]
    frames = [encode_frame(VariableFrame(Control.secondary(8), 1, encode_asdu(a))) for a in asdus]
    frames += [encode_frame(FixedFrame(Control.secondary(9), 1)), b"\xe5"]
    return b"".join(frames) * 100, len(frames) * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    data, per_chunk = stream()
    frames = asdus = 0
    start = time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - start < args.seconds:
        ex = FrameExtractor()
        for frame in ex.feed(data):
            frames += 1
            if isinstance(frame, VariableFrame):
                decode_asdu(frame.asdu)
                asdus += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print(
        f"iec103 codec: {frames / wall:,.0f} frames/s ({asdus / wall:,.0f} ASDUs/s decoded), "
        f"{cpu / frames * 1e6:.1f} us CPU per frame, {frames:,} frames in {wall:.1f} s"
    )
    framing = time.perf_counter()
    n = 0
    while time.perf_counter() - framing < args.seconds / 2:
        n += len(FrameExtractor().feed(data))
    print(
        f"  framing only (extractor + checksums): {n / (time.perf_counter() - framing):,.0f} "
        f"frames/s"
    )
    assert per_chunk


if __name__ == "__main__":
    main()
