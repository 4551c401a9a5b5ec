"""Fuzzed IEC 104 ASDUs: valid ones of many types, then mutated, reproducibly from a seed.

What a relay could send by mistake or malice inside well-sequenced I-frames: wrong type ids,
structure qualifiers that disagree with the length (more or fewer objects, the SQ bit flipped),
private and undefined causes, truncated and over-long payloads, flipped bits. The common address is
kept and IOAs stay small most of the time, so the master under test is not merely flooded with new
points. `simulator.relays.iec104.raw_outstation.RawOutstation` sends them; the APCI is never fuzzed
here (broken framing only ends a connection, tested on its own).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime

from simulator.relays.iec104.raw_outstation import asdu, cp56

# (type id, element size without IOA, whether the element ends with a CP56Time2a)
TEMPLATES = (
    (1, 1, False), (3, 1, False), (7, 5, False), (9, 3, False), (11, 3, False), (13, 5, False),
    (15, 5, False), (21, 2, False), (30, 8, True), (31, 8, True), (33, 12, True),
    (34, 10, True), (36, 12, True), (37, 12, True), (38, 10, True), (39, 11, True),
    (40, 11, True), (70, 1, False), (100, 1, False),
)  # fmt: skip
SMALL_IOAS = 64


def valid_asdu(rng: random.Random, ca: int) -> bytes:
    type_id, size, timed = rng.choice(TEMPLATES)
    count = rng.randint(1, 5)
    sequence = rng.random() < 0.3
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def element() -> bytes:
        value = bytes(rng.getrandbits(8) for _ in range(size - 7 if timed else size))
        return value + (cp56(now) if timed else b"")

    first = rng.randint(1, SMALL_IOAS)
    if sequence:
        objects = struct.pack("<I", first)[:3] + b"".join(element() for _ in range(count))
    else:
        objects = b"".join(struct.pack("<I", first + i)[:3] + element() for i in range(count))
    return asdu(type_id, 3, ca, objects, count, sq=sequence)


def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(8)
        if choice in (0, 1, 2) and len(data) > choice:
            # 0: any type id; 1: any count, either SQ; 2: any cause, test and negative bits
            data[choice] = rng.randrange(256)
        elif choice == 3 and len(data) > 1:
            del data[rng.randrange(1, len(data)) :]  # truncated
        elif choice == 4:
            data += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 20)))
        elif choice == 5 and len(data) > 6:
            at = rng.randrange(6, len(data))
            data[at] ^= 1 << rng.randrange(8)
        elif choice == 6 and len(data) > 6:
            data[6:] = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        elif choice == 7 and len(data) > 1:
            data[1] ^= 0x80  # SQ flipped
    if len(data) >= 9 and rng.random() < 0.95:
        data[7:9] = b"\0\0"  # IOA high octets: keep the point count bounded
    return bytes(data[:249]) or b"\x01"


def fuzzed_asdus(seed: int, count: int, ca: int) -> Iterator[bytes]:
    """`count` ASDUs: a quarter valid, the rest mutated."""
    rng = random.Random(seed)
    for _ in range(count):
        body = valid_asdu(rng, ca)
        yield body if rng.random() < 0.25 else mutate(rng, body)
