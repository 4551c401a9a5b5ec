"""What drivers yield: raw observations, before the agent gives them meaning.

An observation says *where* (the device and a protocol address), *what* (value, quality,
device time with its own flags, cause) and nothing about what the point means: that is the
device profile's job, in `agent/`. Every quality bit and time flag a device sends is kept.

Addresses are strings whose form each protocol documents in its README:
IEC 104 `"<ioa>"`, IEC 103 `"<fun>/<inf>"`, Modbus `"event:<code>"`, `"status:<name>"`,
`"measurement:<name>"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Scalar = bool | int | float | str | None

# Quality bits, as received (IEC 60870-5 names; Modbus drivers use the same where they apply).
QUALITY_BITS = ("IV", "NT", "SB", "BL", "OV", "EI", "ER", "CA", "CY")
# Flags of a device time stamp (CP56Time2a / CP32Time2a).
TIME_FLAGS = ("invalid", "substituted", "summer_time")


@dataclass(frozen=True, slots=True)
class PointObservation:
    """A value the device reported for one address: an event, a status or a measurand."""

    device_id: str
    address: str
    value: Scalar
    quality: tuple[str, ...] = ()
    device_time: datetime | None = None  # aware, UTC
    device_time_flags: tuple[str, ...] = ()
    cause: str | None = None  # cause of transmission as the protocol names it
    details: Mapping[str, Scalar] = field(default_factory=dict)  # protocol extras (type id, …)
    measurement: bool = False  # cyclic/periodic telemetry rather than a change


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


Observation = (
    PointObservation
    | IdentityObservation
    | SettingsObservation
    | ConditionObservation
    | LinkStateObservation
)
