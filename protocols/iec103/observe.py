"""Decoded ASDUs to observations: pure functions, no I/O.

Addresses are `"<fun>/<inf>"`, and `"<fun>/<inf>.<n>"` for the n-th value of a measurand
ASDU. Everything the relay sent is kept: fault number and relative time of ASDU 2, the
SIN, the time tag's flags, the raw DPI when it is neither on nor off.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu_base import Asdu, UnknownAsdu, cot_name
from protocols.iec103.codec.asdu_disturbance import DisturbanceList
from protocols.iec103.codec.asdu_measurands import Measurands1, Measurands2
from protocols.iec103.codec.asdu_messages import (
    DPI_NAMES,
    FaultLocation,
    Identification,
    RelativeTimeMessage,
    TimeSync,
    TimeTaggedMessage,
    dpi_value,
)
from protocols.iec103.codec.time import Cp32Time, cp32_to_datetime, cp56_to_datetime
from protocols.observations import (
    Cause,
    IdentityObservation,
    Observation,
    PointObservation,
    Scalar,
)

INF_LOCAL_SETTING = 22  # "local parameter setting": the relay's settings changed

# Causes of transmission by what they say about the value (`protocols.observations.Cause`):
# 1 spontaneous, 11/12 the result of a local/remote operation, 9 a general interrogation's
# answer, 42 a generic read's, 2 cyclic measurands; the rest (test mode, command
# acknowledgements, ...) are "other".
_CAUSES: Mapping[int, Cause] = {
    1: "spontaneous",
    11: "spontaneous",
    12: "spontaneous",
    9: "interrogated",
    42: "requested",
    2: "periodic",
}


def cause_of(cot: int) -> Cause:
    return _CAUSES.get(cot, "other")


def observations(
    device_id: str, asdu: Asdu, now: datetime, scale: Mapping[str, float] | None = None
) -> list[Observation]:
    """The observations one ASDU yields (none for link-procedure ASDUs like 8 and 10; the
    answer to a time sync, ASDU 6, is kept: it tells whether the relay's clock is set)."""
    cause, cause_raw = cause_of(asdu.cot), cot_name(asdu.cot)
    if isinstance(asdu, TimeTaggedMessage | RelativeTimeMessage):
        details: dict[str, Scalar] = {
            "type": asdu.TYPE_ID,
            "sin": asdu.sin,
            "common_address": asdu.common_address,
        }
        if dpi_value(asdu.dpi) is None:
            details["dpi"] = DPI_NAMES.get(asdu.dpi, str(asdu.dpi))
        if isinstance(asdu, RelativeTimeMessage):
            details["fault_number"] = asdu.fault_number
            details["relative_time_ms"] = asdu.relative_time
        when, flags = _cp32(asdu.time, now)
        return [
            PointObservation(
                device_id,
                asdu.address,
                dpi_value(asdu.dpi),
                device_time=when,
                device_time_flags=flags,
                cause=cause,
                cause_raw=cause_raw,
                details=details,
            )
        ]
    if isinstance(asdu, FaultLocation):
        when, flags = _cp32(asdu.time, now)
        return [
            PointObservation(
                device_id,
                asdu.address,
                float(asdu.scl),
                device_time=when,
                device_time_flags=flags,
                cause=cause,
                cause_raw=cause_raw,
                details={
                    "type": 4,
                    "fault_number": asdu.fault_number,
                    "relative_time_ms": asdu.relative_time,
                },
            )
        ]
    if isinstance(asdu, Measurands1 | Measurands2):
        out: list[Observation] = []
        for i, m in enumerate(asdu.values, 1):
            address = f"{asdu.address}.{i}"
            factor = (scale or {}).get(address, 1.0)
            out.append(
                PointObservation(
                    device_id,
                    address,
                    m.value * factor,
                    quality=m.quality,
                    device_time=None,
                    cause=cause,
                    cause_raw=cause_raw,
                    details={"type": asdu.TYPE_ID},
                    measurement=True,
                )
            )
        return out
    if isinstance(asdu, Identification):
        return [identity(device_id, asdu)]
    if isinstance(asdu, UnknownAsdu):
        return [
            PointObservation(
                device_id,
                asdu.address,
                None,
                cause=cause,
                cause_raw=cause_raw,
                details={"type": asdu.type_id, "unknown_asdu": True, "raw": asdu.payload.hex()},
            )
        ]
    if isinstance(asdu, TimeSync):
        return [time_sync_answer(device_id, asdu)]
    return []


def time_sync_answer(device_id: str, asdu: TimeSync) -> PointObservation:
    """A relay answers a time sync with its clock (COT time_sync): the center's clock
    quality reads from it whether the relay took the sync (IV clear) and how far off it
    is. Its value says the relay's clock is valid."""
    flags = asdu.time.flags
    try:
        when: datetime | None = cp56_to_datetime(asdu.time)
    except DecodeError:
        when, flags = None, (*flags, "invalid") if "invalid" not in flags else flags
    return PointObservation(
        device_id,
        asdu.address,
        "invalid" not in flags,
        device_time=when,
        device_time_flags=flags,
        cause=cause_of(asdu.cot),
        cause_raw=cot_name(asdu.cot),
        details={"type": asdu.TYPE_ID},
    )


def identity(device_id: str, asdu: Identification) -> IdentityObservation:
    # The COT (reset, restart, power-on) is left out: it changes, the identity does not.
    return IdentityObservation(
        device_id,
        manufacturer=asdu.manufacturer_text,
        firmware_version=asdu.software_text,
        details={
            "compatibility": asdu.col,
            "software_id_hex": asdu.software.hex(),
            "fun": asdu.fun,
        },
    )


def disturbance_observations(
    device_id: str, asdu: DisturbanceList, known: set[int]
) -> list[Observation]:
    """One event per fault number not in `known`: "disturbance record N available"."""
    out: list[Observation] = []
    for record in asdu.records:
        if record.fault_number in known:
            continue
        try:
            when: datetime | None = cp56_to_datetime(record.time)
        except DecodeError:
            when = None
        out.append(
            PointObservation(
                device_id,
                asdu.address,
                f"disturbance record {record.fault_number} available",
                raised=True,  # the text is no on/off value: the announcement is an occurrence
                device_time=when,
                device_time_flags=record.time.flags,
                cause=cause_of(asdu.cot),
                cause_raw=cot_name(asdu.cot),
                details={
                    "type": 23,
                    "fault_number": record.fault_number,
                    "trip": record.trip,
                    "transmitted": record.transmitted,
                    "test": record.test,
                    "other_event": record.other_event,
                },
            )
        )
    return out


def undecodable(device_id: str, asdu: bytes, reason: str) -> PointObservation:
    """A well-framed but malformed ASDU: forwarded raw rather than lost."""
    address = f"{asdu[4]}/{asdu[5]}" if len(asdu) >= 6 else "0/0"
    return PointObservation(
        device_id,
        address,
        None,
        details={"undecodable": True, "raw": asdu.hex(), "reason": reason[:200]},
    )


def _cp32(t: Cp32Time, now: datetime) -> tuple[datetime | None, tuple[str, ...]]:
    try:
        return cp32_to_datetime(t, now), t.flags
    except DecodeError:
        return None, (*t.flags, "invalid") if "invalid" not in t.flags else t.flags
