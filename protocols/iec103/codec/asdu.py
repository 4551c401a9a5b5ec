"""ASDU encoding and decoding: the header plus one body per type, from the family modules.

`decode_asdu` raises only `DecodeError`; a type it does not know comes back as
`UnknownAsdu` (the caller counts it and still forwards it: nothing a relay says is dropped).
"""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

from construct import ConstructError

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu_base import (
    HEADER,
    HEADER_SIZE,
    PARSE_ERRORS,
    Asdu,
    UnknownAsdu,
    compiled,
    header_fields,
)
from protocols.iec103.codec.asdu_disturbance import DISTURBANCE_TYPES
from protocols.iec103.codec.asdu_generic import GENERIC_TYPES
from protocols.iec103.codec.asdu_measurands import MEASURAND_TYPES
from protocols.iec103.codec.asdu_messages import MESSAGE_TYPES
from protocols.iec103.codec.asdu_transfer import TRANSFER_TYPES

TYPES: dict[int, type[Asdu]] = {
    cls.TYPE_ID: cls
    for cls in (
        *MESSAGE_TYPES,
        *MEASURAND_TYPES,
        *GENERIC_TYPES,
        *DISTURBANCE_TYPES,
        *TRANSFER_TYPES,
    )
}

_BODIES: dict[int, Any] = {type_id: compiled(cls.BODY) for type_id, cls in TYPES.items()}


def decode_asdu(data: bytes) -> Asdu:
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"ASDU of {len(data)} octets is shorter than its header")
    header = HEADER.parse(data)
    fields = header_fields(header)
    cls = TYPES.get(header.type_id)
    if cls is None:
        return UnknownAsdu(**fields, type_id=header.type_id, payload=bytes(data[HEADER_SIZE:]))
    try:
        body = _BODIES[header.type_id].parse(data[HEADER_SIZE:], vsq=header.vsq)
    except PARSE_ERRORS as exc:
        raise DecodeError(f"ASDU {header.type_id}: {exc}") from exc
    return cls.from_body(fields, body)


def encode_asdu(asdu: Asdu) -> bytes:
    type_id = asdu.type_id if isinstance(asdu, UnknownAsdu) else asdu.TYPE_ID
    header = HEADER.build(
        {
            "type_id": type_id,
            "vsq": _vsq(asdu),
            "cot": asdu.cot,
            "common_address": asdu.common_address,
            "fun": asdu.fun,
            "inf": asdu.inf,
        }
    )
    if isinstance(asdu, UnknownAsdu):
        return bytes(header) + asdu.payload
    try:
        body = _BODIES[asdu.TYPE_ID].build(asdu.to_body(), vsq=_vsq(asdu))
    except (ConstructError, struct.error) as exc:
        raise ValueError(f"cannot encode {asdu!r}: {exc}") from exc
    return bytes(header) + bytes(body)


def _vsq(asdu: Asdu) -> int:
    # ASDU 23 counts its records in the VSQ; keep the SQ bit as given.
    records = getattr(asdu, "records", None)
    if records is not None:
        return (asdu.vsq & 0x80) | len(records)
    return asdu.vsq


def with_common_address(asdu: Asdu, common_address: int) -> Asdu:
    return replace(asdu, common_address=common_address)
