"""The read side of the baselines: the fleet's firmware report, and per device its
firmware history (first and last seen of each version) and settings history (every
snapshot with its as-found diff, the baselines, and how it differs from its baseline now).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from center.baselines import baselines, classify, drift
from center.store import schema as s
from center.store.db import as_utc
from center.tickets.model import ACTIVE, FIRMWARE_DRIFT, SETTINGS_DRIFT


def _iso(value: datetime | None) -> str | None:
    v = as_utc(value)
    return v.isoformat() if v is not None else None


@dataclass(frozen=True)
class Report:
    """One firmware report as stored, for history folding."""

    at: datetime
    hash: str
    firmware_version: str | None
    model: str | None
    serial: str | None
    checksum: str | None


def fold_firmware_history(
    reports: Sequence[Report], device_last_seen: datetime | None
) -> list[dict[str, Any]]:
    """Consecutive reports of one identity are one period: first seen at its first report,
    last seen when the next identity was reported (the current one: the device's last
    record). Pure; reports oldest first."""
    periods: list[dict[str, Any]] = []
    for r in reports:
        if periods and periods[-1]["hash"] == r.hash:
            periods[-1]["reports"] += 1
            continue
        if periods:
            periods[-1]["last_seen"] = r.at
        periods.append(
            {
                "firmware_version": r.firmware_version,
                "model": r.model,
                "serial": r.serial,
                "checksum": r.checksum,
                "hash": r.hash,
                "first_seen": r.at,
                "last_seen": r.at,
                "reports": 1,
                "current": False,
            }
        )
    if periods:
        periods[-1]["current"] = True
        if device_last_seen is not None:
            periods[-1]["last_seen"] = max(periods[-1]["last_seen"], device_last_seen)
    for p in periods:
        p["first_seen"], p["last_seen"] = _iso(p["first_seen"]), _iso(p["last_seen"])
    return periods


def _device(conn: Connection, site: str, device_id: str) -> dict[str, Any] | None:
    d = s.devices.c
    row = (
        conn.execute(select(s.devices).where(d.site == site, d.device_id == device_id))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def _reports(conn: Connection, site: str, device_id: str) -> list[Report]:
    f = s.firmware_reports.c
    rows = conn.execute(
        select(f.gateway_time, f.hash, f.firmware_version, f.model, f.serial, f.checksum)
        .where(f.site == site, f.device_id == device_id)
        .order_by(f.gateway_time, f.id)
    )
    return [Report(as_utc(r[0]) or r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def firmware_history(conn: Connection, site: str, device_id: str) -> dict[str, Any] | None:
    dev = _device(conn, site, device_id)
    if dev is None:
        return None
    model = baselines.model_key(dev["model"], dev["profile"])
    approved = baselines.approved_versions(conn, model) if model else set()
    periods = fold_firmware_history(_reports(conn, site, device_id), as_utc(dev["last_seen"]))
    for p in periods:
        p["approved"] = p["firmware_version"] in approved
    return {
        "site": site,
        "device_id": device_id,
        "model": model,
        "approved_versions": sorted(approved),
        "history": periods,
    }


def settings_history(conn: Connection, site: str, device_id: str) -> dict[str, Any] | None:
    if _device(conn, site, device_id) is None:
        return None
    st = s.settings_snapshots.c
    rows = conn.execute(
        select(s.settings_snapshots)
        .where(st.site == site, st.device_id == device_id)
        .order_by(st.gateway_time, st.id)
    ).mappings()
    snapshots = [
        {
            "record": [r["gateway_id"], r["session"], r["seq"]],
            "gateway_time": _iso(r["gateway_time"]),
            "reason": r["reason"],
            "hash": r["hash"],
            "previous_hash": r["previous_hash"],
            "diff": [_classified(c) for c in json.loads(r["diff"])],
            "settings": json.loads(r["settings"]),
        }
        for r in rows
    ]
    approvals = baselines.settings_approvals(conn, site, device_id)
    current = drift.latest_settings(conn, site, device_id)
    baseline = approvals[-1] if approvals else None
    deviation = (
        classify.differences(baseline.settings, current.settings)
        if baseline is not None and current is not None and current.hash != baseline.hash
        else []
    )
    return {
        "site": site,
        "device_id": device_id,
        "status": _settings_status(current, baseline),
        "baseline": baselines.baseline_document(baseline) if baseline else None,
        "differs_from_baseline": [d.as_dict() for d in deviation],
        "approvals": [baselines.baseline_document(a) for a in approvals],
        "snapshots": snapshots,
    }


def _classified(change: dict[str, Any]) -> dict[str, Any]:
    category = classify.category_of(change)
    return {**change, "category": category, "critical": category != classify.BENIGN}


def _settings_status(
    current: drift.SettingsState | None, baseline: baselines.SettingsBaseline | None
) -> str:
    if current is None:
        return "unknown"
    if baseline is None:
        return "no_baseline"
    return "baseline" if current.hash == baseline.hash else "drift"


def _firmware_status(version: str | None, approved: set[str]) -> str:
    if version is None:
        return "unknown"
    if not approved:
        return "no_baseline"
    return "approved" if version in approved else "unapproved"


def _drift_tickets(conn: Connection) -> dict[tuple[str, str], list[int]]:
    t = s.tickets.c
    rows = conn.execute(
        select(t.site, t.subject, t.id)
        .where(t.fault_class.in_((FIRMWARE_DRIFT, SETTINGS_DRIFT)), t.state.in_(ACTIVE))
        .order_by(t.id)
    )
    out: dict[tuple[str, str], list[int]] = {}
    for site, subject, tid in rows:
        out.setdefault((site, subject), []).append(tid)
    return out


def fleet_report(conn: Connection, deviating_only: bool = False) -> list[dict[str, Any]]:
    """Per device: what it runs, whether that is approved, whether its settings are at
    their baseline, and its open drift tickets."""
    approvals: dict[str, set[str]] = {}
    for a in baselines.firmware_approvals(conn):
        approvals.setdefault(a["model"], set()).add(a["firmware_version"])
    settings_baselines = baselines.all_settings_baselines(conn)
    tickets = _drift_tickets(conn)
    d = s.devices.c
    out = []
    for dev in conn.execute(select(s.devices).order_by(d.site, d.device_id)).mappings():
        site, device_id = dev["site"], dev["device_id"]
        model = baselines.model_key(dev["model"], dev["profile"])
        approved = approvals.get(model, set()) if model else set()
        current = drift.latest_settings(conn, site, device_id)
        baseline = settings_baselines.get((site, device_id))
        deviation = (
            classify.differences(baseline.settings, current.settings)
            if current is not None and baseline is not None and current.hash != baseline.hash
            else []
        )
        row = {
            "site": site,
            "device_id": device_id,
            "gateway_id": dev["gateway_id"],
            "profile": dev["profile"],
            "manufacturer": dev["manufacturer"],
            "model": model,
            "serial": dev["serial"],
            "firmware_version": dev["firmware_version"],
            "firmware_status": _firmware_status(dev["firmware_version"], approved),
            "approved_versions": sorted(approved),
            "settings_hash": current.hash if current else None,
            "settings_status": _settings_status(current, baseline),
            "settings_differences": len(deviation),
            "settings_critical": any(x.critical for x in deviation),
            "drift_tickets": tickets.get((site, device_id), []),
            "last_seen": _iso(dev["last_seen"]),
        }
        row["deviates"] = (
            row["firmware_status"] == "unapproved" or row["settings_status"] == "drift"
        )
        if row["deviates"] or not deviating_only:
            out.append(row)
    return out


def versions_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which versions run where: per (model, version), its devices and whether approved."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["model"] or "?", r["firmware_version"] or "?")
        g = groups.setdefault(
            key,
            {"model": key[0], "firmware_version": key[1], "status": r["firmware_status"],
             "devices": []},
        )  # fmt: skip
        g["devices"].append(f"{r['site']}/{r['device_id']}")
    return [groups[k] for k in sorted(groups)]
