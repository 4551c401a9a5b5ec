"""The center's tables (SQLAlchemy Core). Alembic migrations in center/migrations create them;
a test checks that the migrations and this module agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TS = DateTime(timezone=True)

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
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("site", String(64), nullable=False),
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
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("site", String(64), nullable=False),
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
    Index(None, "received_at"),
    Index(None, "gateway_id", "session", "seq"),
)

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

# Clock quality per relay (center/analytics/clock.py): recent offsets of its spontaneous
# events against the gateway's receive time, its own time flags and the verdict.
clock_quality = Table(
    "clock_quality",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("gateway_id", String(64), nullable=False),
    Column("samples", Text, nullable=False),  # JSON [[gateway epoch s, offset ms], ...]
    Column("recent_flags", String(64), nullable=False),  # newest last: v valid, u SU, i, s
    Column("timed_events", BigInteger, nullable=False),
    Column("invalid_events", BigInteger, nullable=False),
    Column("substituted_events", BigInteger, nullable=False),
    Column("summer_time_events", BigInteger, nullable=False, server_default="0"),
    Column("last_event_at", TS),
    Column("last_sync_at", TS),
    Column("last_sync_valid", Boolean),
    Column("sample_count", Integer, nullable=False),
    Column("p50_ms", Float),
    Column("p95_abs_ms", Float),
    Column("drift_ms_per_day", Float),
    Column("verdict", String(16), nullable=False),
    Column("bad", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# The daily ageing job's latest score per device (center/analytics/ageing.py).
ageing_scores = Table(
    "ageing_scores",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("model", String(160)),
    Column("scored_at", TS, nullable=False),
    Column("risk", Float, nullable=False),
    Column("age_years", Float, nullable=False),
    Column("design_life_years", Float, nullable=False),
    Column("commissioned_at", TS, nullable=False),
    Column("commissioned_from", String(16), nullable=False),  # config | first_seen
    Column("details", Text, nullable=False),  # JSON: rates, tests, wear
    Column("explanation", Text, nullable=False),
    Index(None, "risk"),
)

# When each periodic analytics job last ran, so restarts and several centers run it once.
analytics_runs = Table(
    "analytics_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("summary", Text, nullable=False),
)

# The web console's people (docs/console.md): a password hash (argon2id) and one role.
console_users = Table(
    "console_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# Logged-in browsers. `id` is the SHA-256 of the cookie's secret, so a copy of the
# database does not hand out live sessions; `csrf` is the token every form must carry.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Index(None, "username"),
)

# Who did what and when, through the console, the API or the CLI.
console_actions = Table(
    "console_actions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("via", String(8), nullable=False),  # console | api | cli
    Column("action", String(32), nullable=False),
    Column("target", String(160), nullable=False),
    Column("ticket_id", BigId),
    Column("detail", Text, nullable=False),
    Index(None, "ticket_id"),
    Index(None, "at"),
)

# A disturbance record: its manifest's metadata from the moment it arrives (status
# `receiving`), its COMTRADE files and analysis once every chunk arrived and the SHA-256
# matched (`complete`), or why it was refused (`refused`: nothing of its content is kept).
disturbance_records = Table(
    "disturbance_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("site", String(64), nullable=False),
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
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("session", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("site", String(64), nullable=False),
    Column("device_id", String(64)),
    Column("fault_time", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("report", Text, nullable=False),  # JSON: type, phases, distance, currents, trip time
    Column("ticket_id", BigId, ForeignKey("tickets.id")),
    UniqueConstraint("gateway_id", "session", "seq"),
    Index(None, "site", "fault_time"),
    Index(None, "ticket_id"),
)
