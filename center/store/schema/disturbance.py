"""Disturbance records, the chunks of those still arriving, and fault reports."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from center.store.schema.meta import TS, BigId, metadata, record_key

# A disturbance record: its manifest's metadata from the moment it arrives (status
# `receiving`), its COMTRADE files and analysis once every chunk arrived and the SHA-256
# matched (`complete`), or why it was refused (`refused`: nothing of its content is kept).
disturbance_records = Table(
    "disturbance_records",
    metadata,
    *record_key(),
    Column("device_id", String(64), nullable=False),
    Column("fault_number", Integer, nullable=False),
    Column("trigger_time", TS, nullable=False),
    Column("first_sample_time", TS, nullable=False),
    Column("sample_rate_hz", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("channels", Text, nullable=False),  # JSON {"analog": [...], "digital": [...]}
    Column("size", BigInteger, nullable=False),
    Column("cfg_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("received_chunks", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),  # receiving | complete | refused
    Column("failure", Text),
    Column("received_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("ticket_id", BigId, ForeignKey("tickets.id")),
    Column("analysis", Text),  # JSON, see center/disturbance/analysis.py
    Column("cfg", LargeBinary),
    Column("dat", LargeBinary),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "trigger_time"),
    Index(None, "status", "updated_at"),
    Index(None, "ticket_id"),
)

# Chunks of transfers still receiving; deleted when the record completes or is refused.
disturbance_chunks = Table(
    "disturbance_chunks",
    metadata,
    Column("record_id", BigId, ForeignKey("disturbance_records.id"), primary_key=True),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

fault_reports = Table(
    "fault_reports",
    metadata,
    *record_key(),
    Column("device_id", String(64)),
    Column("fault_time", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("report", Text, nullable=False),  # JSON: type, phases, distance, currents, trip time
    Column("ticket_id", BigId, ForeignKey("tickets.id")),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "fault_time"),
    Index(None, "ticket_id"),
)
