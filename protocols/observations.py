"""What drivers yield: raw observations, before the agent gives them meaning.

An observation says *where* (the device and a protocol address), *what* (value, quality,
device time with its own flags, cause) and nothing about what the point means: that is the
device profile's job, in `agent/`. Every quality bit and time flag a device sends is kept.

Addresses are strings whose form each protocol documents in its README:
IEC 104 `"<ioa>"`, IEC 103 `"<fun>/<inf>"`, Modbus `"event:<code>"`, `"status:<name>"`,
`"measurement:<name>"`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Scalar = bool | int | float | str | None

# Quality bits, as received (IEC 60870-5 names; Modbus drivers use the same where they apply).
QUALITY_BITS = ("IV", "NT", "SB", "BL", "OV", "EI", "ER", "CA", "CY")

# Why a value was reported, in one vocabulary for every protocol (each driver maps its own
# causes of transmission onto it and keeps the protocol's name in `cause_raw`):
# - spontaneous: a change as it happened: sent by the device on its own (104 COT 3, 11,
#   12; 103 COT 1, 11, 12), read from its event log, or found by comparing two cyclic reads;
# - interrogated: the current state in answer to an interrogation (104 COT 20-36, 103 GI
#   COT 9, the first Modbus status read after contact);
# - requested: the current value in answer to a read request (104 COT 5, 37-41; 103
#   generic read COT 42);
# - periodic: cyclic or background data (104 COT 1, 2; 103 COT 2; Modbus measurements);
# - other: any other cause (test mode, command confirmations, ...).
# A state reported because someone asked (interrogated, requested) is not a change: it
# says how things are, not that something happened now.
Cause = Literal["spontaneous", "interrogated", "requested", "periodic", "other"]
ASKED_CAUSES: frozenset[str] = frozenset({"interrogated", "requested"})


@dataclass(slots=True)
class PointObservation:
    """A value the device reported for one address: an event, a status or a measurand.

    Never changed once made, though not frozen: it is made once per event on the hot path,
    and a frozen dataclass's `__init__` (an `object.__setattr__` per field) took 3.6 µs
    against 1.1 µs here."""

    device_id: str
    address: str
    value: Scalar
    quality: tuple[str, ...] = ()
    device_time: datetime | None = None  # aware, UTC
    device_time_flags: tuple[str, ...] = ()  # invalid, substituted, summer_time
    cause: Cause | None = None  # why it was reported (see `Cause`)
    details: Mapping[str, Scalar] = field(default_factory=dict)  # protocol extras (type id, …)
    measurement: bool = False  # cyclic/periodic telemetry rather than a change
    # What the device itself said about the event, where its record says more than the
    # profile can (a Modbus ring record's phase field, its raised/cleared state field when
    # `value` is a number). None: the profile's phase, and the value's truth.
    phase: str | None = None
    raised: bool | None = None
    cause_raw: str | None = None  # the cause of transmission as the protocol names it
    # What decides every field but `device_time`, where the driver can name it cheaply:
    # two observations of one device with equal shapes differ only in their device time
    # (agent/point_shapes.py then fills a record made once). None: not known.
    shape: Hashable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MeasurementsObservation:
    """Measurands of one device read together (a Modbus poll of its measurement
    registers): one observation, and one record, for all of them. `units` gives the
    driver's unit per address where it knows one (the profile's point wins).
    `commit_within_s`: how long its record may wait to share a commit with others (a
    periodic value nobody is waiting on; 0: commit at once)."""

    device_id: str
    values: Mapping[str, Scalar]  # address -> value
    cause: Cause | None = "periodic"
    cause_raw: str | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    commit_within_s: float = 0.0


@dataclass(frozen=True, slots=True)
class IdentityObservation:
    """What the device says it is: the firmware report's raw material."""

    device_id: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware_version: str | None = None
    checksum: str | None = None
    details: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SettingValue:
    name: str
    value: Scalar
    unit: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class SettingsObservation:
    """All settings read from a device in one pass (canonicalised by the agent)."""

    device_id: str
    settings: tuple[SettingValue, ...]
    source: str = ""  # e.g. "modbus holding registers", "103 generic services"
    # The device said its settings changed (103 INF 22, a Modbus change counter, a 104
    # spontaneous setting point): the read followed that signal, not the periodic timer.
    signalled: bool = False


@dataclass(frozen=True, slots=True)
class ConditionObservation:
    """A condition a driver detected about a device, e.g. its event buffer wrapped."""

    device_id: str
    code: str  # e.g. "events_lost", "buffer_near_full", "unknown_point"
    state: Literal["raised", "cleared"]
    message: str
    severity: Literal["critical", "major", "minor", "info"] = "major"
    details: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LinkStateObservation:
    """The driver's view of whether a device answers."""

    device_id: str
    up: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AnalogChannel:
    """One sampled analog channel of a disturbance record, as the relay sent it.

    `samples` are the raw single disturbance values (signed 16-bit in IEC 103). `primary`,
    `secondary` and `reference` are the channel's rated primary value, rated secondary
    value and reference factor (IEC 103 ASDU 27); the driver documents how they scale a raw
    sample into primary units, and `scale` is that factor (primary units per raw count).
    """

    name: str  # e.g. "IA", "UB"
    unit: str  # "A" or "V"
    phase: str | None  # "A", "B", "C", "N" or None
    primary: float
    secondary: float
    reference: float
    scale: float  # primary units per raw count
    samples: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DigitalChannel:
    """One binary channel (a tag) of a disturbance record: its state at the first sample
    and every change after it, as (sample index, new state)."""

    name: str  # the profile's point name where known, else "<fun>/<inf>"
    initial: bool
    changes: tuple[tuple[int, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class DisturbanceObservation:
    """A whole disturbance record transferred from a relay (IEC 103 ASDUs 23-31).

    The driver yields it only once the transfer is complete; the relay is told so (ASDU 25
    positive acknowledgement) only after the sink has stored it, the same rule as events.
    """

    device_id: str
    fault_number: int  # FAN
    trigger_time: datetime  # aware, UTC: the fault's time from the record directory
    first_sample_time: datetime  # aware, UTC
    sample_interval_us: int
    analog: tuple[AnalogChannel, ...]
    digital: tuple[DigitalChannel, ...] = ()
    details: Mapping[str, Scalar] = field(default_factory=dict)  # protocol extras (SOF, …)


@dataclass(frozen=True, slots=True)
class FaultReportObservation:
    """A relay's own fault report (e.g. a Modbus fault-report register block): what it
    measured and decided about one fault, without waveforms."""

    device_id: str
    fault_time: datetime | None  # aware, UTC
    fault_type: str | None = None  # e.g. "AG", "BC", "ABC"
    phases: tuple[str, ...] = ()  # faulted phases, "A", "B", "C", "N"
    distance_km: float | None = None
    trip_time_ms: float | None = None
    currents_a: Mapping[str, float] = field(default_factory=dict)  # per phase, primary A
    details: Mapping[str, Scalar] = field(default_factory=dict)


Observation = (
    PointObservation
    | MeasurementsObservation
    | IdentityObservation
    | SettingsObservation
    | ConditionObservation
    | LinkStateObservation
    | DisturbanceObservation
    | FaultReportObservation
)
