"""A seeded synthetic fleet history written straight into a center database: devices with
models, firmware and commissioning dates, and years of self-check, alarm, comms-loss and
wear-counter records at known rates, plus a few planted devices whose ageing verdict is
known in advance. Used by the ageing tests and by bench/analytics.py (with tickets)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from center.store import schema as s

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MODELS = {"FP-300": 15.0, "LP-900": 20.0, "BB-100": 25.0}
BASE_RATES = {"self_check": 0.5, "alarm": 2.0, "comms_lost": 1.0}  # per device-year
YEAR = timedelta(days=365.25)


@dataclass
class Planted:
    """A device whose ageing outcome is known: what to plant and what must come out."""

    site: str
    device_id: str
    model: str
    age_years: float
    recent: dict[str, int] = field(default_factory=dict)  # events in the last 60 days
    wear: float | None = None
    expect_ticket: bool = False
    expect_priority: str | None = None


def planted() -> list[Planted]:
    old_site = [
        Planted("s07", f"s07-d{i:02d}", "FP-300", 16.0, expect_ticket=True, expect_priority="P4")
        for i in range(10)
    ]
    return [
        *old_site,
        Planted("s12", "s12-d03", "FP-300", 14.2, {"self_check": 6}, None, True, "P4"),
        Planted("s20", "s20-d05", "LP-900", 19.5, {"self_check": 6, "comms_lost": 8}, None,
                True, "P3"),
        Planted("s30", "s30-d01", "FP-300", 3.0, {"self_check": 8}),  # young: faulty, not old
        Planted("s31", "s31-d02", "FP-300", 13.5),  # old but healthy: below the threshold
        Planted("s40", "s40-d04", "LP-900", 8.0, wear=10_500, expect_ticket=True,
                expect_priority="P4"),
    ]  # fmt: skip


def site_of(i: int) -> str:
    return f"s{i:02d}"


def fleet_config(sites: int = 50, devices_per_site: int = 10, seed: int = 7) -> dict[str, Any]:
    """The center config of the synthetic fleet: routing, commissioning, design lives."""
    rng = random.Random(seed)
    plants = {(p.site, p.device_id): p for p in planted()}
    devices = []
    for i in range(sites):
        for j in range(devices_per_site):
            site, dev = site_of(i), f"{site_of(i)}-d{j:02d}"
            model = _model(i, j)
            p = plants.get((site, dev))
            age = p.age_years if p else rng.uniform(0.5, 0.7 * MODELS[model])
            if p is None and age < 2.5 and rng.random() < 0.5:
                continue  # commissioned while the center watched: first seen decides
            day = (NOW - age * YEAR).date()
            devices.append({"site": site, "device_id": dev, "commissioned": day.isoformat()})
    return {
        "routing": {
            "regions": {"north": {"service_point": "sp-north"},
                        "south": {"service_point": "sp-south"}},
            "sites": {site_of(i): {"region": "north" if i < sites // 2 else "south"}
                      for i in range(sites)},
        },
        "devices": devices,
        "analytics": {"ageing": {
            "design_life_years": dict(MODELS),
            "wear": [{"point": "breaker_operations", "limit": 10_000,
                      "label": "breaker operations"}],
        }},
    }  # fmt: skip


def _model(i: int, j: int) -> str:
    for p in planted():
        if p.device_id == f"{site_of(i)}-d{j:02d}":
            return p.model
    return ("FP-300", "LP-900", "BB-100")[(i * 7 + j) % 3]


@dataclass
class Seeded:
    devices: int = 0
    records: int = 0
    tickets: int = 0


class _Rows:
    """Batches rows per table and writes them with executemany."""

    def __init__(self, conn: Connection, chunk: int = 20_000) -> None:
        self.conn, self.chunk = conn, chunk
        self.pending: dict[Any, list[dict[str, Any]]] = {}
        self.seq = 0

    def add(self, table: Any, row: dict[str, Any]) -> None:
        rows = self.pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= self.chunk:
            self.flush()  # every table, in the order first added: parents before children

    def flush(self, table: Any = None) -> None:
        for t in [table] if table is not None else list(self.pending):
            if self.pending.get(t):
                self.conn.execute(insert(t), self.pending[t])
                self.pending[t] = []

    def record(self, site: str, device: str, kind: str, at: datetime, **values: Any) -> None:
        self.seq += 1
        self.add(s.records, {
            "gateway_id": f"gw-{site}", "session": 1, "seq": self.seq, "kind": kind,
            "site": site, "device_id": device, "event_time": at, "received_at": at,
            "signal": values.get("signal"), "point": values.get("point"),
            "severity": values.get("severity"), "value": values.get("value"),
            "code": values.get("code"), "body": "{}",
        })  # fmt: skip


def _poisson_times(rng: random.Random, rate_per_year: float, start: datetime) -> list[datetime]:
    out: list[datetime] = []
    at = start
    while rate_per_year > 0:
        at += rng.expovariate(rate_per_year) * YEAR
        if at >= NOW:
            return out
        out.append(at)
    return out


def _failure(rows: _Rows, site: str, dev: str, kind: str, at: datetime) -> None:
    """A raise and its clear a few minutes later, as an agent forwards them."""
    for value, when in (("on", at), ("off", at + timedelta(minutes=7))):
        if kind == "comms_lost":
            rows.record(site, dev, "alarm", when, code="comms_lost", severity="major",
                        value="raised" if value == "on" else "cleared")  # fmt: skip
        else:
            rows.record(site, dev, "event", when, signal=kind, point=kind, severity="major",
                        value=value)  # fmt: skip


def seed_fleet(
    conn: Connection,
    config: dict[str, Any],
    sites: int = 50,
    devices_per_site: int = 10,
    years: float = 3.0,
    seed: int = 7,
    measurements_per_day: float = 0.0,
) -> Seeded:
    """Write the fleet's history up to NOW; `measurements_per_day` pads each device with
    periodic measurements (the bench's two million records)."""
    rng = random.Random(seed)
    rows = _Rows(conn)
    out = Seeded()
    start = NOW - years * YEAR
    commissioned = {(d["site"], d["device_id"]): d["commissioned"] for d in config["devices"]}
    plants = {(p.site, p.device_id): p for p in planted()}
    for i in range(sites):
        site = site_of(i)
        for j in range(devices_per_site):
            dev, model = f"{site}-d{j:02d}", _model(i, j)
            given = commissioned.get((site, dev))
            first = start if given else start + rng.uniform(0.1, 0.9) * (NOW - start)
            if given:
                first = max(start, datetime.combine(date.fromisoformat(given), datetime.min.time(),
                                                    tzinfo=UTC))  # fmt: skip
            version = f"{model[:2]}-{1 + (j % 3)}.0"
            rows.add(s.devices, {
                "site": site, "device_id": dev, "gateway_id": f"gw-{site}",
                "protocol": "iec104", "profile": "line-protection", "first_seen": first,
                "last_seen": NOW, "model": model, "firmware_version": version,
            })  # fmt: skip
            rows.add(s.firmware_reports, {
                "gateway_id": f"gw-{site}", "session": 1, "seq": 1_000_000 + out.devices,
                "site": site, "device_id": dev, "gateway_time": first, "model": model,
                "firmware_version": version, "hash": version, "details": "{}",
            })  # fmt: skip
            out.devices += 1
            for kind, rate in BASE_RATES.items():
                for at in _poisson_times(rng, rate, first):
                    _failure(rows, site, dev, kind, at)
            p = plants.get((site, dev))
            for kind, n in (p.recent if p else {}).items():
                for k in range(n):
                    _failure(rows, site, dev, kind, NOW - timedelta(days=2 + 7 * k, hours=3))
            if p and p.wear is not None:
                rows.record(site, dev, "measurement", NOW - timedelta(days=1),
                            point="breaker_operations", value=str(p.wear))  # fmt: skip
            if measurements_per_day:
                step = timedelta(days=1 / measurements_per_day)
                at = first
                while at < NOW:
                    rows.record(site, dev, "measurement", at, point="current_a",
                                value=f"{rng.uniform(100, 400):.1f}")  # fmt: skip
                    at += step
    rows.flush()
    out.records = rows.seq
    return out


# Tickets per device-year by class; the planted firmware FP-2.0 fails self-checks 4x.
TICKET_RATES = {"protection_operation": 2.0, "self_check": 0.3, "comms": 1.0,
                "alarm.ct_circuit": 1.0}  # fmt: skip
WORSE_FIRMWARE = ("FP-300", "FP-2.0", "self_check", 4.0)
CAUSES = ("line_fault", "external_fault", "hardware_failure", "firmware_defect",
          "communication_failure", "unknown")  # fmt: skip


def _ticket_row(i: int, site: str, dev: str, fc: str, at: datetime, rng: random.Random,
                region: str) -> dict[str, Any]:  # fmt: skip
    discrete = fc == "protection_operation"
    acked = at + timedelta(minutes=rng.expovariate(1 / 45))
    resolved = acked + timedelta(hours=rng.expovariate(1 / (8 if discrete else 1)))
    return {
        "id": i, "key": f"{site}/{dev}/{fc}", "site": site, "subject": dev, "device_id": dev,
        "fault_class": fc, "kind": "discrete" if discrete else "condition",
        "state": "closed", "muted": False, "episode": 1, "priority": "P3",
        "severity": "major", "criticality": "normal", "region": region,
        "service_point": f"sp-{region}", "title": f"{fc} at {site}: {dev}",
        "occurrences": 1, "reopen_count": 1 if rng.random() < 0.05 else 0,
        "flapping": False, "condition_active": False, "opened_at": at, "updated_at": resolved,
        "first_event_at": at, "last_event_at": at, "acknowledged_at": acked,
        "acknowledged_by": "ops", "resolved_at": resolved, "resolved_by": "ops",
        "root_cause": rng.choice(CAUSES) if discrete or rng.random() < 0.5 else None,
        "closed_at": resolved, "closed_by": "auto", "revision": 3,
    }  # fmt: skip


def seed_tickets(conn: Connection, config: dict[str, Any], target: int, seed: int = 11) -> int:
    """About `target` closed tickets over the fleet's history, at TICKET_RATES scaled to
    the target, with members and timelines; returns how many."""
    rng = random.Random(seed)
    regions = {site: v["region"] for site, v in config["routing"]["sites"].items()}
    devices = conn.execute(
        s.devices.select().with_only_columns(s.devices.c.site, s.devices.c.device_id,
                                             s.devices.c.model, s.devices.c.first_seen,
                                             s.devices.c.firmware_version)
    ).all()  # fmt: skip
    years = (
        sum((NOW - _utc(first)).total_seconds() for *_, first, _ in devices) / YEAR.total_seconds()
    )
    scale = target / (years * sum(TICKET_RATES.values()))
    rows = _Rows(conn)
    i = 0
    for site, dev, model, first, version in devices:
        for fc, base in TICKET_RATES.items():
            worse = (model, version, fc) == WORSE_FIRMWARE[:3]
            rate = base * (WORSE_FIRMWARE[3] if worse else 1.0) * scale
            for at in _poisson_times(rng, rate, _utc(first)):
                i += 1
                rows.add(s.tickets, _ticket_row(i, site, dev, fc, at, rng, regions[site]))
                rows.add(s.ticket_members, {"ticket_id": i, "subject": dev, "site": site,
                                            "fault_class": fc})  # fmt: skip
                entry = {"ticket_id": i, "at": at, "recorded_at": at, "subject": dev}
                rows.add(s.timeline, {**entry, "entry": "opened", "summary": "opened"})
                if fc != "protection_operation" and rng.random() < 0.05:
                    rows.add(s.timeline, {**entry, "entry": "flapping", "summary": "flapping"})
    rows.flush()
    return i


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
