"""People's approvals, each in one transaction with its effect on drift tickets.

Approving a firmware version for a model resolves the drift tickets of every device of
that model that runs it. Approving a device's settings (its newest snapshot, or an older
one by hash) makes them its baseline and re-checks the device against it: the ticket
resolves when the device now matches, and a drift opens when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from center.baselines import baselines, drift
from center.errors import CenterError
from center.store.db import lock_site
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.engine import TicketEngine


class ApprovalError(CenterError):
    """An approval that names something the store does not have."""


@dataclass
class ApprovalResult:
    approval: dict[str, Any]
    new: bool = True
    tickets_changed: list[int] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {**self.approval, "new": self.new, "tickets_changed": self.tickets_changed}


class BaselineService:
    def __init__(self, engine: Engine, tickets: TicketEngine, endpoints: list[str]) -> None:
        self.engine = engine
        self.tickets = tickets
        self.endpoints = endpoints
        self.detector = drift.DriftDetector(tickets.config.lifecycle, tickets)

    def approve_firmware(self, model: str, version: str, by: str, reason: str) -> ApprovalResult:
        now = self.tickets.clock.now()
        with self.engine.begin() as conn:
            devices = drift.firmware_states(conn, model)
            for site in sorted({d.site for d in devices}):
                lock_site(conn, site)
            new = baselines.approve_firmware(conn, model, version, by=by, reason=reason, now=now)
            uow = TicketUnitOfWork(conn, now, self.endpoints)
            for dev in devices:
                if dev.version == version:
                    self.detector.check_firmware(
                        conn, uow, dev, now, cleared_by=by, why=f"approved: {reason}"
                    )
            changed = uow.flush()
        approval = {
            "model": model,
            "firmware_version": version,
            "approved_by": by,
            "approved_at": now.isoformat(),
            "reason": reason,
        }
        return ApprovalResult(approval, new, [t.id for t in changed if t.id is not None])

    def approve_settings(
        self, site: str, device_id: str, by: str, reason: str, content_hash: str | None = None
    ) -> ApprovalResult:
        """Approve the device's newest snapshot, or the snapshot with `content_hash`."""
        now = self.tickets.clock.now()
        with self.engine.begin() as conn:
            lock_site(conn, site)
            current = drift.latest_settings(conn, site, device_id)
            if current is None:
                raise ApprovalError(f"device {site}/{device_id}: no settings snapshot stored")
            wanted = content_hash or current.hash
            settings = drift.snapshot_with_hash(conn, site, device_id, wanted)
            if settings is None:
                raise ApprovalError(f"device {site}/{device_id}: no snapshot with hash {wanted!r}")
            baseline = baselines.approve_settings(
                conn, site, device_id, wanted, settings, by=by, reason=reason, now=now
            )
            uow = TicketUnitOfWork(conn, now, self.endpoints)
            self.detector.check_settings(
                conn, uow, current, now, cleared_by=by, why=f"approved: {reason}"
            )
            changed = uow.flush()
        return ApprovalResult(
            baselines.baseline_document(baseline),
            True,
            [t.id for t in changed if t.id is not None],
        )
