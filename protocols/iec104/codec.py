"""A relay's monitoring ASDUs as `PointObservation`s: pure functions on bytes, no I/O.

The agent decodes what a relay reports itself, from the ASDU bytes the APDU guard takes off
the wire (`guard.py`); c104 runs the session (STARTDT, TESTFR, timers, the interrogation
and clock-sync commands) and never sees the data. Three reasons:
- cost: c104 hands each information object to Python as a callback with three new objects
  (point, information, message); on a gateway with 20 busy relays that, and the GIL turns
  it costs, was the largest share of the agent's CPU per event;
- the device time: c104 2.2.1 turns a CP56Time2a into a *naive local* datetime (so the
  result depends on the process's TZ, and is ambiguous in a DST fall-back hour) and drops
  the time's flags (invalid, substituted, summer time). From the seven octets we get it
  exact to the millisecond, every flag kept, TZ-proof;
- safety: c104 segfaults on some malformed ASDUs (`apdu_check.py`); what it never decodes
  cannot crash it.

`tests/protocols/iec104/test_codec_oracle.py` holds this module to c104's own decoding of
the same bytes, every monitoring type and quality bit, over a real c104 connection.

CP56Time2a is taken as UTC (IEC 60870-5-104 practice); a relay that sends local time says so
with the summer-time flag, which we keep in `device_time_flags` rather than "fix". The
three-octet CP24Time2a of types 2-19 (minutes and milliseconds only) is not a device time.

Value mapping (documented in README.md):
- single point: bool;  double point: "off" | "on" | "intermediate" | "indeterminate";
- protection event M_EP_TA_1 / M_EP_TD_1: the event state, same four strings;
  M_EP_TB_1 / M_EP_TE_1, M_EP_TC_1 / M_EP_TF_1: True when any start / output-circuit bit
  is set, the bits by name in `details`;
- measured values (normalized, scaled, short float), counters: float / int with
  `measurement=True`; step position, bitstrings and status words: int.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import c104

from protocols.errors import DecodeError
from protocols.iec104.apdu_check import DUI_LEN, ELEMENT_SIZE, IOA_LEN, MONITORING_TYPES
from protocols.observations import Cause, PointObservation, Scalar

# Names as c104 (and so every record since the first agent) spells them.
TYPE_NAMES: Mapping[int, str] = {int(v.value): k for k, v in c104.Type.__members__.items()}
COT_NAMES: Mapping[int, str] = {int(v.value): k for k, v in c104.Cot.__members__.items()}
CP56_TYPES = frozenset(range(30, 41))
# Single and double points with a time tag, a relay's events: a few states said again and
# again, each with a new time. Their observations name a `shape` (the data unit
# identifier, the address, the value and quality octet, the time's flags), so the agent
# makes each kind of record once (agent/point_shapes.py).
SHAPED_TYPES = frozenset({30, 31})

# Quality descriptor bits (SIQ / DIQ / QDS / SEP / QDP) in observations.QUALITY_BITS order;
# which of them a type's quality octet has is `_QUALITY_MASK`.
_QUALITY_BITS = ((0x80, "IV"), (0x40, "NT"), (0x20, "SB"), (0x10, "BL"), (0x01, "OV"), (0x08, "EI"))
# A quality octet's bits as c104 names them, so records keep their meaning: QDS's spare
# 0x08 is EI and QDP's spare 0x01 is OV, as c104 reports them (spares: never filtered).
_SIQ, _QDS, _SEP = 0xF0, 0xF9, 0xF8
# Binary counter reading, sequence octet: IV, CA (adjusted), CY (carry); bits 0-4 number it.
_COUNTER_BITS = ((0x80, "IV"), (0x40, "CA"), (0x20, "CY"))
# Start events (SPE) and output circuits (OCI) of protection equipment, by IEC name.
_START_BITS = (
    (0x01, "GS"), (0x02, "SL1"), (0x04, "SL2"), (0x08, "SL3"), (0x10, "SIE"), (0x20, "SRD"),
)  # fmt: skip
_CIRCUIT_BITS = ((0x01, "GC"), (0x02, "CL1"), (0x04, "CL2"), (0x08, "CL3"))
_STATES = ("intermediate", "off", "on", "indeterminate")  # DPI and the event state ES

_CHANGE_COTS = frozenset({"SPONTANEOUS", "RETURN_INFO_REMOTE", "RETURN_INFO_LOCAL"})
_PERIODIC_COTS = frozenset({"PERIODIC", "BACKGROUND_SCAN"})


def cot_label(cot: int) -> str:
    """The cause of transmission's c104 name, or `COT_<n>` for one c104 does not name."""
    return COT_NAMES.get(cot) or f"COT_{cot}"


def cause_of(cot_name: str) -> Cause:
    """Why a 104 object was sent, from its cause of transmission: COT 20-36 (interrogated
    by station or group) answer an interrogation, COT 5 and 37-41 a read request. Return
    information (11, 12) is a change a command made."""
    if cot_name in _CHANGE_COTS:
        return "spontaneous"
    if cot_name.startswith("INTERROGATED_BY_"):
        return "interrogated"
    if cot_name == "REQUEST" or cot_name.startswith("REQUESTED_BY_"):
        return "requested"
    if cot_name in _PERIODIC_COTS:
        return "periodic"
    return "other"


@dataclass(frozen=True, slots=True)
class DeviceTime:
    at: datetime  # aware, UTC
    flags: tuple[str, ...]  # subset of ("invalid", "substituted", "summer_time")


def decode_cp56(octets: bytes) -> DeviceTime:
    """CP56Time2a (7 octets) to an aware UTC datetime plus its flags."""
    if len(octets) != 7:
        raise DecodeError(f"CP56Time2a needs 7 octets (found {len(octets)})")
    return DeviceTime(*_cp56(octets))


def _cp56(octets: bytes) -> tuple[datetime, tuple[str, ...]]:
    """`decode_cp56` of 7 octets, as (time, flags). A burst's times share their minute:
    its datetime and flags are made once (`_MINUTES`), and each time is that minute plus
    its milliseconds (two additions, not a datetime built from its seven fields)."""
    ms = octets[0] | octets[1] << 8
    if ms > 59_999:
        raise DecodeError(f"CP56Time2a {octets.hex()}: milliseconds {ms} > 59999")
    minute = octets[2:]
    known = _MINUTES.get(minute)
    if known is None:
        known = _minute(octets)
        if len(_MINUTES) >= MINUTES_LIMIT:
            _MINUTES.clear()
        _MINUTES[minute] = known
    return known[0] + _SECONDS[ms // 1000] + _MILLISECONDS[ms % 1000], known[1]


def _minute(octets: bytes) -> tuple[datetime, tuple[str, ...]]:
    try:
        at = datetime(
            2000 + (octets[6] & 0x7F),
            octets[5] & 0x0F,
            octets[4] & 0x1F,
            octets[3] & 0x1F,
            octets[2] & 0x3F,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DecodeError(f"CP56Time2a {octets.hex()}: {exc}") from None
    return at, _TIME_FLAGS[(octets[2] & 0xC0) | (octets[3] & 0x80) >> 2]


# The minutes of recent device times (their last five octets, flags included), and the
# steps within a minute: 1,060 small objects rather than a datetime per event.
_MINUTES: dict[bytes, tuple[datetime, tuple[str, ...]]] = {}
MINUTES_LIMIT = 1024
_SECONDS = tuple(timedelta(seconds=s) for s in range(60))
_MILLISECONDS = tuple(timedelta(milliseconds=ms) for ms in range(1000))


# The time's flags by their bits: IV 0x80 and SU 0x40 of the minutes octet, SU(mmer) 0x80
# of the hours octet (moved to 0x20 here).
_TIME_FLAGS: Mapping[int, tuple[str, ...]] = {
    bits: tuple(
        name
        for mask, name in ((0x80, "invalid"), (0x40, "substituted"), (0x20, "summer_time"))
        if bits & mask
    )
    for bits in range(0x100)
}


def encode_cp56(at: datetime, flags: tuple[str, ...] = ()) -> bytes:
    """The inverse of `decode_cp56` (for tests and golden frames); `at` must be aware."""
    at = at.astimezone(UTC)
    ms = at.second * 1000 + at.microsecond // 1000
    invalid = 0x80 if "invalid" in flags else 0
    substituted = 0x40 if "substituted" in flags else 0
    return bytes(
        [
            ms & 0xFF,
            ms >> 8,
            at.minute | invalid | substituted,
            at.hour | (0x80 if "summer_time" in flags else 0),
            at.day | (at.isoweekday() << 5),
            at.month,
            at.year - 2000,
        ]
    )


def _names(table: tuple[tuple[int, str], ...]) -> tuple[tuple[str, ...], ...]:
    """Every octet's set bits by name, in the table's order: a lookup per octet."""
    return tuple(tuple(name for mask, name in table if octet & mask) for octet in range(256))


_QUALITY = _names(_QUALITY_BITS)
_COUNTER = _names(_COUNTER_BITS)
_STARTS = _names(_START_BITS)
_CIRCUITS = _names(_CIRCUIT_BITS)

# (value, extra details, quality, is-a-measurement) of one information element
Decoded = tuple[Scalar, dict[str, Scalar], tuple[str, ...], bool]
_I16, _I32, _F32 = struct.Struct("<h"), struct.Struct("<i"), struct.Struct("<f")


def _single(e: bytes) -> Decoded:
    return bool(e[0] & 0x01), {}, _QUALITY[e[0] & _SIQ], False


def _double(e: bytes) -> Decoded:
    return _STATES[e[0] & 0x03], {}, _QUALITY[e[0] & _SIQ], False


def _step(e: bytes) -> Decoded:
    position = (e[0] & 0x7F) - (0x80 if e[0] & 0x40 else 0)  # I7
    return position, {"transient": bool(e[0] & 0x80)}, _QUALITY[e[1] & _QDS], False


def _bitstring(e: bytes) -> Decoded:
    # the four octets in wire order, read as one number (c104's `blob`, as records had it)
    return int.from_bytes(e[:4], "big"), {}, _QUALITY[e[4] & _QDS], False


def _normalized(e: bytes) -> Decoded:
    quality = _QUALITY[e[2] & _QDS] if len(e) > 2 else ()  # M_ME_ND_1 has no QDS
    return _I16.unpack_from(e)[0] / 32768, {}, quality, True


def _scaled(e: bytes) -> Decoded:
    return float(_I16.unpack_from(e)[0]), {}, _QUALITY[e[2] & _QDS], True


def _short(e: bytes) -> Decoded:
    return _F32.unpack_from(e)[0], {}, _QUALITY[e[4] & _QDS], True


def _counter(e: bytes) -> Decoded:
    return _I32.unpack_from(e)[0], {"sequence": e[4] & 0x1F}, _COUNTER[e[4]], True


def _event(e: bytes) -> Decoded:
    elapsed = e[1] | e[2] << 8
    return _STATES[e[0] & 0x03], {"elapsed_ms": elapsed}, _QUALITY[e[0] & _SEP], False


def _starts(e: bytes) -> Decoded:
    names = _STARTS[e[0]]
    extras: dict[str, Scalar] = {
        "start_events": ",".join(names),
        "relay_duration_ms": e[2] | e[3] << 8,
    }
    return bool(names), extras, _QUALITY[e[1] & _QDS], False


def _circuits(e: bytes) -> Decoded:
    names = _CIRCUITS[e[0]]
    extras: dict[str, Scalar] = {
        "output_circuits": ",".join(names),
        "relay_operating_ms": e[2] | e[3] << 8,
    }
    return bool(names), extras, _QUALITY[e[1] & _QDS], False


def _status(e: bytes) -> Decoded:
    changed = e[2] | e[3] << 8
    return e[0] | e[1] << 8, {"changed": changed}, _QUALITY[e[4] & _QDS], False


_FAMILIES: tuple[tuple[Callable[[bytes], Decoded], tuple[int, ...]], ...] = (
    (_single, (1, 2, 30)),
    (_double, (3, 4, 31)),
    (_step, (5, 6, 32)),
    (_bitstring, (7, 8, 33)),
    (_normalized, (9, 10, 34, 21)),
    (_scaled, (11, 12, 35)),
    (_short, (13, 14, 36)),
    (_counter, (15, 16, 37)),
    (_event, (17, 38)),
    (_starts, (18, 39)),
    (_circuits, (19, 40)),
    (_status, (20,)),
)
DECODERS: Mapping[int, Callable[[bytes], Decoded]] = {
    type_id: decode for decode, type_ids in _FAMILIES for type_id in type_ids
}
assert DECODERS.keys() == MONITORING_TYPES, "a monitoring type without a decoder"

# The details `decode_asdu` leaves when a time tag could not be read.
UNREADABLE = frozenset({"time_error"})


def _cot(octet: int) -> tuple[str, Cause, Mapping[str, Scalar]]:
    """The cause-of-transmission octet's name, cause, and the details it adds (read only)."""
    cot_name = cot_label(octet & 0x3F)
    flags: dict[str, Scalar] = {}
    if octet & 0x80:
        flags["test"] = True
    if octet & 0x40:
        flags["negative"] = True
    if cot_name.startswith("COT_"):  # a cause c104 does not name: keep its number
        flags["cot"] = octet & 0x3F
    return cot_name, cause_of(cot_name), flags


_COTS = tuple(_cot(octet) for octet in range(256))


def decode_asdu(device_id: str, own_ca: int, asdu: bytes) -> list[PointObservation]:
    """Every information object of a monitoring ASDU that passed `check_asdu`, in order.
    An object of another common address than `own_ca` is reported as "<ca>:<ioa>". A time
    tag that cannot be read leaves its reason in `details["time_error"]`: a relay's message
    is never dropped here. A shaped object's parts (all but its time) are decoded once per
    shape and shared (`_SHAPED`): a relay reports the same few states again and again."""
    type_id, vsq = asdu[0], asdu[1]
    timed, shaped = type_id in CP56_TYPES, type_id in SHAPED_TYPES
    dui = asdu[:DUI_LEN]
    head: _Head | None = None  # what all objects share, read only when one needs decoding
    out = []
    for ioa, element in _elements(asdu, vsq, ELEMENT_SIZE[type_id]):
        at = flags = shape = time_error = None
        if timed:
            try:
                at, flags = _cp56(element[-7:])
            except DecodeError as exc:
                time_error = str(exc)
        if shaped and flags is not None:
            key = (dui, ioa, element[0], own_ca)
            parts = _SHAPED.get(key)
            if parts is None:
                head = head or _head(asdu, own_ca)
                if len(_SHAPED) >= SHAPED_LIMIT:
                    _SHAPED.clear()
                parts = _SHAPED[key] = _parts(head, ioa, element, timed, time_error)
            shape = (dui, ioa, element[0], flags)
        else:
            head = head or _head(asdu, own_ca)
            parts = _parts(head, ioa, element, timed, time_error)
        address, value, quality, cause, cot_name, details, measurement = parts
        out.append(
            PointObservation(
                device_id=device_id,
                address=address,
                value=value,
                quality=quality,
                device_time=at,
                device_time_flags=flags or (),
                cause=cause,
                cause_raw=cot_name,
                details=details,
                measurement=measurement,
                shape=shape,
            )
        )
    return out


# What an ASDU's objects share: their decoder, the address prefix ("" for the device's own
# common address), type name and id, common address, the cause's details, cause and name.
_Head = tuple[Callable[[bytes], Decoded], str, str, int, int, Mapping[str, Scalar], Cause, str]
# An object's parts but its time: address, value, quality, cause, cause's name, details
# (never changed once made: shared by every observation of a shape), measurement.
_Parts = tuple[str, Scalar, tuple[str, ...], Cause, str, Mapping[str, Scalar], bool]
_SHAPED: dict[tuple[bytes, int, int, int], _Parts] = {}
SHAPED_LIMIT = 4096  # shapes kept (a gateway's relays have a few per event point)


def _head(asdu: bytes, own_ca: int) -> _Head:
    type_id, ca = asdu[0], asdu[4] | asdu[5] << 8
    cot_name, cause, flags = _COTS[asdu[2]]
    prefix = "" if ca == own_ca else f"{ca}:"
    return DECODERS[type_id], prefix, TYPE_NAMES[type_id], type_id, ca, flags, cause, cot_name


def _parts(head: _Head, ioa: int, element: bytes, timed: bool, time_error: str | None) -> _Parts:
    decode, prefix, type_name, type_id, ca, flags, cause, cot_name = head
    value, extras, quality, measurement = decode(element)
    details: dict[str, Scalar] = {
        "type": type_name, "type_id": type_id, "ioa": ioa, "common_address": ca,
        **flags, **extras,
    }  # fmt: skip
    if timed:
        if time_error is None:
            details["time_source"] = "cp56"
        else:
            details["time_error"] = time_error
    return f"{prefix}{ioa}", value, quality, cause, cot_name, details, measurement


def _elements(asdu: bytes, vsq: int, size: int) -> list[tuple[int, bytes]]:
    """(IOA, information element) of each object; SQ=1 numbers them from the first IOA."""
    if vsq == 1:  # one object, as a relay's events mostly come
        return [(asdu[6] | asdu[7] << 8 | asdu[8] << 16, asdu[DUI_LEN + IOA_LEN :])]
    count, body = vsq & 0x7F, asdu[DUI_LEN:]
    if vsq & 0x80:
        base = body[0] | body[1] << 8 | body[2] << 16
        at = IOA_LEN
        return [(base + i, body[at + i * size : at + (i + 1) * size]) for i in range(count)]
    step = IOA_LEN + size
    return [
        (body[at] | body[at + 1] << 8 | body[at + 2] << 16, body[at + IOA_LEN : at + step])
        for at in range(0, count * step, step)
    ]
