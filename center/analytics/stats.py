"""Incident statistics over tickets and records, for any filter (incidents.StatsFilter).

Counts and rates per device-year (exposure from each device's commissioning, or first
sighting, and its firmware history), mean time between failures per model and per
firmware version (self-check failures and comms losses), time to acknowledge and to
resolve, reopen and flapping rates, root causes, the devices that recur, a monthly
trend, raw event counts from the records, and clock quality per site.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from center.analytics.clock_sites import clock_by_site
from center.analytics.history import YEAR_S, DeviceFacts, load_devices, month_starts
from center.analytics.incidents import (
    PREVENTIVE,
    Incident,
    StatsFilter,
    family,
    load_incidents,
)
from center.config import CenterConfig
from center.store import schema as s

MTBF_CLASSES = ("self_check", "comms")
Pair = tuple[Incident, DeviceFacts, str]  # an incident, a device it names, its firmware


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _hours(values: list[float]) -> dict[str, Any]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x / 3600, 2)

    mean = sum(values) / len(values) if values else None
    return {
        "count": len(values),
        "p50_h": r(percentile(values, 0.5)),
        "p90_h": r(percentile(values, 0.9)),
        "mean_h": r(mean),
    }


def _rate(n: int, years: float) -> float | None:
    return round(n / years, 4) if years > 0 else None


def _mtbf_days(n: int, years: float) -> float | None:
    return round(years * 365.25 / n, 1) if n else None


class Figures:
    """Everything the statistics say about one filter; `document()` is the JSON."""

    def __init__(
        self,
        f: StatsFilter,
        devices: list[DeviceFacts],
        incidents: list[Incident],
        now: datetime | None = None,
    ) -> None:
        self.filter = f
        self.devices = devices
        self.incidents = incidents
        # A period that reaches past `now` counts exposure only until now: days the
        # devices have yet to live would dilute every rate.
        self.until = f.end if now is None else max(f.start, min(f.end, now))
        self.exposure = {
            d.key: d.versions_between(f.start, self.until) for d in devices if f.keeps_device(d)
        }
        if f.firmware_version is not None:
            self.exposure = {
                k: {f.firmware_version: v[f.firmware_version]}
                for k, v in self.exposure.items()
                if f.firmware_version in v
            }
        self.by_key = {d.key: d for d in devices}

    def device_years(self, keys: Iterable[tuple[str, str]] | None = None) -> float:
        chosen = self.exposure if keys is None else {k: self.exposure.get(k, {}) for k in keys}
        return sum(sum(v.values()) for v in chosen.values()) / YEAR_S

    def pairs(
        self, families: Iterable[str] | None = None
    ) -> list[tuple[Incident, DeviceFacts, str]]:
        wanted = set(families) if families is not None else None
        return [
            (inc, dev, fw)
            for inc in self.incidents
            if wanted is None or inc.family in wanted
            for dev, fw in inc.devices
        ]

    def by_class(self, events: dict[str, int] | None) -> list[dict[str, Any]]:
        years = self.device_years()
        counts = Counter(inc.family for inc in self.incidents)
        names = sorted(set(counts) | set(events or {}))
        return [
            {
                "fault_class": name,
                "tickets": counts.get(name, 0),
                "per_device_year": _rate(counts.get(name, 0), years),
                "events": (events or {}).get(name),
                "events_per_device_year": _rate((events or {}).get(name, 0), years)
                if events is not None
                else None,
            }
            for name in names
        ]

    def mtbf(self) -> dict[str, list[dict[str, Any]]]:
        """Failures are ticket-device pairs of a class: an incident naming two devices is
        a failure of each."""
        model_years: dict[str, float] = defaultdict(float)
        fw_years: dict[tuple[str, str], float] = defaultdict(float)
        for key, spans in self.exposure.items():
            model = self.by_key[key].model
            for version, seconds in spans.items():
                model_years[model] += seconds / YEAR_S
                fw_years[(model, version)] += seconds / YEAR_S
        by_model: Counter[tuple[str, str]] = Counter()
        by_fw: Counter[tuple[str, str, str]] = Counter()
        for inc, dev, fw in self.pairs(MTBF_CLASSES):
            by_model[(dev.model, inc.family)] += 1
            by_fw[(dev.model, fw, inc.family)] += 1
        models = [
            {"model": m, "fault_class": c, "failures": by_model[(m, c)],
             "device_years": round(y, 2), "mtbf_days": _mtbf_days(by_model[(m, c)], y)}
            for m, y in sorted(model_years.items())
            for c in MTBF_CLASSES
        ]  # fmt: skip
        firmware = [
            {"model": m, "firmware_version": v, "fault_class": c,
             "failures": by_fw[(m, v, c)], "device_years": round(y, 2),
             "mtbf_days": _mtbf_days(by_fw[(m, v, c)], y)}
            for (m, v), y in sorted(fw_years.items())
            for c in MTBF_CLASSES
        ]  # fmt: skip
        return {"by_model": models, "by_firmware": firmware}

    def response(self) -> list[dict[str, Any]]:
        groups: dict[str, list[Incident]] = defaultdict(list)
        for inc in self.incidents:
            groups[inc.family].append(inc)
            groups["all"].append(inc)
        out = []
        for name in sorted(groups):
            incs = groups[name]
            ack = [(i.acknowledged_at - i.opened_at).total_seconds() for i in incs
                   if i.acknowledged_at is not None]  # fmt: skip
            res = [(i.resolved_at - i.opened_at).total_seconds() for i in incs
                   if i.resolved_at is not None]  # fmt: skip
            conditions = [i for i in incs if i.kind == "condition"]
            out.append({
                "fault_class": name,
                "tickets": len(incs),
                "time_to_acknowledge": _hours(ack),
                "time_to_resolve": _hours(res),
                "reopened": sum(1 for i in incs if i.reopen_count > 0),
                "reopen_rate": round(sum(1 for i in incs if i.reopen_count > 0) / len(incs), 4),
                "flapping_rate": round(sum(1 for i in conditions if i.flapped) / len(conditions), 4)
                if conditions else None,
            })  # fmt: skip
        return out

    def root_causes(self) -> list[dict[str, Any]]:
        counts = Counter((inc.root_cause or "unassigned", inc.family) for inc in self.incidents)
        return [
            {"root_cause": cause, "fault_class": fc, "tickets": n}
            for (cause, fc), n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
        ]

    def recurring(self, top: int) -> list[dict[str, Any]]:
        """Devices with two or more fault tickets (preventive classes left out)."""
        per: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for inc, dev, _ in self.pairs():
            if inc.family not in PREVENTIVE:
                per[dev.key][inc.family] += 1
        ranked = sorted(per.items(), key=lambda x: (-sum(x[1].values()), x[0]))
        return [
            {"site": k[0], "device_id": k[1], "model": self.by_key[k].model,
             "tickets": sum(c.values()), "by_class": dict(sorted(c.items()))}
            for k, c in ranked[:top]
            if sum(c.values()) >= 2
        ]  # fmt: skip

    def monthly(self) -> list[dict[str, Any]]:
        f = self.filter
        starts = month_starts(f.start, f.end)
        bounds = [*starts[1:], f.end]
        per_month: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        for inc in self.incidents:  # the period filter holds already
            per_month[(inc.opened_at.year, inc.opened_at.month)][inc.family] += 1
        out = []
        for start, end in zip(starts, bounds, strict=True):
            lo, hi = max(start, f.start), min(end, self.until)
            years = sum(
                sum(self.by_key[k].versions_between(lo, hi).get(v, 0.0) for v in spans) / YEAR_S
                for k, spans in self.exposure.items()
            )
            counts = per_month.get((start.year, start.month), Counter())
            out.append({
                "month": start.strftime("%Y-%m"),
                "device_years": round(years, 3),
                "tickets": dict(sorted(counts.items())),
                "total": sum(counts.values()),
                "per_device_year": _rate(sum(counts.values()), years),
            })  # fmt: skip
        return out


def raw_events(conn: Connection, f: StatsFilter, keys: set[tuple[str, str]]) -> dict[str, int]:
    """Raised events in the records, by class, for the chosen devices."""
    r = s.records.c
    what = func.coalesce(r.signal, r.code)
    q = (
        select(r.site, r.device_id, what, func.count())
        .where(
            r.event_time >= f.start,
            r.event_time < f.end,
            or_(
                and_(r.kind == "event", r.value == "on", r.signal.in_(("trip", "start",
                     "self_check", "alarm"))),
                and_(r.kind == "alarm", r.value == "raised"),
            ),
        )
        .group_by(r.site, r.device_id, what)
    )  # fmt: skip
    if f.site:
        q = q.where(r.site == f.site)
    if f.device_id:
        q = q.where(r.device_id == f.device_id)
    out: Counter[str] = Counter()
    names = {"trip": "protection_operation", "start": "protection_operation",
             "comms_lost": "comms"}  # fmt: skip
    for site, device, name, n in conn.execute(q):
        if (site, device) in keys or (device is None and not f.device_level):
            out[family(names.get(name, name))] += int(n)
    return dict(out)


def figures_for(
    conn: Connection, config: CenterConfig, f: StatsFilter, now: datetime | None = None
) -> Figures:
    devices = load_devices(conn, config)
    by_key = {d.key: d for d in devices}
    return Figures(f, devices, load_incidents(conn, f, by_key), now)


def statistics(
    conn: Connection,
    config: CenterConfig,
    f: StatsFilter,
    top: int = 10,
    now: datetime | None = None,
) -> dict[str, Any]:
    return document(conn, figures_for(conn, config, f, now), top)


def document(conn: Connection, figs: Figures, top: int = 10) -> dict[str, Any]:
    f = figs.filter
    events = None if f.firmware_version else raw_events(conn, f, set(figs.exposure))
    incidents = figs.incidents
    conditions = [i for i in incidents if i.kind == "condition"]
    return {
        "filter": f.document(),
        "devices": len(figs.exposure),
        "device_years": round(figs.device_years(), 3),
        "tickets": len(incidents),
        "by_class": figs.by_class(events),
        "mtbf": figs.mtbf(),
        "response": figs.response(),
        "reopen_rate": round(sum(1 for i in incidents if i.reopen_count) / len(incidents), 4)
        if incidents
        else None,
        "flapping_rate": round(sum(1 for i in conditions if i.flapped) / len(conditions), 4)
        if conditions
        else None,
        "root_causes": figs.root_causes(),
        "recurring_devices": figs.recurring(top),
        "monthly": figs.monthly(),
        "clock": clock_by_site(conn, f, figs.by_key),
    }
