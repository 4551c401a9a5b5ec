"""Fuzz: >= 100,000 random and mutated frames and ASDUs; nothing escapes but DecodeError."""

from __future__ import annotations

import random

from protocols.errors import DecodeError
from protocols.iec103.asdu import decode_asdu, encode_asdu
from protocols.iec103.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.asdu_generic import GenericCommand, GenericData, GenericDataSet, GenericItem
from protocols.iec103.asdu_measurands import Measurand, Measurands2
from protocols.iec103.asdu_messages import Identification, RelativeTimeMessage
from protocols.iec103.frames import (
    Control,
    FrameExtractor,
    VariableFrame,
    decode_frame,
    encode_frame,
)
from protocols.iec103.time import Cp32Time, Cp56Time

SEEDS = [
    encode_asdu(a)
    for a in (
        Identification(
            cot=4,
            common_address=1,
            fun=160,
            inf=3,
            col=2,
            manufacturer=b"SIEMENS ",
            software=b"V4.7",
        ),
        RelativeTimeMessage(
            cot=1,
            common_address=1,
            fun=128,
            inf=69,
            dpi=2,
            relative_time=5,
            fault_number=1,
            time=Cp32Time(milliseconds=1, minute=2, hour=3),
        ),
        Measurands2(
            cot=2,
            common_address=1,
            fun=128,
            inf=148,
            values=tuple(Measurand.of(0.1 * i) for i in range(9)),
        ),
        GenericData(
            cot=42,
            common_address=1,
            fun=254,
            inf=241,
            rii=1,
            sets=(GenericDataSet.of_value(1, 1, 4.2), GenericDataSet.of_value(1, 2, "x")),
        ),
        GenericCommand(
            cot=42, common_address=1, fun=254, inf=241, rii=1, items=(GenericItem(1, 0, 1),)
        ),
        DisturbanceList(
            cot=31,
            common_address=1,
            fun=128,
            inf=0,
            records=(
                DisturbanceRecord(
                    fault_number=1,
                    sof=1,
                    time=Cp56Time(milliseconds=0, minute=0, hour=0, day=1, month=1, year=30),
                ),
            ),
        ),
    )
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b))]
        elif op == 2:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif b:
            b = b[: rng.randrange(len(b))]
    return bytes(b)


def test_fuzz_decoder_raises_only_decode_error() -> None:
    rng = random.Random(103)
    decoded = rejected = 0
    ex = FrameExtractor()
    for i in range(100_000):
        kind = i % 4
        if kind == 0:  # random bytes as an ASDU, with a plausible type id
            raw = bytes([rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 23, rng.randrange(256)])])
            raw += rng.randbytes(rng.randrange(40))
        elif kind == 1:  # a mutated valid ASDU
            raw = _mutate(rng, rng.choice(SEEDS))
        elif kind == 2:  # a mutated valid frame, whole-frame decoder
            frame = encode_frame(VariableFrame(Control.secondary(8), 1, rng.choice(SEEDS)))
            raw = _mutate(rng, frame)
            try:
                decode_frame(raw)
                decoded += 1
            except DecodeError:
                rejected += 1
            continue
        else:  # random and mutated bytes through the stream extractor
            for frame in ex.feed(_mutate(rng, rng.choice(SEEDS)) + rng.randbytes(3)):
                if isinstance(frame, VariableFrame):
                    try:
                        decode_asdu(frame.asdu)
                    except DecodeError:
                        rejected += 1
            continue
        try:
            decode_asdu(raw)
            decoded += 1
        except DecodeError:
            rejected += 1
    assert decoded > 1000 and rejected > 10_000  # both paths really exercised
