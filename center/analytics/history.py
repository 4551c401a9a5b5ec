"""What is known about each device over time: its model, region, commissioning date and
the firmware it ran when, and from these its exposure (device-years) in a period.

Commissioning comes from the center's `[[devices]] commissioned`, else the day the
center first saw the device. Firmware comes from the stored firmware reports: a device
runs a version from the report that names it until the next; before its first report it
is taken to have run that first version (the center was not there to see otherwise).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Connection, select

from center.baselines.baselines import model_key
from center.config import CenterConfig
from center.store import schema as s
from center.store.db import as_utc

YEAR_S = 365.25 * 86_400
UNKNOWN = "unknown"


@dataclass
class DeviceFacts:
    site: str
    device_id: str
    gateway_id: str
    model: str
    region: str
    commissioned: datetime
    commissioned_from: str  # config | first_seen
    firmware: list[tuple[datetime, str]] = field(default_factory=list)  # oldest first

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.device_id)

    def firmware_at(self, at: datetime) -> str:
        if not self.firmware:
            return UNKNOWN
        i = bisect_right([since for since, _ in self.firmware], at)
        return self.firmware[max(0, i - 1)][1]

    def versions_between(self, start: datetime, end: datetime) -> dict[str, float]:
        """Seconds spent on each firmware version within [start, end), from commissioning."""
        start = max(start, self.commissioned)
        if end <= start:
            return {}
        changes = [(since, v) for since, v in self.firmware if start < since < end]
        out: dict[str, float] = {}
        current, at = self.firmware_at(start), start
        for since, version in changes:
            out[current] = out.get(current, 0.0) + (since - at).total_seconds()
            current, at = version, since
        out[current] = out.get(current, 0.0) + (end - at).total_seconds()
        return out

    def exposure_years(self, start: datetime, end: datetime, firmware: str | None = None) -> float:
        spans = self.versions_between(start, end)
        if firmware is not None:
            return spans.get(firmware, 0.0) / YEAR_S
        return sum(spans.values()) / YEAR_S


def _day(d: object) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)  # type: ignore[arg-type]


def load_devices(conn: Connection, config: CenterConfig) -> list[DeviceFacts]:
    """Every device the center knows, with its firmware history."""
    commissioned = {
        (d.site, d.device_id): _day(d.commissioned)
        for d in config.devices
        if d.commissioned is not None
    }
    fw: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    f = s.firmware_reports.c
    rows = conn.execute(
        select(f.site, f.device_id, f.gateway_time, f.firmware_version)
        .where(f.device_id.is_not(None), f.firmware_version.is_not(None))
        .order_by(f.site, f.device_id, f.gateway_time, f.id)
    )
    for site, device, at, version in rows:
        history = fw.setdefault((site, device), [])
        if not history or history[-1][1] != version:
            history.append((as_utc(at) or at, version))
    out = []
    d = s.devices.c
    query = select(
        d.site, d.device_id, d.gateway_id, d.model, d.profile, d.first_seen, d.firmware_version
    ).order_by(d.site, d.device_id)
    for site, device, gateway, model, profile, first_seen, version in conn.execute(query):
        key = (site, device)
        seen = as_utc(first_seen) or first_seen
        history = fw.get(key) or ([(seen, version)] if version else [])
        given = commissioned.get(key)
        out.append(
            DeviceFacts(
                site=site,
                device_id=device,
                gateway_id=gateway,
                model=model_key(model, profile) or UNKNOWN,
                region=config.routing.route(site)[0],
                commissioned=given or seen,
                commissioned_from="config" if given else "first_seen",
                firmware=history,
            )
        )
    return out


def total_exposure(devices: Iterable[DeviceFacts], start: datetime, end: datetime) -> float:
    return sum(dev.exposure_years(start, end) for dev in devices)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The first instant of each calendar month overlapping [start, end)."""
    at = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    while at < end:
        out.append(at)
        at = (at + timedelta(days=32)).replace(day=1)
    return out
