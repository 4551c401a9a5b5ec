"""The fleet: gateways, devices, their firmware and settings reports, and the approved
firmware versions and settings baselines."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from center.store.schema.meta import TS, BigId, metadata, record_key

gateways = Table(
    "gateways",
    metadata,
    Column("gateway_id", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("online", Boolean, nullable=False, default=False),
    Column("agent_version", String(64)),
    Column("birth_session", BigInteger, nullable=False, default=-1),
    Column("birth_connection", Integer, nullable=False, default=0),
    Column("death_session", BigInteger, nullable=False, default=-1),
    Column("death_connection", Integer, nullable=False, default=0),
    Column("last_seen", TS, nullable=False),
    Column("outbox_depth", BigInteger),
    # Silence (center/gateway_silence.py): when the gateway is found silent unless heard
    # again (NULL: not watched), and since when it has been silent (NULL: it is not).
    Column("silent_due", TS),
    Column("silent_since", TS),
)

devices = Table(
    "devices",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("gateway_id", String(64), nullable=False),
    Column("protocol", String(32)),
    Column("profile", String(64)),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("manufacturer", String(128)),
    Column("model", String(128)),
    Column("serial", String(128)),
    Column("firmware_version", String(128)),
    Column("firmware_hash", String(64)),
    Column("settings_hash", String(64)),
)

firmware_reports = Table(
    "firmware_reports",
    metadata,
    *record_key(),
    Column("device_id", String(64)),
    Column("gateway_time", TS, nullable=False),
    Column("manufacturer", String(128)),
    Column("model", String(128)),
    Column("serial", String(128)),
    Column("firmware_version", String(128)),
    Column("checksum", String(128)),
    Column("hash", String(64), nullable=False),
    Column("details", Text, nullable=False),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "device_id", "gateway_time"),
)

settings_snapshots = Table(
    "settings_snapshots",
    metadata,
    *record_key(),
    Column("device_id", String(64)),
    Column("gateway_time", TS, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("previous_hash", String(64)),
    Column("reason", String(32), nullable=False),
    Column("settings", Text, nullable=False),
    Column("diff", Text, nullable=False),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "device_id", "gateway_time"),
)

# Approved firmware versions per model (docs/lifecycle.md): who approved, when and why.
firmware_approvals = Table(
    "firmware_approvals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False),
    Column("firmware_version", String(128), nullable=False),
    Column("approved_at", TS, nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("model", "firmware_version"),
)

# Approved settings per device, newest last: the newest row is the device's baseline.
settings_baselines = Table(
    "settings_baselines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("settings", Text, nullable=False),  # JSON {name: {value, unit, group, category}}
    Column("approved_at", TS, nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Index(None, "site", "device_id", "id"),
)
