"""The center's tables (SQLAlchemy Core). Alembic migrations in center/migrations create them;
a test checks that the migrations and these modules agree.

Split by area, one module each: `ingest`, `fleet`, `ticketing`, `analytics`, `console`,
`disturbance`; `meta` holds the metadata they share. Import the tables from here:
`from center.store import schema as s`, then `s.tickets`.
"""

from __future__ import annotations

from center.store.schema.analytics import ageing_scores, analytics_runs, clock_quality
from center.store.schema.console import console_actions, console_sessions, console_users
from center.store.schema.disturbance import disturbance_chunks, disturbance_records, fault_reports
from center.store.schema.fleet import (
    devices,
    firmware_approvals,
    firmware_reports,
    gateways,
    settings_baselines,
    settings_snapshots,
)
from center.store.schema.ingest import lifecycle, quarantine, records, rejected_messages, sequences
from center.store.schema.meta import metadata
from center.store.schema.ticketing import (
    conditions,
    maintenance_windows,
    ticket_members,
    tickets,
    timeline,
    webhook_outbox,
)

__all__ = [
    "ageing_scores",
    "analytics_runs",
    "clock_quality",
    "conditions",
    "console_actions",
    "console_sessions",
    "console_users",
    "devices",
    "disturbance_chunks",
    "disturbance_records",
    "fault_reports",
    "firmware_approvals",
    "firmware_reports",
    "gateways",
    "lifecycle",
    "maintenance_windows",
    "metadata",
    "quarantine",
    "records",
    "rejected_messages",
    "sequences",
    "settings_baselines",
    "settings_snapshots",
    "ticket_members",
    "tickets",
    "timeline",
    "webhook_outbox",
]
