"""Drift: a device's firmware or settings against its approved baseline, as ticket signals.

A drift is a condition (`firmware_drift`, `settings_drift`): raised while the device
deviates, cleared when it is back at its baseline or when the change is approved. A clear
needs no hold: the ticket resolves at once, by `auto` (back at baseline) or by whoever
approved. Settings drift is `critical` when a protection setting differs (a higher
priority ticket), else `minor`; firmware drift is `major`.

Without a baseline nothing drifts. With `lifecycle.adopt_first_*` (the default) the first
report becomes the baseline, recorded as an approval by `auto`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from center.baselines import baselines, classify
from center.config import LifecycleConfig
from center.device_time import record_time
from center.store import schema as s
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.engine import TicketEngine
from center.tickets.model import FIRMWARE_DRIFT, SETTINGS_DRIFT, Signal, ticket_key
from gateway import wire

Ref = tuple[str, int, int] | None


@dataclass(frozen=True)
class FirmwareState:
    """What a device runs, as far as drift is concerned."""

    site: str
    device_id: str
    gateway_id: str
    model: str | None  # the approvals key: see baselines.model_key
    version: str | None


@dataclass(frozen=True)
class SettingsState:
    site: str
    device_id: str
    gateway_id: str
    hash: str
    settings: dict[str, dict[str, Any]]


def firmware_signal(
    dev: FirmwareState, approved: set[str], at: datetime, ref: Ref = None
) -> Signal:
    raised = dev.version not in approved
    allowed = ", ".join(sorted(approved))
    summary = (
        f"{dev.device_id}: firmware {dev.version} is not approved for {dev.model} "
        f"(approved: {allowed})"
        if raised
        else f"{dev.device_id}: firmware {dev.version} is approved for {dev.model}"
    )
    return _drift(
        dev, FIRMWARE_DRIFT, raised=raised, severity="major", at=at, summary=summary, ref=ref
    )


def settings_signal(
    dev: SettingsState, baseline: baselines.SettingsBaseline, at: datetime, ref: Ref = None
) -> Signal:
    raised = dev.hash != baseline.hash
    diffs = classify.differences(baseline.settings, dev.settings) if raised else []
    summary = (
        classify.summary(dev.device_id, diffs)
        if raised
        else f"{dev.device_id}: settings match the baseline approved by {baseline.approved_by}"
    )
    severity = classify.severity(diffs) if raised else "info"
    return _drift(
        dev, SETTINGS_DRIFT, raised=raised, severity=severity, at=at, summary=summary, ref=ref
    )


def _drift(
    dev: FirmwareState | SettingsState,
    fault_class: str,
    *,
    raised: bool,
    severity: str,
    at: datetime,
    summary: str,
    ref: Ref,
) -> Signal:
    """A drift is a condition of one device: raised while it is off its baseline."""
    return Signal(
        site=dev.site,
        subject=dev.device_id,
        device_id=dev.device_id,
        gateway_id=dev.gateway_id,
        fault_class=fault_class,
        mode="condition",
        raised=raised,
        severity=severity,
        at=at,
        summary=summary,
        ref=ref,
    )


def snapshot_settings(r: wire.SettingsSnapshot) -> dict[str, dict[str, Any]]:
    return {name: entry.model_dump() for name, entry in r.settings.items()}


class DriftDetector:
    """Turns firmware reports, settings snapshots and approvals into drift signals, and
    hands them to the ticket engine in the caller's transaction."""

    def __init__(self, config: LifecycleConfig, tickets: TicketEngine) -> None:
        self.config = config
        self.tickets = tickets

    # --- ingest ------------------------------------------------------------------------

    def on_records(
        self, conn: Connection, uow: TicketUnitOfWork, records: Sequence[wire.Record]
    ) -> None:
        """Newly stored records (duplicates never get here)."""
        for r in records:
            if r.device_id is None:
                continue
            if isinstance(r, wire.FirmwareReport):
                profile = _device_profile(conn, r.site, r.device_id)
                dev = FirmwareState(
                    r.site,
                    r.device_id,
                    r.gateway_id,
                    baselines.model_key(r.model, profile),
                    r.firmware_version,
                )
                self.check_firmware(conn, uow, dev, record_time(r), ref=r.record_id)
            elif isinstance(r, wire.SettingsSnapshot):
                dev_settings = SettingsState(
                    r.site, r.device_id, r.gateway_id, r.hash, snapshot_settings(r)
                )
                self.check_settings(conn, uow, dev_settings, record_time(r), ref=r.record_id)

    def check_firmware(
        self,
        conn: Connection,
        uow: TicketUnitOfWork,
        dev: FirmwareState,
        at: datetime,
        *,
        ref: Ref = None,
        cleared_by: str = baselines.AUTO,
        why: str = "runs an approved firmware version",
    ) -> None:
        if dev.model is None or dev.version is None:
            return  # nothing to compare: the inventory shows the device as unknown
        approved = baselines.approved_versions(conn, dev.model)
        if not approved:
            if not self.config.adopt_first_firmware:
                return
            baselines.approve_firmware(
                conn, dev.model, dev.version, by=baselines.AUTO,
                reason=f"first version reported for this model (by {dev.device_id})",
                now=uow.now,
            )  # fmt: skip
            approved = {dev.version}
        self.emit(uow, firmware_signal(dev, approved, at, ref), cleared_by, why)

    def check_settings(
        self,
        conn: Connection,
        uow: TicketUnitOfWork,
        dev: SettingsState,
        at: datetime,
        *,
        ref: Ref = None,
        cleared_by: str = baselines.AUTO,
        why: str = "settings back at their baseline",
    ) -> None:
        baseline = baselines.current_settings(conn, dev.site, dev.device_id)
        if baseline is None:
            if not self.config.adopt_first_settings:
                return
            baselines.approve_settings(
                conn, dev.site, dev.device_id, dev.hash, dev.settings, by=baselines.AUTO,
                reason="first snapshot (adopted as the baseline)", now=uow.now,
            )  # fmt: skip
            return
        self.emit(uow, settings_signal(dev, baseline, at, ref), cleared_by, why)

    def emit(self, uow: TicketUnitOfWork, sig: Signal, cleared_by: str, why: str) -> None:
        """Raise, or clear and resolve at once. A clear of a device that never drifted is
        dropped: it would only add an idle condition row per device."""
        if not sig.raised:
            cond = uow.condition(ticket_key(sig.site, sig.subject, sig.fault_class))
            if cond is None or not cond.active:
                return
        self.tickets.on_signal(uow, sig)
        if not sig.raised:
            approved = cleared_by != baselines.AUTO
            self.tickets.resolve_cleared(uow, sig, cleared_by, why, even_if_flapping=approved)


# --- the current state of devices, for approvals ----------------------------------------


def _device_profile(conn: Connection, site: str, device_id: str) -> str | None:
    d = s.devices.c
    row = conn.execute(select(d.profile).where(d.site == site, d.device_id == device_id)).first()
    return row[0] if row is not None else None


def firmware_states(conn: Connection, model: str | None = None) -> list[FirmwareState]:
    """Every device's current firmware (optionally only those of one approvals key)."""
    d = s.devices.c
    out = []
    for row in conn.execute(select(s.devices).order_by(d.site, d.device_id)).mappings():
        key = baselines.model_key(row["model"], row["profile"])
        if model is None or key == model:
            out.append(
                FirmwareState(
                    row["site"], row["device_id"], row["gateway_id"], key, row["firmware_version"]
                )
            )
    return out


def latest_settings(conn: Connection, site: str, device_id: str) -> SettingsState | None:
    """The device's newest snapshot (by gateway time, then arrival)."""
    st = s.settings_snapshots.c
    row = (
        conn.execute(
            select(s.settings_snapshots)
            .where(st.site == site, st.device_id == device_id)
            .order_by(st.gateway_time.desc(), st.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return SettingsState(
        row["site"], device_id, row["gateway_id"], row["hash"], json.loads(row["settings"])
    )


def snapshot_with_hash(
    conn: Connection, site: str, device_id: str, content_hash: str
) -> dict[str, dict[str, Any]] | None:
    st = s.settings_snapshots.c
    row = conn.execute(
        select(st.settings)
        .where(st.site == site, st.device_id == device_id, st.hash == content_hash)
        .order_by(st.id.desc())
        .limit(1)
    ).first()
    return json.loads(row[0]) if row is not None else None
