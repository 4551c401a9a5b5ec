"""Tickets as incidents for the statistics: one row per ticket, attributed to the devices
it names, each with the firmware it ran when the ticket opened, after the filters.

Ticket-level filters (period by opening time, region, site, fault class, root cause) run
in SQL; device-level ones (device, model, firmware version) on the attribution, since
a device's model and firmware come from its history (center/analytics/history.py). A
ticket without a matching device (a gateway's comms names none) counts only while no
device-level filter is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from center.analytics.history import DeviceFacts
from center.store import schema as s
from center.store.db import as_utc

PREVENTIVE = frozenset({"ageing", "firmware_drift", "settings_drift"})


def family(fault_class: str) -> str:
    """Device alarms (`alarm.<point>`) count as one class, `alarm`."""
    return "alarm" if fault_class.startswith("alarm.") else fault_class


@dataclass(frozen=True)
class StatsFilter:
    start: datetime
    end: datetime
    region: str | None = None
    site: str | None = None
    device_id: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    fault_class: str | None = None  # a class, or `alarm` for every device alarm
    root_cause: str | None = None  # `unassigned` for tickets without one

    @property
    def device_level(self) -> bool:
        return any((self.device_id, self.model, self.firmware_version))

    def keeps_device(self, dev: DeviceFacts) -> bool:
        return (
            (self.region is None or dev.region == self.region)
            and (self.site is None or dev.site == self.site)
            and (self.device_id is None or dev.device_id == self.device_id)
            and (self.model is None or dev.model == self.model)
        )

    def document(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items()}


@dataclass
class Incident:
    id: int
    site: str
    fault_class: str
    kind: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    root_cause: str | None
    reopen_count: int
    family: str = ""  # set from fault_class once: read for every figure
    flapped: bool = False
    devices: list[tuple[DeviceFacts, str]] = field(default_factory=list)  # (device, firmware)

    def __post_init__(self) -> None:
        self.family = family(self.fault_class)


def _where(f: StatsFilter) -> Any:
    t = s.tickets.c
    clauses = [t.opened_at >= f.start, t.opened_at < f.end]
    if f.region:
        clauses.append(t.region == f.region)
    if f.site:
        clauses.append(t.site == f.site)
    if f.fault_class == "alarm":
        clauses.append(t.fault_class.like("alarm.%"))
    elif f.fault_class:
        clauses.append(t.fault_class == f.fault_class)
    if f.root_cause == "unassigned":
        clauses.append(t.root_cause.is_(None))
    elif f.root_cause:
        clauses.append(t.root_cause == f.root_cause)
    return and_(*clauses)


def load_incidents(
    conn: Connection, f: StatsFilter, devices: dict[tuple[str, str], DeviceFacts]
) -> list[Incident]:
    t, m, tl = s.tickets.c, s.ticket_members.c, s.timeline.c
    where = _where(f)
    found: dict[int, Incident] = {}
    rows = conn.execute(
        select(
            t.id, t.site, t.fault_class, t.kind, t.opened_at, t.acknowledged_at,
            t.resolved_at, t.root_cause, t.reopen_count,
        ).where(where)
    )  # fmt: skip
    for tid, site, fc, kind, opened, acked, resolved, cause, reopens in rows:
        found[tid] = Incident(
            tid, site, fc, kind, as_utc(opened) or opened, as_utc(acked), as_utc(resolved),
            cause, reopens,
        )  # fmt: skip
    members = conn.execute(
        select(m.ticket_id, m.subject).join(s.tickets, t.id == m.ticket_id).where(where)
    )
    named: dict[int, list[str]] = {}
    for tid, subject in members:
        if not subject.startswith("@"):
            named.setdefault(tid, []).append(subject)
    flapped = conn.execute(
        select(tl.ticket_id)
        .join(s.tickets, t.id == tl.ticket_id)
        .where(where, tl.entry == "flapping")
        .distinct()
    )
    for (tid,) in flapped:
        if tid in found:
            found[tid].flapped = True
    out = []
    for tid, inc in found.items():
        for subject in sorted(named.get(tid, [])):
            dev = devices.get((inc.site, subject))
            if dev is None or not f.keeps_device(dev):
                continue
            version = dev.firmware_at(inc.opened_at)
            if f.firmware_version is None or version == f.firmware_version:
                inc.devices.append((dev, version))
        if inc.devices or not f.device_level:
            out.append(inc)
    return sorted(out, key=lambda i: i.id)
