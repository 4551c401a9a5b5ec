"""FT1.2 frames of IEC 60870-5-103: fixed (`10 C A CS 16`), variable
(`68 L L 68 C A ASDU CS 16`) and the single character `E5`, plus the control field.

Pure: bytes in, frozen dataclasses out, `DecodeError` on anything malformed. The
`FrameExtractor` turns an arbitrary byte stream (a serial port delivers frames in pieces,
with line noise between them) into frames, counting and skipping what it cannot use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import Byte, Bytes, Const, ConstructError, Struct, this

from protocols.errors import DecodeError

START_FIXED = 0x10
START_VARIABLE = 0x68
END = 0x16
SINGLE_CHAR_ACK = 0xE5


class PrimaryFunction:
    """Function codes of frames from the master (PRM=1)."""

    RESET_CU = 0
    SEND_CONFIRM = 3
    SEND_NO_REPLY = 4
    RESET_FCB = 7
    REQUEST_STATUS = 9
    REQUEST_CLASS_1 = 10
    REQUEST_CLASS_2 = 11


class SecondaryFunction:
    """Function codes of frames from the relay (PRM=0)."""

    ACK = 0
    NACK = 1
    USER_DATA = 8
    NO_DATA = 9
    STATUS = 11


@dataclass(frozen=True, slots=True)
class Control:
    """The control octet. Bits 5 and 4 are FCB/FCV from the master and ACD/DFC from the
    relay, so they are stored positionally and named by properties."""

    prm: bool
    bit5: bool
    bit4: bool
    function: int
    res: bool = False  # bit 7, reserved in 103

    @classmethod
    def primary(cls, function: int, *, fcb: bool = False, fcv: bool = False) -> Control:
        return cls(True, fcb, fcv, function)

    @classmethod
    def secondary(cls, function: int, *, acd: bool = False, dfc: bool = False) -> Control:
        return cls(False, acd, dfc, function)

    @property
    def fcb(self) -> bool:
        return self.prm and self.bit5

    @property
    def fcv(self) -> bool:
        return self.prm and self.bit4

    @property
    def acd(self) -> bool:
        return not self.prm and self.bit5

    @property
    def dfc(self) -> bool:
        return not self.prm and self.bit4

    def to_byte(self) -> int:
        return (
            (0x80 if self.res else 0)
            | (0x40 if self.prm else 0)
            | (0x20 if self.bit5 else 0)
            | (0x10 if self.bit4 else 0)
            | (self.function & 0x0F)
        )

    @classmethod
    def from_byte(cls, value: int) -> Control:
        return cls(
            bool(value & 0x40),
            bool(value & 0x20),
            bool(value & 0x10),
            value & 0x0F,
            bool(value & 0x80),
        )


@dataclass(frozen=True, slots=True)
class FixedFrame:
    control: Control
    address: int


@dataclass(frozen=True, slots=True)
class VariableFrame:
    control: Control
    address: int
    asdu: bytes


@dataclass(frozen=True, slots=True)
class SingleCharFrame:
    """`E5`: a short positive acknowledgement (or "no data") without address or flags."""


Frame = FixedFrame | VariableFrame | SingleCharFrame

FIXED = Struct(
    Const(bytes([START_FIXED])),
    "control" / Byte,
    "address" / Byte,
    "checksum" / Byte,
    Const(bytes([END])),
).compile()

VARIABLE = Struct(
    Const(bytes([START_VARIABLE])),
    "length" / Byte,
    "length2" / Byte,
    Const(bytes([START_VARIABLE])),
    "control" / Byte,
    "address" / Byte,
    "asdu" / Bytes(this.length - 2),
    "checksum" / Byte,
    Const(bytes([END])),
).compile()

MAX_ASDU = 253  # L is one octet and counts C and A too


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode_frame(frame: Frame) -> bytes:
    if isinstance(frame, SingleCharFrame):
        return bytes([SINGLE_CHAR_ACK])
    c = frame.control.to_byte()
    if isinstance(frame, FixedFrame):
        return bytes(
            FIXED.build(
                {"control": c, "address": frame.address, "checksum": (c + frame.address) & 0xFF}
            )
        )
    if len(frame.asdu) > MAX_ASDU:
        raise ValueError(f"ASDU of {len(frame.asdu)} octets does not fit a frame")
    length = 2 + len(frame.asdu)
    return bytes(
        VARIABLE.build(
            {
                "length": length,
                "length2": length,
                "control": c,
                "address": frame.address,
                "asdu": frame.asdu,
                "checksum": checksum(bytes([c, frame.address]) + frame.asdu),
            }
        )
    )


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame; `DecodeError` for anything else."""
    if not data:
        raise DecodeError("empty frame")
    try:
        if data[0] == SINGLE_CHAR_ACK and len(data) == 1:
            return SingleCharFrame()
        if data[0] == START_FIXED and len(data) == 5:
            c = FIXED.parse(data)
            if c.checksum != (c.control + c.address) & 0xFF:
                raise DecodeError("fixed frame: bad checksum")
            return FixedFrame(Control.from_byte(c.control), c.address)
        if data[0] == START_VARIABLE:
            c = VARIABLE.parse(data)
            if c.length != c.length2 or c.length < 2:
                raise DecodeError(f"variable frame: bad length {c.length}/{c.length2}")
            if len(data) != c.length + 6:
                raise DecodeError("variable frame: trailing bytes")
            if c.checksum != checksum(bytes([c.control, c.address]) + c.asdu):
                raise DecodeError("variable frame: bad checksum")
            return VariableFrame(Control.from_byte(c.control), c.address, bytes(c.asdu))
    except (ConstructError, struct.error, IndexError, ValueError) as exc:
        raise DecodeError(f"frame: {exc}") from exc
    raise DecodeError(f"not a frame: {data[:8].hex(' ')}")


class FrameExtractor:
    """Incremental framing of a byte stream.

    Bytes before a start octet are garbage; a frame with a bad checksum, length or end octet
    is dropped by skipping its start octet only, so a real frame hidden behind a false start
    is still found. Counters let the link report line quality.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.bad_frames = 0  # checksum, length or end octet wrong
        self.frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return self._extract(final=False)

    def flush(self) -> list[Frame]:
        """The line went quiet: an incomplete frame at the head will never complete, so
        resync past it and return whatever complete frames follow."""
        return self._extract(final=True)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _extract(self, final: bool) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        while buf:
            start = buf[0]
            if start == SINGLE_CHAR_ACK:
                del buf[0]
                out.append(SingleCharFrame())
                continue
            if start not in (START_FIXED, START_VARIABLE):
                skip = _next_start(buf)
                self.garbage_bytes += skip
                del buf[:skip]
                continue
            size = 5 if start == START_FIXED else _variable_size(buf)
            if size is None:  # a header that cannot be a frame
                self.bad_frames += 1
                del buf[0]
                continue
            if len(buf) < size:
                if not final:
                    break
                self.garbage_bytes += 1
                del buf[0]
                continue
            try:
                frame = decode_frame(bytes(buf[:size]))
            except DecodeError:
                self.bad_frames += 1
                del buf[0]
                continue
            del buf[:size]
            self.frames += 1
            out.append(frame)
        return out


def _next_start(buf: bytearray) -> int:
    for i, b in enumerate(buf):
        if b in (START_FIXED, START_VARIABLE, SINGLE_CHAR_ACK):
            return i
    return len(buf)


def _variable_size(buf: bytearray) -> int | None:
    if len(buf) < 4:
        return 4  # wait for the header
    if buf[1] != buf[2] or buf[3] != START_VARIABLE or buf[1] < 2:
        return None
    return buf[1] + 6
