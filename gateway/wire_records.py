"""The records of the contract: one model per record kind, the `Record` union, and the
vocabularies they share (causes, severities, signals, phases).

Part of `gateway/wire.py`'s contract, which re-exports every name here: import them from
`gateway.wire`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from common.config import ID_PATTERN

# The one size limit of a message, for both sides: the center rejects anything larger,
# the agent packs its messages under it and refuses, at creation, a record that alone
# would not fit (see `MAX_RECORD_BODY_BYTES`).
MAX_PAYLOAD_BYTES = 1_048_576

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


class MeasurementSet(_Reported):
    """Periodic telemetry of several measurands of one device read together (one Modbus
    poll of its measurement registers): one record per read instead of one per value.
    Evicted like `measurement`."""

    kind: Literal["measurements"] = "measurements"
    values: dict[str, Scalar]  # address -> value as read
    points: dict[str, str] = Field(default_factory=dict)  # address -> profile point name
    units: dict[str, str] = Field(default_factory=dict)  # address -> unit
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
    | MeasurementSet
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
    "measurements",
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
