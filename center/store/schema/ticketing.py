"""Tickets: conditions, tickets with their members and timeline, maintenance windows, and
the webhook outbox their changes are sent from."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from center.store.schema.meta import TS, BigId, metadata

# A condition's current state, kept even while no ticket is open (maintenance, flapping).
conditions = Table(
    "conditions",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("fault_class", String(96), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("changed_at", TS, nullable=False),
    Column("transitions", Text, nullable=False),  # JSON list of ISO times, newest last
    Column("flapping", Boolean, nullable=False, default=False),
    Column("suppressed", Boolean, nullable=False, default=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(256), nullable=False),
    Column("site", String(64), nullable=False),
    Column("subject", String(80), nullable=False),  # device id, or "@gateway" for site level
    Column("device_id", String(64)),
    Column("fault_class", String(96), nullable=False),
    Column("kind", String(16), nullable=False),  # discrete | condition
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved | closed
    Column("muted", Boolean, nullable=False, default=False),
    Column("parent_id", BigId, ForeignKey("tickets.id")),
    Column("episode", Integer, nullable=False, default=1),
    Column("previous_ticket_id", BigId, ForeignKey("tickets.id")),
    Column("priority", String(4), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("criticality", String(8), nullable=False),
    Column("region", String(64), nullable=False),
    Column("service_point", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("occurrences", Integer, nullable=False, default=1),
    Column("reopen_count", Integer, nullable=False, default=0),
    Column("flapping", Boolean, nullable=False, default=False),
    Column("condition_active", Boolean, nullable=False, default=False),
    Column("clear_since", TS),
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("first_event_at", TS, nullable=False),
    Column("last_event_at", TS, nullable=False),
    Column("acknowledged_at", TS),
    Column("acknowledged_by", String(64)),
    Column("resolved_at", TS),
    Column("resolved_by", String(64)),
    Column("root_cause", String(64)),
    Column("note", Text),
    Column("closed_at", TS),
    Column("closed_by", String(64)),
    Column("revision", Integer, nullable=False, default=1),
    Index(None, "site", "fault_class", "state"),
    Index(None, "state", "updated_at"),
    # One active ticket per key, on both backends.
    Index(
        "uq_tickets_active_key",
        "key",
        unique=True,
        sqlite_where=text("state IN ('open', 'acknowledged')"),
        postgresql_where=text("state IN ('open', 'acknowledged')"),
    ),
)

# The subjects (devices, "@gateway") whose events a ticket groups.
ticket_members = Table(
    "ticket_members",
    metadata,
    Column("ticket_id", BigId, ForeignKey("tickets.id"), primary_key=True),
    Column("subject", String(80), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("fault_class", String(96), nullable=False),
    Index(None, "site", "subject", "fault_class"),
)

timeline = Table(
    "ticket_timeline",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ticket_id", BigId, ForeignKey("tickets.id"), nullable=False),
    Column("at", TS, nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("entry", String(32), nullable=False),
    Column("subject", String(80)),
    Column("summary", Text, nullable=False),
    Column("gateway_id", String(64)),
    Column("session", BigInteger),
    Column("seq", BigInteger),
    Index(None, "ticket_id", "at"),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("device_id", String(64)),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Index(None, "site", "ends_at"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint", String(64), nullable=False),
    Column("ticket_id", BigId, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("delivered_at", TS),
    Column("dead", Boolean, nullable=False, default=False),
    Column("last_error", Text),
    Index(None, "endpoint", "delivered_at", "next_attempt_at"),
    Index(None, "endpoint", "ticket_id", "id"),
)
