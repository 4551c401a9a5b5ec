"""Console sessions: a random secret in an HttpOnly, SameSite=Strict cookie; the database
keeps only its SHA-256, the user, a CSRF token for the session's forms, and when it
expires (idle, and at most `session_max_s` after login). The user's role is read on each
request, so a changed role or a removed user takes effect at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from center.config import ConsoleConfig
from center.store import schema as s
from center.store.db import as_utc

COOKIE = "relay_console"
TOUCH_EVERY = timedelta(seconds=60)  # last_seen is written at most this often


@dataclass(frozen=True)
class Session:
    username: str
    role: str
    csrf: str

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionExpired(Exception):
    """The cookie named a session that has ended (idle, too old, or logged out)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, config: ConsoleConfig) -> None:
        self.engine = engine
        self.config = config

    def create(self, username: str, now: datetime) -> str:
        """A new session; returns the cookie's secret. Old expired rows are swept here."""
        token = secrets.token_urlsafe(32)
        c = s.console_sessions.c
        with self.engine.begin() as conn:
            conn.execute(delete(s.console_sessions).where(c.expires_at < now))
            conn.execute(
                s.console_sessions.insert().values(
                    id=_digest(token),
                    username=username,
                    csrf=secrets.token_urlsafe(32),
                    created_at=now,
                    last_seen=now,
                    expires_at=now + timedelta(seconds=self.config.session_max_s),
                )
            )
        return token

    def lookup(self, token: str | None, now: datetime) -> Session | None:
        """The live session for a cookie; None without a cookie; SessionExpired when the
        cookie names a session that has ended."""
        if not token:
            return None
        c, u = s.console_sessions.c, s.console_users.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.id, c.username, c.csrf, c.last_seen, c.expires_at, u.role)
                .join(s.console_users, u.username == c.username)
                .where(c.id == _digest(token))
            ).first()
        if row is None:
            raise SessionExpired
        last_seen = as_utc(row.last_seen) or now
        idle_end = last_seen + timedelta(seconds=self.config.session_idle_s)
        if now >= (as_utc(row.expires_at) or now) or now >= idle_end:
            self.end(token)
            raise SessionExpired
        if now - last_seen >= TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(s.console_sessions).where(c.id == row.id).values(last_seen=now))
        return Session(row.username, row.role, row.csrf)

    def end(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(s.console_sessions).where(s.console_sessions.c.id == _digest(token))
            )
