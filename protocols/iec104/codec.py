"""c104 information objects to `PointObservation` fields: pure functions, no I/O.

Why the device time is decoded from the ASDU bytes rather than from c104's `recorded_at`:
c104 2.2.1 turns the CP56Time2a into a *naive local* datetime (so the result depends on the
process's TZ, and is ambiguous in a DST fall-back hour) and drops the time's flags
(invalid, substituted, summer time). The ASDU as received (kept by the APDU guard,
`asdu_source.py`) carries them, so we read the seven CP56 octets ourselves: exact to the
millisecond, every flag kept, TZ-proof. `recorded_at` is only a fallback when the element
cannot be found in the bytes.

CP56Time2a is taken as UTC (IEC 60870-5-104 practice); a relay that sends local time says so
with the summer-time flag, which we keep in `device_time_flags` rather than "fix".

Value mapping (documented in README.md):
- single point: bool;  double point: "off" | "on" | "intermediate" | "indeterminate";
- protection event M_EP_TD_1: the event state, same four strings; M_EP_TE_1 / M_EP_TF_1:
  True when any start / output-circuit bit is set, the bits by name in `details`;
- measured values (normalized, scaled, short float), counters: float / int with
  `measurement=True`; step position and bitstrings: int.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import c104

from protocols.errors import DecodeError
from protocols.observations import Cause, PointObservation, Scalar

# Quality descriptor bits (QDS / SIQ / DIQ / SEP / QDP), in observations.QUALITY_BITS order.
_QUALITY_BITS = ((0x80, "IV"), (0x40, "NT"), (0x20, "SB"), (0x10, "BL"), (0x01, "OV"), (0x08, "EI"))
# Binary counter reading sequence byte: IV, CY (carry), CA (adjusted).
_COUNTER_BITS = ((0x80, "IV"), (0x20, "CA"), (0x40, "CY"))
# Start events of M_EP_TE_1 (SPE) and output circuits of M_EP_TF_1 (OCI), by IEC name.
_START_BITS = (
    (0x01, "GS"), (0x02, "SL1"), (0x04, "SL2"), (0x08, "SL3"), (0x10, "SIE"), (0x20, "SRD"),
)  # fmt: skip
_CIRCUIT_BITS = ((0x01, "GC"), (0x02, "CL1"), (0x04, "CL2"), (0x08, "CL3"))

# Information element size (without the 3-octet IOA) of the monitoring types, by type id.
ELEMENT_SIZE: Mapping[int, int] = {
    1: 1, 3: 1, 5: 2, 7: 5, 9: 3, 11: 3, 13: 5, 15: 5, 20: 5, 21: 2,  # no time
    30: 8, 31: 8, 32: 9, 33: 12, 34: 10, 35: 10, 36: 12, 37: 12,  # CP56Time2a
    38: 10, 39: 11, 40: 11,  # protection equipment events, CP56Time2a
}  # fmt: skip
CP56_TYPES = frozenset(t for t in ELEMENT_SIZE if t >= 30)

# c104's enum `__members__` builds a new dict on every access: look type ids up once.
TYPE_IDS: Mapping[str, int] = {name: int(t.value) for name, t in c104.Type.__members__.items()}

_APCI_LEN = 6  # 0x68, length, four control octets
_DUI_LEN = 6  # type id, VSQ, COT, originator address, common address (2)
_IOA_LEN = 3


# Causes of transmission (c104's `Cot` names) by what they say about the value; see
# `protocols.observations.Cause`. Return information (11, 12) is a change a command made.
_CHANGE_COTS = frozenset({"SPONTANEOUS", "RETURN_INFO_REMOTE", "RETURN_INFO_LOCAL"})
_PERIODIC_COTS = frozenset({"PERIODIC", "BACKGROUND_SCAN"})


def cause_of(cot_name: str) -> Cause:
    """Why a 104 object was sent, from its cause of transmission: COT 20-36 (interrogated
    by station or group) answer an interrogation, COT 5 and 37-41 a read request."""
    cause = _CAUSES.get(cot_name)
    if cause is None:
        cause = _cause_of(cot_name)
        if len(_CAUSES) < 256:
            _CAUSES[cot_name] = cause
    return cause


_CAUSES: dict[str, Cause] = {}


def _cause_of(cot_name: str) -> Cause:
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


_ENUM_NAMES: dict[type, dict[Any, str]] = {}


def enum_name(value: Any) -> str:
    """The name of a c104 (pybind11) enum value (`DecodeError` for one it does not name).
    Its `.name` costs ~50 µs (measured; it
    rebuilds the member table per call), on the receive thread for every point."""
    cls = type(value)
    names = _ENUM_NAMES.get(cls)
    if names is None:
        names = _ENUM_NAMES[cls] = {v: k for k, v in cls.__members__.items()}
    name = names.get(value)
    if name is None:  # c104 passes on values its enum does not name (a 3-bit event state)
        raise DecodeError(f"{cls.__name__} value {value.value} has no name")
    return name


def quality_names(quality: c104.Quality | c104.BinaryCounterQuality | None) -> tuple[str, ...]:
    """Every quality bit set, by its IEC name; never filtered."""
    if quality is None:
        return ()
    counter = isinstance(quality, c104.BinaryCounterQuality)
    bits = int(quality.value)
    names = _QUALITY_NAMES.get((counter, bits))
    if names is None:
        names = _bit_names(bits, _COUNTER_BITS if counter else _QUALITY_BITS)
        if len(_QUALITY_NAMES) < 1024:
            _QUALITY_NAMES[counter, bits] = names
    return names


_QUALITY_NAMES: dict[tuple[bool, int], tuple[str, ...]] = {}


def decode_cp56(octets: bytes) -> DeviceTime:
    """CP56Time2a (7 octets) to an aware UTC datetime plus its flags."""
    if len(octets) != 7:
        raise DecodeError(f"CP56Time2a needs 7 octets (found {len(octets)})")
    ms = octets[0] | octets[1] << 8
    if ms > 59_999:
        raise DecodeError(f"CP56Time2a {octets.hex()}: milliseconds {ms} > 59999")
    try:
        at = datetime(
            2000 + (octets[6] & 0x7F),
            octets[5] & 0x0F,
            octets[4] & 0x1F,
            octets[3] & 0x1F,
            octets[2] & 0x3F,
            ms // 1000,
            ms % 1000 * 1000,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DecodeError(f"CP56Time2a {octets.hex()}: {exc}") from None
    return DeviceTime(at, _TIME_FLAGS[(octets[2] & 0xC0) | (octets[3] & 0x80) >> 2])


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


def find_element(raw: bytes, io_address: int) -> bytes | None:
    """The information element (without IOA) of `io_address` in an ASDU (with or without
    its APCI), or None. If an ASDU repeats an IOA, the first occurrence wins."""
    asdu = raw[_APCI_LEN:] if len(raw) > 1 and raw[0] == 0x68 and raw[1] == len(raw) - 2 else raw
    if len(asdu) < _DUI_LEN:
        return None
    size = ELEMENT_SIZE.get(asdu[0])
    if size is None:
        return None
    count, sequence = asdu[1] & 0x7F, bool(asdu[1] & 0x80)
    body = asdu[_DUI_LEN:]
    if sequence:
        base = int.from_bytes(body[:_IOA_LEN], "little")
        index = io_address - base
        start = _IOA_LEN + index * size
        if 0 <= index < count and start + size <= len(body):
            return body[start : start + size]
        return None
    step = _IOA_LEN + size
    for i in range(count):
        obj = body[i * step : (i + 1) * step]
        if len(obj) < step:
            return None
        if int.from_bytes(obj[:_IOA_LEN], "little") == io_address:
            return obj[_IOA_LEN:]
    return None


def device_time(
    type_id: int, io_address: int, raw: bytes | None, info: c104.Information
) -> tuple[DeviceTime | None, str | None]:
    """The element's device time and where it came from ("cp56" or "c104_local")."""
    if type_id not in CP56_TYPES:
        return None, None
    element = find_element(raw, io_address) if raw else None
    if element is not None:
        return decode_cp56(element[-7:]), "cp56"
    recorded_at = info.recorded_at
    if recorded_at is None:
        return None, None
    # c104 gives naive local time; astimezone() on a naive datetime reads it as local.
    return DeviceTime(recorded_at.astimezone(UTC), ()), "c104_local"


def point_value(info: c104.Information) -> tuple[Scalar, dict[str, Scalar], bool]:
    """(value, extra details, is-a-measurement) of one information object."""
    if isinstance(info, c104.SingleInfo):
        return bool(info.on), {}, False
    if isinstance(info, c104.DoubleInfo):
        return enum_name(info.state).lower(), {}, False
    if isinstance(info, c104.ProtectionEventInfo):
        return enum_name(info.state).lower(), {"elapsed_ms": int(info.elapsed_ms)}, False
    if isinstance(info, c104.ProtectionStartInfo):
        names = _bit_names(int(info.events.value), _START_BITS)
        extras: dict[str, Scalar] = {
            "start_events": ",".join(names),
            "relay_duration_ms": int(info.relay_duration_ms),
        }
        return bool(names), extras, False
    if isinstance(info, c104.ProtectionCircuitInfo):
        names = _bit_names(int(info.circuits.value), _CIRCUIT_BITS)
        extras = {
            "output_circuits": ",".join(names),
            "relay_operating_ms": int(info.relay_operating_ms),
        }
        return bool(names), extras, False
    if isinstance(info, c104.ShortInfo):
        return float(info.actual), {}, True
    if isinstance(info, c104.NormalizedInfo | c104.ScaledInfo):
        return _number(info.actual), {}, True
    if isinstance(info, c104.BinaryCounterInfo):
        return int(info.counter), {"sequence": int(_number(info.sequence))}, True
    if isinstance(info, c104.StepInfo):
        return int(_number(info.position)), {"transient": bool(info.transient)}, False
    if isinstance(info, c104.BinaryInfo):
        return int.from_bytes(bytes(info.blob), "big"), {}, False
    if isinstance(info, c104.StatusAndChanged):
        return int(info.status.value), {"changed": int(info.changed.value)}, False
    raise DecodeError(f"unsupported information object {type(info).__name__}")


# The details `to_observation` leaves when a value or time tag could not be read.
UNREADABLE = frozenset({"decode_error", "time_error"})


def to_observation(
    device_id: str,
    address: str,
    *,
    io_address: int,
    common_address: int,
    type_name: str,
    cot_name: str,
    info: c104.Information,
    raw: bytes | None,
    flags: Mapping[str, Any] | None = None,
) -> PointObservation:
    """One received information object as an observation, everything kept.

    A value this module cannot map still becomes an observation (value None, the reason
    in `details["decode_error"]`): a relay's message is never dropped here.
    """
    type_id = TYPE_IDS[type_name]
    details: dict[str, Scalar] = {
        "type": type_name,
        "type_id": type_id,
        "ioa": io_address,
        "common_address": common_address,
    }
    for key, value in (flags or {}).items():
        if value:
            details[key] = value
    try:
        value, extras, measurement = point_value(info)
        details.update(extras)
    except DecodeError as exc:
        value, measurement = None, False
        details["decode_error"] = str(exc)
    when: DeviceTime | None = None
    try:
        when, source = device_time(type_id, io_address, raw, info)
        if source is not None:
            details["time_source"] = source
    except DecodeError as exc:
        details["time_error"] = str(exc)
    return PointObservation(
        device_id=device_id,
        address=address,
        value=value,
        quality=quality_names(info.quality),
        device_time=when.at if when else None,
        device_time_flags=when.flags if when else (),
        cause=cause_of(cot_name),
        cause_raw=cot_name,
        details=details,
        measurement=measurement,
    )


def _number(wrapped: Any) -> float:
    """c104's fixed-width number wrappers (Int16, NormalizedFloat, UInt5, Int7) convert with
    float(), which their stubs do not declare."""
    return float(wrapped)


def _bit_names(bits: int, table: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
    return tuple(name for mask, name in table if bits & mask)
