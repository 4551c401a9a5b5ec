"""The contract between substation and service center: records, topics and their encoding.

Every MQTT message carries one envelope, `{"v": 1, "records": [...]}`, holding one or more
records of one topic. Every record carries its stable id (`gateway_id`, `session`, `seq`),
`site`, `gateway_id`, `device_id` and `kind`. The center imports this module and validates
every payload against it.

Record ids: `session` is the agent's process generation (persisted, +1 per start); `seq`
counts records within a session from 1. Both are assigned when the record enters the
outbox and never change, so a record re-sent after a crash carries the same id.
Lifecycle records (`birth`, `death`, `health`) are not in the outbox: their `seq` is the
highest seq assigned so far, and their identity is (gateway, session, kind, connection).

The contract is written in three modules, and read through this one: the records
(`gateway/wire_records.py`), the acknowledgements (`gateway/wire_acks.py`), and here the
envelope, the topics and the encoding. Every name of the other two is re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.wire_acks import (
    ACK_ROOT,
    Ack,
    AckChunk,
    AckRange,
    ack_topic,
    decode_ack,
    ranges_of,
)
from gateway.wire_records import (
    ASKED_CAUSES,
    CAUSES,
    LIFECYCLE_KINDS,
    MAX_PAYLOAD_BYTES,
    RECORD_KINDS,
    TOPIC_SAFE,
    Alarm,
    Audit,
    Birth,
    Cause,
    CauseField,
    Death,
    DeviceInventory,
    DisturbanceChunk,
    DisturbanceRecord,
    Event,
    FaultReport,
    FirmwareReport,
    Health,
    HealthInterval,
    Measurement,
    MeasurementSet,
    Phase,
    Record,
    Scalar,
    SettingCategory,
    SettingChange,
    SettingEntry,
    SettingsSnapshot,
    Severity,
    Signal,
    WireError,
    WireTime,
    legacy_cause,
    value_raised,
)

__all__ = [
    "ACK_ROOT",
    "ASKED_CAUSES",
    "BATCH_KIND",
    "CAUSES",
    "CENTER_STATE_TOPIC",
    "ENVELOPE_OVERHEAD_BYTES",
    "LIFECYCLE_KINDS",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECORDS_PER_MESSAGE",
    "MAX_RECORD_BODY_BYTES",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "STAMP_OVERHEAD_BYTES",
    "TOPIC_ROOT",
    "TOPIC_SAFE",
    "Ack",
    "AckChunk",
    "AckRange",
    "Alarm",
    "Audit",
    "Birth",
    "Cause",
    "CauseField",
    "Death",
    "DeviceInventory",
    "DisturbanceChunk",
    "DisturbanceRecord",
    "Envelope",
    "Event",
    "FaultReport",
    "FirmwareReport",
    "Health",
    "HealthInterval",
    "Measurement",
    "MeasurementSet",
    "Phase",
    "Record",
    "Scalar",
    "SettingCategory",
    "SettingChange",
    "SettingEntry",
    "SettingsSnapshot",
    "Severity",
    "Signal",
    "WireError",
    "WireTime",
    "ack_topic",
    "decode_ack",
    "decode_envelope",
    "dumps_schema",
    "encode_body",
    "encode_envelope",
    "encode_records",
    "json_schema",
    "legacy_cause",
    "parse_topic",
    "ranges_of",
    "stamp",
    "topic",
    "utcnow",
    "value_raised",
]

SCHEMA_VERSION = 1
TOPIC_ROOT = "relay/v1"
MAX_RECORDS_PER_MESSAGE = 10_000
CENTER_STATE_TOPIC = f"{TOPIC_ROOT}/center/state"

# `relay/v1/{site}/{gateway}/batch` carries records of several kinds and devices in one
# message: under a steady trickle from many devices, one message per device topic would
# cost one publish (~300 µs CPU) per record or two.
BATCH_KIND = "batch"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1]
    records: list[Record] = Field(min_length=1, max_length=MAX_RECORDS_PER_MESSAGE)


# What one stamped record adds around its outbox body inside a one-record envelope, with
# session and seq at their widest (20 digits each): `{"v":1,"records":[` … `]}` and
# `"session":…,"seq":…,`. A body up to MAX_RECORD_BODY_BYTES always fits in a message.
ENVELOPE_OVERHEAD_BYTES = len(b'{"v":1,"records":[]}')
STAMP_OVERHEAD_BYTES = len(b'"session":,"seq":,') + 2 * 20
MAX_RECORD_BODY_BYTES = MAX_PAYLOAD_BYTES - ENVELOPE_OVERHEAD_BYTES - STAMP_OVERHEAD_BYTES


_envelope = TypeAdapter(Envelope)


def utcnow() -> datetime:
    return datetime.now(UTC)


def topic(site: str, gateway_id: str, kind: str, device_id: str | None = None) -> str:
    base = f"{TOPIC_ROOT}/{site}/{gateway_id}/{kind}"
    return f"{base}/{device_id}" if device_id else base


def parse_topic(name: str) -> tuple[str, str, str, str | None]:
    """`relay/v1/{site}/{gateway}/{kind}[/{device}]` (or `…/batch`) to its parts; raises
    WireError."""
    parts = name.split("/")
    if len(parts) not in (5, 6) or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireError(f"not a record topic: {name!r}")
    site, gateway_id, kind = parts[2], parts[3], parts[4]
    if kind == BATCH_KIND and len(parts) == 5:
        return site, gateway_id, kind, None
    if kind not in RECORD_KINDS:
        raise WireError(f"unknown record kind in topic: {kind!r}")
    return site, gateway_id, kind, parts[5] if len(parts) == 6 else None


def encode_body(record: BaseModel) -> bytes:
    """A record as JSON *without* its session and seq, as the outbox stores it."""
    return record.model_dump_json(exclude={"session", "seq"}).encode()


def stamp(body: bytes, session: int, seq: int) -> bytes:
    """Give an outbox body its id. Cheap: splices the two fields in front."""
    return b'{"session":%d,"seq":%d,%s' % (session, seq, body[1:])


def encode_envelope(stamped_records: list[bytes]) -> bytes:
    return b'{"v":%d,"records":[%s]}' % (SCHEMA_VERSION, b",".join(stamped_records))


def encode_records(records: Sequence[BaseModel]) -> bytes:
    """For records that do not pass through the outbox (birth, death, health)."""
    return encode_envelope([r.model_dump_json().encode() for r in records])


def decode_envelope(payload: bytes) -> list[Record]:
    """Validate a payload; raises WireError naming what is wrong."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return list(_envelope.validate_json(payload).records)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WireError(f"{where}: {first['msg']} ({exc.error_count()} errors)") from None


def json_schema() -> dict[str, Any]:
    """The envelope's JSON schema, for docs and for other implementations."""
    schema: dict[str, Any] = _envelope.json_schema()
    return schema


def dumps_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True)
