"""The measurements' fast path (one struct call per span) decodes exactly as value by value
does, across types, gaps, scales, offsets and spans; layouts it cannot do fall back."""

from __future__ import annotations

import random
from collections.abc import Sequence

from protocols.modbus.link import ModbusLink
from protocols.modbus.profile import ModbusProfile
from protocols.modbus.readers import DeviceReader, ProfileReads

MEASUREMENTS = [
    {"name": "seq", "table": "holding", "address": 0, "type": "u32"},
    {"name": "ia", "table": "holding", "address": 2, "type": "i16", "scale": 0.1},
    {"name": "ib", "table": "holding", "address": 3, "type": "u16", "offset": -40.0},
    {"name": "f", "table": "holding", "address": 7, "type": "f32"},  # a gap of 3 before it
    {"name": "p", "table": "holding", "address": 9, "type": "i32", "scale": 2.5},
    {"name": "v", "table": "input", "address": 100, "type": "f32", "scale": 0.001},
    {"name": "q", "table": "input", "address": 102, "type": "i16"},
]


def reads_of(measurements: list[dict[str, object]]) -> ProfileReads:
    profile = ModbusProfile.model_validate({"measurements": measurements})
    # Never opened, nothing is read (pymodbus makes its client inside an event loop).
    link = ModbusLink("decode-only", host="127.0.0.1")
    return ProfileReads(profile, DeviceReader("d", 1, link, 1.0))


def blocks(reads: ProfileReads, rng: random.Random) -> list[list[int]]:
    return [[rng.randrange(65536) for _ in range(s.count)] for s in reads.measurement_spans]


def same(a: Sequence[object], b: Sequence[object]) -> bool:
    """Equal, NaN included (random f32 bits make NaNs)."""
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


async def test_one_struct_per_span_decodes_as_value_by_value() -> None:
    reads = reads_of(MEASUREMENTS)
    assert len(reads.measurement_spans) == 2
    rng = random.Random(7)
    for _ in range(500):
        regs = blocks(reads, rng)
        assert same(reads.decode_measurements(regs), reads.decode_measurements(regs, general=True))
    regs = [[0, 1234, 65535 - 99, 55, 0, 0, 0, 0x4248, 0xF5C3, 0xFFFF, 0xFFFE], [0x4000, 0, 7]]
    assert reads.decode_measurements(regs) == [1234, -10.0, 15, 50.24, -5.0, 0.002, 7]


async def test_little_endian_words_and_overlaps_take_the_general_path() -> None:
    little = [*MEASUREMENTS, {"name": "w", "address": 104, "type": "u32", "word_order": "little"}]
    overlap = [*MEASUREMENTS, {"name": "lo", "table": "holding", "address": 1, "type": "u16"}]
    rng = random.Random(11)
    for measurements in (little, overlap):
        reads = reads_of(measurements)
        regs = blocks(reads, rng)
        assert same(reads.decode_measurements(regs), reads.decode_measurements(regs, general=True))
    reads = reads_of(little)
    regs = [[0] * s.count for s in reads.measurement_spans]
    regs[1][4:6] = [0x0002, 0x0001]  # low word first
    assert reads.decode_measurements(regs)[-1] == 0x00010002


async def test_one_unscaled_span_rounds_only_its_f32() -> None:
    """The poll's own layout (one span, nothing scaled): its shortcut decodes as value by
    value does, and as the general struct path does for the same values scaled by 1."""
    plain = [
        {"name": "seq", "table": "holding", "address": 0, "type": "u32"},
        {"name": "f", "table": "holding", "address": 4, "type": "f32"},  # a gap before it
        {"name": "i", "table": "holding", "address": 2, "type": "i16"},  # out of order
        {"name": "g", "table": "holding", "address": 6, "type": "f32"},
    ]
    reads = reads_of(plain)
    assert reads._span_structs is not None
    assert reads._span_structs.plain is not None
    rng = random.Random(5)
    for _ in range(500):
        regs = blocks(reads, rng)
        assert same(reads.decode_measurements(regs), reads.decode_measurements(regs, general=True))
    regs = [[0, 7, 0xFFFF, 0, 0x4248, 0xF5C3, 0x3F80, 0]]
    assert reads.decode_measurements(regs) == [7, 50.24, -1, 1.0]
