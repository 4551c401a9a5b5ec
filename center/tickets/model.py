"""The ticket engine's vocabulary: signals in, tickets and conditions as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Mode = Literal["discrete", "condition", "context"]
TicketState = Literal["open", "acknowledged", "resolved", "closed"]
ACTIVE: tuple[str, ...] = ("open", "acknowledged")

PROTECTION = "protection_operation"  # trips and starts, grouped across a site's devices
COMMS = "comms"  # a device's comms with its gateway
SITE_COMMS = "site_comms"  # a gateway's death or its whole site's comms; inhibits COMMS
SELF_CHECK = "self_check"
FIRMWARE_DRIFT = "firmware_drift"  # a device runs a version not approved for its model
SETTINGS_DRIFT = "settings_drift"  # a device's settings differ from its approved baseline
AGEING = "ageing"  # preventive: a device near or past its design life, or wearing out
CLOCK_QUALITY = "clock_quality"  # a relay's clock is off, invalid or unsynchronised


@dataclass(frozen=True)
class Signal:
    """One record's meaning for the ticket engine.

    `subject` is the device id, or "@<gateway>" for a site-level signal. `mode`:
    discrete (a trip: a person resolves it), condition (raised/cleared, resolves itself
    once the clear has held) or context (joins a protection ticket's timeline, opens
    nothing). `asked`: the state was reported because someone asked (an interrogation, a
    read), so it is not a change: it reconciles conditions and is no part of an incident."""

    site: str
    subject: str
    device_id: str | None
    gateway_id: str
    fault_class: str
    mode: Mode
    raised: bool
    severity: str
    at: datetime
    summary: str
    ref: tuple[str, int, int] | None = None
    grouped: bool = False
    asked: bool = False

    @property
    def key(self) -> str:
        return ticket_key(self.site, self.subject, self.fault_class)


def ticket_key(site: str, subject: str, fault_class: str) -> str:
    return f"{site}/{subject}/{fault_class}"


@dataclass
class Ticket:
    key: str
    site: str
    subject: str
    device_id: str | None
    fault_class: str
    kind: str
    state: str
    priority: str
    severity: str
    criticality: str
    region: str
    service_point: str
    title: str
    opened_at: datetime
    updated_at: datetime
    first_event_at: datetime
    last_event_at: datetime
    id: int | None = None
    muted: bool = False
    parent_id: int | None = None
    episode: int = 1
    previous_ticket_id: int | None = None
    occurrences: int = 1
    reopen_count: int = 0
    flapping: bool = False
    condition_active: bool = False
    clear_since: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    root_cause: str | None = None
    note: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    revision: int = 0
    members: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass
class Condition:
    key: str
    site: str
    subject: str
    fault_class: str
    active: bool
    changed_at: datetime
    severity: str
    summary: str
    transitions: list[datetime] = field(default_factory=list)
    flapping: bool = False
    suppressed: bool = False


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    entry: str  # event, opened, grouped, reopened, acknowledged, resolved, closed, ...
    summary: str
    subject: str | None = None
    ref: tuple[str, int, int] | None = None
