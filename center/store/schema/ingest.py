"""What the ingest keeps: records (stored once by id), gateways' lifecycle records, the
sequence of each session, and what was rejected or set apart."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from center.store.schema.meta import TS, BigId, metadata

# Every record that has an id (gateway, session, seq), stored once.
records = Table(
    "records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("site", String(64), nullable=False),
    Column("device_id", String(64)),
    Column("event_time", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("signal", String(16)),
    Column("point", String(128)),
    Column("severity", String(16)),
    Column("value", String(128)),
    Column("code", String(64)),
    Column("body", Text, nullable=False),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "device_id", "event_time"),
)

# Birth, death, health: identified by (gateway, session, kind, connection).
lifecycle = Table(
    "lifecycle",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("connection", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("site", String(64), nullable=False),
    Column("gateway_time", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("gateway_id", "session", "kind", "connection"),
)

# Per (gateway, session): the highest seq seen and the ranges still missing below it.
sequences = Table(
    "sequences",
    metadata,
    Column("gateway_id", String(64), primary_key=True),
    Column("session", BigInteger, primary_key=True),
    Column("site", String(64), nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("missing", Text, nullable=False),  # JSON [[first, last], ...]
    Column("updated_at", TS, nullable=False),
)

rejected_messages = Table(
    "rejected_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", TS, nullable=False),
    Column("topic", String(512), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("excerpt", Text, nullable=False),  # printable, for a glance
    Column("payload", LargeBinary),  # as received, up to wire.MAX_PAYLOAD_BYTES
    # sha256 of topic and whole payload: a redelivered message is kept once (NULL before 0009)
    Column("digest", String(64)),
    Index(None, "digest", unique=True),
)

# Records set apart one by one (invalid, unstorable, conflicting with a stored record of
# the same id) and messages whose storage failed: content kept in full, as bytes, so that
# writing here cannot fail on what the content holds (center/quarantine.py).
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", TS, nullable=False),
    Column("scope", String(8), nullable=False),  # record | message
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("topic", String(512), nullable=False),
    Column("record_index", Integer),
    Column("gateway_id", String(64)),
    Column("session", BigInteger),
    Column("seq", BigInteger),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    # sha256 of scope, topic and content: a redelivered message or a resent record is
    # set apart once (NULL before 0009)
    Column("digest", String(64)),
    Index(None, "received_at"),
    Index(None, "digest", unique=True),
    Index(None, "gateway_id", "session", "seq"),
)
