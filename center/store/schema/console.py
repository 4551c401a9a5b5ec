"""The web console's people, their sessions, and the audit of who did what."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    String,
    Table,
    Text,
)

from center.store.schema.meta import TS, BigId, metadata

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
