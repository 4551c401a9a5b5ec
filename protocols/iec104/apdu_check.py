"""Which APDUs from a relay c104 may see: pure functions on bytes, no I/O.

c104 2.2.1 (lib60870 underneath) trusts an ASDU's variable structure qualifier: an ASDU that
declares more information objects than its bytes hold (`01 ff 03 00 05 00 01 00 00 01`:
M_SP_NA_1, SQ=1, 127 objects, one element) makes it read past the frame and the process
segfaults. `guard.py` therefore checks every frame against this module before c104 sees it:

- framing (start octet, length 4..253, the control field's kind) and the U-frame functions
  are checked; a frame that breaks them ends the connection, as lib60870 would;
- an I-frame's ASDU must be of a type c104 names whose element size is known here, hold at
  least one information object, and be exactly as long as its type, count and SQ bit say.
  One that is not is *diverted*: stored as raw data by the guard, never given to c104.

Element sizes are those of IEC 60870-5-101/104 (information element without the IOA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

APCI_START = 0x68
MAX_APDU_BODY = 253  # control field (4) + ASDU (max 249)
DUI_LEN = 6  # type id, VSQ, COT, originator address, common address (2)
IOA_LEN = 3
U_FUNCTIONS = frozenset({0x07, 0x0B, 0x13, 0x23, 0x43, 0x83})  # STARTDT/STOPDT/TESTFR act/con

# Information element size (without the IOA) of every type c104 2.2.1 names.
ELEMENT_SIZE: Mapping[int, int] = {
    1: 1, 2: 4, 3: 1, 4: 4, 5: 2, 6: 5, 7: 5, 8: 8, 9: 3, 10: 6, 11: 3, 12: 6, 13: 5,
    14: 8, 15: 5, 16: 8, 17: 6, 18: 7, 19: 7, 20: 5, 21: 2,  # monitoring, no time / CP24
    30: 8, 31: 8, 32: 9, 33: 12, 34: 10, 35: 10, 36: 12, 37: 12, 38: 10, 39: 11, 40: 11,
    45: 1, 46: 1, 47: 1, 48: 3, 49: 3, 50: 5, 51: 4,  # commands (their confirmations)
    58: 8, 59: 8, 60: 8, 61: 10, 62: 10, 63: 12, 64: 11,
    70: 1,  # end of initialisation
    100: 1, 101: 1, 102: 0, 103: 7, 104: 2, 105: 1, 106: 2, 107: 9,  # system
}  # fmt: skip
MONITORING_TYPES = frozenset(t for t in ELEMENT_SIZE if t < 45)


class FramingError(ValueError):
    """The byte stream is not IEC 104 framing: the connection must end."""


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""


OK = Verdict(True)


def frame_length(buffer: bytes | bytearray, offset: int) -> int | None:
    """Total length (start and length octets included) of the frame at `offset`, or None
    when its two header octets have not all arrived. Raises `FramingError`."""
    if len(buffer) - offset < 2:
        return None
    if buffer[offset] != APCI_START:
        raise FramingError(f"start octet 0x{buffer[offset]:02x}, expected 0x68")
    length = buffer[offset + 1]
    if not 4 <= length <= MAX_APDU_BODY:
        raise FramingError(f"APDU length {length} outside 4..{MAX_APDU_BODY}")
    return length + 2


def frame_kind(body: bytes | bytearray | memoryview) -> str:
    """ "I", "S" or "U" of an APDU body (control field first). Raises `FramingError` for
    an S- or U-frame that carries data or a U-frame with an unknown function."""
    c1 = body[0]
    if c1 & 0x01 == 0:
        return "I"
    if len(body) != 4:
        raise FramingError(f"S/U-frame of {len(body)} octets, expected 4")
    if c1 & 0x03 == 0x01:
        return "S"
    if c1 not in U_FUNCTIONS:
        raise FramingError(f"U-frame function 0x{c1:02x}")
    return "U"


def check_asdu(asdu: bytes | memoryview) -> Verdict:
    """Whether c104 may decode this ASDU: a known type, at least one object, and exactly
    the length its structure qualifier implies."""
    if len(asdu) < DUI_LEN:
        return Verdict(False, f"ASDU of {len(asdu)} octets, shorter than its unit identifier")
    size = ELEMENT_SIZE.get(asdu[0])
    if size is None:
        return Verdict(False, f"type id {asdu[0]} unknown to c104")
    count, sequence = asdu[1] & 0x7F, bool(asdu[1] & 0x80)
    if count == 0:
        return Verdict(False, "no information object (VSQ count 0)")
    expected = DUI_LEN + (IOA_LEN + count * size if sequence else count * (IOA_LEN + size))
    if len(asdu) != expected:
        sq = "SQ=1" if sequence else "SQ=0"
        return Verdict(
            False, f"{count} objects ({sq}) need {expected} octets, the ASDU has {len(asdu)}"
        )
    return OK


def first_ioa(asdu: bytes) -> int | None:
    """The first information object address, when the ASDU is long enough to hold one."""
    if len(asdu) < DUI_LEN + IOA_LEN:
        return None
    return int.from_bytes(asdu[DUI_LEN : DUI_LEN + IOA_LEN], "little")


def common_address(asdu: bytes) -> int | None:
    return int.from_bytes(asdu[4:6], "little") if len(asdu) >= DUI_LEN else None


def object_addresses(asdu: bytes) -> tuple[int, ...]:
    """The IOA of every object of a checked ASDU, in order."""
    size = ELEMENT_SIZE[asdu[0]]
    count, sequence = asdu[1] & 0x7F, bool(asdu[1] & 0x80)
    body = asdu[DUI_LEN:]
    if sequence:
        base = int.from_bytes(body[:IOA_LEN], "little")
        return tuple(base + i for i in range(count))
    step = IOA_LEN + size
    starts = range(0, count * step, step)
    return tuple(int.from_bytes(body[at : at + IOA_LEN], "little") for at in starts)
