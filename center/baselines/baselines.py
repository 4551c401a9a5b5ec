"""Approved baselines in the store: firmware versions per model, settings per device.

Runs inside the caller's transaction. An approval row is also the audit record: who
approved, when and why. A firmware approval is per (model, version), once; a settings
baseline is the newest approval row of the device, earlier rows are its history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from center.store import schema as s
from center.store.db import as_utc, insert

AUTO = "auto"  # who adopted a first report as the baseline (config `lifecycle.adopt_first_*`)


@dataclass(frozen=True)
class SettingsBaseline:
    site: str
    device_id: str
    hash: str
    settings: dict[str, dict[str, Any]]
    approved_at: datetime
    approved_by: str
    reason: str


def model_key(model: str | None, profile: str | None) -> str | None:
    """What firmware approvals are keyed by: the reported model, else the device profile
    (IEC 103 relays report a manufacturer and software id, no model)."""
    return model or (f"profile:{profile}" if profile else None)


def approved_versions(conn: Connection, model: str) -> set[str]:
    f = s.firmware_approvals.c
    rows = conn.execute(select(f.firmware_version).where(f.model == model))
    return {version for (version,) in rows}


def approve_firmware(
    conn: Connection, model: str, version: str, *, by: str, reason: str, now: datetime
) -> bool:
    """Record an approval; False when that version was already approved for the model."""
    stmt = (
        insert(s.firmware_approvals, conn)
        .values(model=model, firmware_version=version, approved_at=now, approved_by=by,
                reason=reason)
        .on_conflict_do_nothing()
        .returning(s.firmware_approvals.c.id)
    )  # fmt: skip
    return conn.execute(stmt).first() is not None


def firmware_approvals(conn: Connection, model: str | None = None) -> list[dict[str, Any]]:
    f = s.firmware_approvals.c
    query = select(s.firmware_approvals).order_by(f.model, f.approved_at, f.id)
    if model is not None:
        query = query.where(f.model == model)
    return [
        {
            "model": r["model"],
            "firmware_version": r["firmware_version"],
            "approved_at": _iso(r["approved_at"]),
            "approved_by": r["approved_by"],
            "reason": r["reason"],
        }
        for r in conn.execute(query).mappings()
    ]


def current_settings(conn: Connection, site: str, device_id: str) -> SettingsBaseline | None:
    b = s.settings_baselines.c
    row = (
        conn.execute(
            select(s.settings_baselines)
            .where(b.site == site, b.device_id == device_id)
            .order_by(b.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _baseline(row) if row is not None else None


def settings_approvals(conn: Connection, site: str, device_id: str) -> list[SettingsBaseline]:
    """Every settings approval of a device, oldest first (the last is the baseline)."""
    b = s.settings_baselines.c
    rows = conn.execute(
        select(s.settings_baselines).where(b.site == site, b.device_id == device_id).order_by(b.id)
    ).mappings()
    return [_baseline(r) for r in rows]


def all_settings_baselines(conn: Connection) -> dict[tuple[str, str], SettingsBaseline]:
    """The current baseline of every device that has one."""
    out: dict[tuple[str, str], SettingsBaseline] = {}
    b = s.settings_baselines.c
    for row in conn.execute(select(s.settings_baselines).order_by(b.id)).mappings():
        out[(row["site"], row["device_id"])] = _baseline(row)  # newest wins
    return out


def approve_settings(
    conn: Connection,
    site: str,
    device_id: str,
    content_hash: str,
    settings: dict[str, dict[str, Any]],
    *,
    by: str,
    reason: str,
    now: datetime,
) -> SettingsBaseline:
    conn.execute(
        s.settings_baselines.insert().values(
            site=site,
            device_id=device_id,
            hash=content_hash,
            settings=json.dumps(settings, sort_keys=True),
            approved_at=now,
            approved_by=by,
            reason=reason,
        )
    )
    return SettingsBaseline(site, device_id, content_hash, settings, now, by, reason)


def baseline_document(b: SettingsBaseline) -> dict[str, Any]:
    return {
        "site": b.site,
        "device_id": b.device_id,
        "hash": b.hash,
        "approved_at": b.approved_at.isoformat(),
        "approved_by": b.approved_by,
        "reason": b.reason,
    }


def _baseline(row: Any) -> SettingsBaseline:
    return SettingsBaseline(
        site=row["site"],
        device_id=row["device_id"],
        hash=row["hash"],
        settings=json.loads(row["settings"]),
        approved_at=as_utc(row["approved_at"]) or row["approved_at"],
        approved_by=row["approved_by"],
        reason=row["reason"],
    )


def _iso(value: datetime | None) -> str | None:
    v = as_utc(value)
    return v.isoformat() if v is not None else None
