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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from common.config import ID_PATTERN

SCHEMA_VERSION = 1
TOPIC_ROOT = "relay/v1"
# The one size limit of a message, for both sides: the center rejects anything larger,
# the agent packs its messages under it and refuses, at creation, a record that alone
# would not fit (see `MAX_RECORD_BODY_BYTES`).
MAX_PAYLOAD_BYTES = 1_048_576
MAX_RECORDS_PER_MESSAGE = 10_000
CENTER_STATE_TOPIC = f"{TOPIC_ROOT}/center/state"
# End-to-end acknowledgements, center to gateway, outside `relay/v1/#` so that ingest (and
# every collector of records) never sees them: `relay-ack/v1/{site}/{gateway_id}`.
ACK_ROOT = "relay-ack/v1"

Scalar = bool | int | float | str | None
Severity = Literal["critical", "major", "minor", "info"]
Signal = Literal["trip", "start", "alarm", "status", "self_check", "measurement", "unknown"]
Phase = Literal["A", "B", "C", "N", "AB", "BC", "CA", "ABC"]
TOPIC_SAFE = ID_PATTERN  # every id the agent configures goes into topics as it is

# Why a device reported a value, in one vocabulary for every protocol (docs/wire.md); the
# protocol's own cause of transmission travels beside it in `cause_raw`.
Cause = Literal["spontaneous", "interrogated", "requested", "periodic", "other"]
CAUSES: frozenset[str] = frozenset(get_args(Cause))
# A state reported because someone asked (an interrogation, a read request) says how things
# are, not that something happened: the center never makes it part of an incident.
ASKED_CAUSES: frozenset[str] = frozenset({"interrogated", "requested"})


class WireError(ValueError):
    """A payload that is not a valid envelope of known records."""


def _expressible_in_utc(at: datetime) -> datetime:
    """Year 0001 at +05:00 or 9999-12-31 at -05:00 parse, but name no instant a datetime
    can hold in UTC: refused here, before anything compares or stores them."""
    try:
        at.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is outside the range expressible in UTC") from None
    return at


# Every time on the wire carries its UTC offset: a naive time would be read in whatever
# zone the reader assumes (the agent always sends aware UTC times).
WireTime = Annotated[AwareDatetime, AfterValidator(_expressible_in_utc)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str = Field(pattern=TOPIC_SAFE)
    gateway_id: str = Field(pattern=TOPIC_SAFE)
    device_id: str | None = Field(default=None, pattern=TOPIC_SAFE)
    session: int = Field(ge=0)
    seq: int = Field(ge=0)
    gateway_time: WireTime  # when the agent made the record (UTC)

    @property
    def record_id(self) -> tuple[str, int, int]:
        return (self.gateway_id, self.session, self.seq)


def legacy_cause(raw: str) -> Cause:
    """What a cause of transmission sent by an agent that predates `cause_raw` means: those
    put the protocol's own name in `cause` (IEC 104 `INTERROGATED_BY_STATION`, IEC 103
    `general_interrogation`, Modbus `event_log`, ...)."""
    name = raw.lower()
    if name in _LEGACY_CHANGES:
        return "spontaneous"
    if name.startswith("interrogated") or name == "general_interrogation":
        return "interrogated"
    if name in ("request", "generic_read") or name.startswith("requested_by"):
        return "requested"
    if name in ("periodic", "cyclic", "background_scan"):
        return "periodic"
    return "other"


_LEGACY_CHANGES = frozenset(
    {"spontaneous", "event_log", "return_info_remote", "return_info_local",
     "local_operation", "remote_operation"}
)  # fmt: skip


# `cause` is validated as any string, so that a record of an older agent (the protocol's own
# name in `cause`, no `cause_raw`) is accepted; `_Reported` then reads it into the
# vocabulary. The schema lists the vocabulary. (A "before" model validator would do the
# same at twice the cost of validating an event.)
CauseField = Annotated[str | None, WithJsonSchema(TypeAdapter(Cause | None).json_schema())]


class _Reported(_Record):
    """A record of a value a device reported, with why it reported it (`cause`)."""

    if TYPE_CHECKING:
        cause: str | None
        cause_raw: str | None

    @model_validator(mode="after")
    def _read_legacy_cause(self) -> Self:
        cause = self.cause
        if cause is None or cause in CAUSES:
            return self
        if self.cause_raw is not None:
            raise ValueError(f"cause: expected one of {sorted(CAUSES)} (found: {cause!r})")
        # Still inside validation: no one holds the (frozen) record yet.
        object.__setattr__(self, "cause_raw", cause)
        object.__setattr__(self, "cause", legacy_cause(cause))
        self.__pydantic_fields_set__.add("cause_raw")
        return self


class Event(_Reported):
    """A value of a device's point that is not a measurand: a trip, start, alarm, status or
    self-check, reported as it changed or as found when asked (see `cause`)."""

    kind: Literal["event"] = "event"
    address: str
    point: str | None = None  # profile point name; None when the profile does not know it
    label: str | None = None
    signal: Signal = "unknown"
    severity: Severity = "info"
    phase: Phase | None = None
    value: Scalar = None
    quality: list[str] = Field(default_factory=list)  # as received: IV, NT, SB, BL, OV, ...
    device_time: WireTime | None = None
    device_time_flags: list[str] = Field(default_factory=list)  # invalid, substituted, summer_time
    cause: CauseField = None  # a `Cause`; None: the agent did not say (taken as a change)
    cause_raw: str | None = None  # the protocol's cause of transmission, as received
    details: dict[str, Scalar] = Field(default_factory=dict)
    # The profile's reading of `value`: True when the condition the point names is active.
    # It differs from the value's truth for inverted points ("healthy" on = self-check ok).
    raised: bool | None = None

    @property
    def active(self) -> bool:
        """`raised` when the agent gave it, else the value's truth (older agents)."""
        return self.raised if self.raised is not None else value_raised(self.value)

    @property
    def asked(self) -> bool:
        """Reported because someone asked (interrogated, requested): a state, not a change."""
        return self.cause in ASKED_CAUSES


_ON = frozenset({"on", "true", "1", "raised", "yes", "active", "set", "trip", "alarm"})


def value_raised(value: Scalar) -> bool:
    """A point's value as raised (True) or cleared (False). No value means raised."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return value.strip().lower() in _ON


class Measurement(_Reported):
    """Periodic telemetry. The first thing the outbox evicts when it is full."""

    kind: Literal["measurement"] = "measurement"
    address: str
    point: str | None = None
    value: Scalar = None
    unit: str | None = None
    quality: list[str] = Field(default_factory=list)
    device_time: WireTime | None = None
    device_time_flags: list[str] = Field(default_factory=list)
    cause: CauseField = None
    cause_raw: str | None = None


class Alarm(_Record):
    """An agent-derived condition: comms lost/restored, events lost, outbox near cap, …"""

    kind: Literal["alarm"] = "alarm"
    code: str
    state: Literal["raised", "cleared"]
    severity: Severity = "major"
    message: str
    details: dict[str, Scalar] = Field(default_factory=dict)


class FirmwareReport(_Record):
    kind: Literal["firmware"] = "firmware"
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware_version: str | None = None
    checksum: str | None = None
    hash: str  # of the canonical identity content; reports are sent only when it changes
    details: dict[str, Scalar] = Field(default_factory=dict)


# How a change of a setting weighs, from the device profile's settings metadata: protection
# (pickups, time delays, enabled functions) or benign (labels, comms parameters); None when
# the profile does not list the setting (the center then treats it as protection).
SettingCategory = Literal["protection", "benign"]


class SettingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: Scalar
    unit: str | None = None
    group: str | None = None
    category: SettingCategory | None = None  # metadata: not part of the snapshot's hash


class SettingChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    before: Scalar = None
    after: Scalar = None
    change: Literal["added", "removed", "changed"]
    category: SettingCategory | None = None


class SettingsSnapshot(_Record):
    kind: Literal["settings"] = "settings"
    settings: dict[str, SettingEntry]
    hash: str
    previous_hash: str | None = None
    diff: list[SettingChange] = Field(default_factory=list)
    reason: str = "periodic"  # connect, periodic, device_signalled, on_demand


class DeviceInventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    device_id: str
    protocol: str
    profile: str
    firmware_hash: str | None = None
    settings_hash: str | None = None


# How often the agent publishes health records: the center finds a gateway silent when
# several intervals pass with nothing heard. None from agents that predate it.
HealthInterval = Annotated[float | None, Field(default=None, gt=0)]


class Birth(_Record):
    kind: Literal["birth"] = "birth"
    connection: int = Field(ge=1)
    agent_version: str
    devices: list[DeviceInventory] = Field(default_factory=list)
    outbox_depth: int = 0
    health_interval_s: HealthInterval = None


class Death(_Record):
    kind: Literal["death"] = "death"
    connection: int = Field(ge=1)
    reason: Literal["will", "shutdown"] = "will"


class Health(_Record):
    kind: Literal["health"] = "health"
    connection: int = Field(ge=1)
    outbox_depth: int = 0
    outbox_oldest_age_s: float = 0.0
    links: dict[str, bool] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)
    health_interval_s: HealthInterval = None


class Audit(_Record):
    """An engineer's on-demand request, local or remote: who, what, when, result."""

    kind: Literal["audit"] = "audit"
    actor: str
    origin: Literal["local", "remote"]
    action: str
    what: str | None = None
    result: Literal["ok", "error", "refused"]
    error: str | None = None


class DisturbanceRecord(_Record):
    """A disturbance record's manifest: what the `disturbance_chunk` records that follow it
    carry (a COMTRADE `.cfg` then `.dat`, concatenated) and how to check them."""

    kind: Literal["disturbance"] = "disturbance"
    fault_number: int = Field(ge=0)
    trigger_time: WireTime
    first_sample_time: WireTime
    sample_rate_hz: float = Field(gt=0)
    samples: int = Field(ge=0)
    analog_channels: list[str] = Field(default_factory=list)
    digital_channels: list[str] = Field(default_factory=list)
    format: Literal["comtrade-2013-binary"] = "comtrade-2013-binary"
    cfg_bytes: int = Field(ge=1)
    dat_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of cfg + dat
    chunks: int = Field(ge=1)
    details: dict[str, Scalar] = Field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.cfg_bytes + self.dat_bytes


class DisturbanceChunk(_Record):
    """One part of a disturbance record's content, in order from index 0. It carries its
    manifest's `session` and `seq` (the record it belongs to), not ids of its own."""

    kind: Literal["disturbance_chunk"] = "disturbance_chunk"
    index: int = Field(ge=0)
    data: str = Field(max_length=MAX_PAYLOAD_BYTES)  # base64 (RFC 4648, no line breaks)


class FaultReport(_Record):
    """A relay's own fault report (e.g. a Modbus register block), without waveforms."""

    kind: Literal["fault_report"] = "fault_report"
    fault_time: WireTime | None = None
    fault_type: str | None = None
    phases: list[Literal["A", "B", "C", "N"]] = Field(default_factory=list)
    distance_km: float | None = None
    trip_time_ms: float | None = None
    currents_a: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Scalar] = Field(default_factory=dict)


Record = Annotated[
    Event
    | Measurement
    | Alarm
    | FirmwareReport
    | SettingsSnapshot
    | Birth
    | Death
    | Health
    | Audit
    | DisturbanceRecord
    | DisturbanceChunk
    | FaultReport,
    Field(discriminator="kind"),
]
RECORD_KINDS = (
    "event",
    "measurement",
    "alarm",
    "firmware",
    "settings",
    "birth",
    "death",
    "health",
    "audit",
    "disturbance",
    "disturbance_chunk",
    "fault_report",
)
# Published directly, not from the outbox: never acknowledged end to end.
LIFECYCLE_KINDS = frozenset({"birth", "death", "health"})


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


class AckRange(BaseModel):
    """Records `first`..`last` (inclusive) of one agent session."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session: int = Field(ge=0)
    first: int = Field(ge=0)
    last: int = Field(ge=0)


class AckChunk(BaseModel):
    """Part `index` of the disturbance record with id (session, seq)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session: int = Field(ge=0)
    seq: int = Field(ge=0)
    index: int = Field(ge=0)


class Ack(BaseModel):
    """The center's end-to-end acknowledgement, published at QoS 1 to the gateway's
    `ack_topic` after the commit that stored (or kept as rejected) the records it names.
    The agent deletes a record from its outbox only on this, never on the broker's PUBACK:
    a broker that dies with its queue then costs nothing but a re-send."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    site: str = Field(pattern=TOPIC_SAFE)
    gateway_id: str = Field(pattern=TOPIC_SAFE)
    ranges: list[AckRange] = Field(default_factory=list)
    chunks: list[AckChunk] = Field(default_factory=list)


_ack = TypeAdapter(Ack)


def ack_topic(site: str, gateway_id: str) -> str:
    return f"{ACK_ROOT}/{site}/{gateway_id}"


def ranges_of(ids: set[tuple[int, int]]) -> list[AckRange]:
    """(session, seq) pairs as the fewest inclusive ranges, in order."""
    out: list[AckRange] = []
    for session, seq in sorted(ids):
        last = out[-1] if out else None
        if last is not None and last.session == session and last.last + 1 == seq:
            out[-1] = AckRange(session=session, first=last.first, last=seq)
        else:
            out.append(AckRange(session=session, first=seq, last=seq))
    return out


def decode_ack(payload: bytes) -> Ack:
    try:
        return _ack.validate_json(payload)
    except ValidationError as exc:
        raise WireError(f"not an acknowledgement: {exc.errors()[0]['msg']}") from None


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
