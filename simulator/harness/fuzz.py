"""Hostile input for the agent's decoders: random and mutated IEC 103 frames and ASDUs
(codec, the observations the driver makes of them, and the stream's resync), and Modbus
answers (pymodbus' client-side framing and decoding, the link's own classification, and
the driver's decoding of register content).

Each run catches only the errors its decoder is documented to raise, named in
`EXPECTED_*`; anything else propagates, so a test or bench run fails on it. Seeded, so a
failure is reproduced by running the same seed again. `tests/fuzz/` runs 100,000 inputs
of each, `bench/fuzz.py` 1,000,000.
"""

from __future__ import annotations

import contextlib
import logging
import random
import struct
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_base import Asdu
from protocols.iec103.codec.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.codec.asdu_generic import (
    GenericCommand,
    GenericData,
    GenericDataSet,
    GenericItem,
)
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands2
from protocols.iec103.codec.asdu_messages import (
    Identification,
    RelativeTimeMessage,
    TimeTaggedMessage,
)
from protocols.iec103.codec.frames import (
    Control,
    FixedFrame,
    Frame,
    FrameExtractor,
    VariableFrame,
    decode_frame,
    encode_frame,
)
from protocols.iec103.codec.time import Cp32Time, Cp56Time
from protocols.iec103.observe import disturbance_observations, identity, observations
from protocols.modbus.answers import Expect, classify_garbage, rtu_crc
from protocols.modbus.codec import RecordDecoder, decode_ascii, decode_number
from protocols.modbus.faultreport import FaultReportDecoder
from protocols.modbus.profile import ModbusProfile
from protocols.profile_loader import load_named

# What each decoder may raise on bad input; anything else is a bug.
EXPECTED_IEC103 = (DecodeError,)
EXPECTED_MODBUS_FRAMING = (ModbusException,)  # pymodbus: ModbusIOException and kin
EXPECTED_MODBUS_CONTENT = (DecodeError,)

_T0 = Cp32Time(milliseconds=1, minute=2, hour=3)

IEC103_SEEDS: list[Asdu] = [
    Identification(cot=4, common_address=1, fun=160, inf=3, col=2,
                   manufacturer=b"SIEMENS ", software=b"V4.7"),
    TimeTaggedMessage(cot=1, common_address=1, fun=128, inf=47, dpi=2, time=_T0),
    RelativeTimeMessage(cot=1, common_address=1, fun=128, inf=69, dpi=2, relative_time=5,
                        fault_number=1, time=_T0),
    Measurands2(cot=2, common_address=1, fun=128, inf=148,
                values=tuple(Measurand.of(0.1 * i) for i in range(9))),
    GenericData(cot=42, common_address=1, fun=254, inf=241, rii=1,
                sets=(GenericDataSet.of_value(1, 1, 4.2), GenericDataSet.of_value(1, 2, "x"))),
    GenericCommand(cot=42, common_address=1, fun=254, inf=241, rii=1,
                   items=(GenericItem(1, 0, 1),)),
    DisturbanceList(cot=31, common_address=1, fun=128, inf=0, records=(DisturbanceRecord(
        fault_number=1, sof=1,
        time=Cp56Time(milliseconds=0, minute=0, hour=0, day=1, month=1, year=30)),)),
]  # fmt: skip
_SEED_BYTES = [encode_asdu(a) for a in IEC103_SEEDS]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four byte flips, deletions, insertions or truncations."""
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


def _observe_103(asdu: Asdu) -> None:
    """What the driver makes of a decoded ASDU: it must take any decodable content."""
    now = datetime.now(UTC)
    observations("fuzz", asdu, now)
    if isinstance(asdu, Identification):
        identity("fuzz", asdu)
    if isinstance(asdu, DisturbanceList):
        disturbance_observations("fuzz", asdu, set())


def _asdu_103(rng: random.Random, out: Counter[str]) -> None:
    if rng.random() < 0.5:  # random bytes behind a plausible type id
        head = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31])
        raw = bytes([head if rng.random() < 0.9 else rng.randrange(256)])
        raw += rng.randbytes(rng.randrange(48))
    else:
        raw = mutate(rng, rng.choice(_SEED_BYTES))
    try:
        asdu = decode_asdu(raw)
    except EXPECTED_IEC103:
        out["asdu rejected"] += 1
        return
    _observe_103(asdu)
    out["asdu decoded"] += 1


def _frame_103(rng: random.Random, out: Counter[str]) -> None:
    frame = encode_frame(VariableFrame(Control.secondary(8), 1, rng.choice(_SEED_BYTES)))
    try:
        decode_frame(mutate(rng, frame))
    except EXPECTED_IEC103:
        out["frame rejected"] += 1
        return
    out["frame decoded"] += 1


def _valid_frame(rng: random.Random) -> Frame:
    if rng.random() < 0.3:
        return FixedFrame(Control.secondary(rng.choice([0, 8, 9, 11])), rng.randrange(255))
    return VariableFrame(Control.secondary(8), rng.randrange(255), rng.choice(_SEED_BYTES))


def _resync_103(rng: random.Random, out: Counter[str], ex: FrameExtractor) -> None:
    """Line noise or a damaged frame, then three good frames and a quiet line: the stream
    must find its way back to the good frames. Since a damaged frame is dropped one start
    octet at a time, only the last good frame is held to it (noise may fake a frame that
    swallows the first ones, as on a real line)."""
    noise = rng.randbytes(rng.randrange(1, 40)) if rng.random() < 0.5 else b""
    noise += mutate(rng, encode_frame(_valid_frame(rng)))
    good = [_valid_frame(rng) for _ in range(3)]
    got = ex.feed(noise + b"".join(encode_frame(f) for f in good)) + ex.flush()
    for frame in got:
        if isinstance(frame, VariableFrame):
            with contextlib.suppress(*EXPECTED_IEC103):
                _observe_103(decode_asdu(frame.asdu))
    if got[-1:] == [good[-1]]:
        out["resynced"] += 1
    else:
        out["resync missed"] += 1


def fuzz_iec103(inputs: int, seed: int = 103) -> Counter[str]:
    """`inputs` hostile inputs, in turn: an ASDU, a whole frame, a stream to resync."""
    rng = random.Random(seed)
    out: Counter[str] = Counter()
    ex = FrameExtractor()
    for i in range(inputs):
        kind = i % 3
        if kind == 0:
            _asdu_103(rng, out)
        elif kind == 1:
            _frame_103(rng, out)
        else:
            _resync_103(rng, out, ex)
    out["bad frames"] = ex.bad_frames
    out["garbage bytes"] = ex.garbage_bytes
    return out


class _ModbusContent:
    """The driver's decoders of register content, built from the shipped profile."""

    def __init__(self) -> None:
        section = load_named("feeder-protection-modbus").section
        assert isinstance(section, ModbusProfile)
        assert section.event_log is not None
        self.records = RecordDecoder(section.event_log)
        report = section.fault_report
        self.reports = FaultReportDecoder(report) if report is not None else None

    def decode(self, rng: random.Random, out: Counter[str]) -> None:
        size = self.records.size if rng.random() < 0.8 else rng.randrange(64)
        data = rng.randbytes(size)
        registers = list(struct.unpack(f">{len(data) // 2}H", data[: len(data) // 2 * 2]))
        try:
            if rng.random() < 0.5:
                self.records.decode(rng.randrange(64), data)
            elif self.reports is not None:
                self.reports.decode("fuzz", data[: self.reports.size], rng.randrange(1 << 16))
            for type_ in ("u16", "i16", "u32", "i32", "f32"):
                decode_number(registers, type_, rng.choice(["big", "little"]))
            decode_ascii(registers, swap_bytes=rng.random() < 0.5)
        except EXPECTED_MODBUS_CONTENT:
            out["content rejected"] += 1
            return
        out["content decoded"] += 1


def _rtu_answer(rng: random.Random, unit: int, fc: int, count: int) -> bytes:
    if fc in (3, 4):
        body = bytes([unit, fc, 2 * count]) + rng.randbytes(2 * count)
    else:
        body = bytes([unit, fc, (count + 7) // 8]) + rng.randbytes((count + 7) // 8)
    return body + rtu_crc(body).to_bytes(2, "big")


def _framing(rng: random.Random, out: Counter[str], rtu: bool) -> None:
    """One answer to a read, as pymodbus' client receives it: valid, mutated, or noise."""
    unit, fc, count = rng.randrange(1, 248), rng.choice([1, 2, 3, 4]), rng.randrange(1, 126)
    answer = _rtu_answer(rng, unit, fc, count)
    if not rtu:  # MBAP: transaction, protocol 0, length; no CRC
        body = answer[1:-2]
        answer = struct.pack(">HHHB", 7, 0, len(body) + 1, unit) + body
    pick = rng.random()
    data = answer if pick < 0.1 else mutate(rng, answer) if pick < 0.8 else rng.randbytes(64)
    framer = FramerRTU(DecodePDU(False)) if rtu else FramerSocket(DecodePDU(False))
    classify_garbage(data, Expect(unit, fc, count), "rtu" if rtu else "socket")
    try:
        _used, pdu = framer.handleFrame(data, unit, 0 if rtu else 7)
    except EXPECTED_MODBUS_FRAMING:
        out["answer rejected"] += 1
        return
    if pdu is None:
        out["answer incomplete"] += 1
        return
    # What the link reads from an answer that decoded: registers or bits, or the error.
    if pdu.isError():
        out["exception answer"] += 1
    else:
        list(getattr(pdu, "registers", None) or getattr(pdu, "bits", None) or [])
        out["answer decoded"] += 1


def fuzz_modbus(inputs: int, seed: int = 502) -> Counter[str]:
    """`inputs` hostile inputs, in turn: an RTU answer, a TCP answer, register content."""
    rng = random.Random(seed)
    out: Counter[str] = Counter()
    content = _ModbusContent()
    quiet = logging.getLogger("pymodbus")  # it logs every frame it skips: not news here
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    steps: list[Callable[[], None]] = [
        lambda: _framing(rng, out, rtu=True),
        lambda: _framing(rng, out, rtu=False),
        lambda: content.decode(rng, out),
    ]
    try:
        for i in range(inputs):
            steps[i % 3]()
    finally:
        quiet.setLevel(level)
    return out
