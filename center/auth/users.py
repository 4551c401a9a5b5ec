"""Console users: add, change password or role, remove, authenticate. Each change is
recorded in the action audit in the same transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select, update

from center.auth import audit, passwords
from center.auth.roles import check_role
from center.store import schema as s

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UserError(ValueError):
    """A user change that cannot be made; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    role: str


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise UserError(
            "username: expected 1-64 letters, digits, '.', '_', '@' or '-', "
            f"starting with a letter or digit (found: {username!r})"
        )
    return username


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self, username: str, password: str, role: str, *, by: str, via: str, now: datetime
    ) -> User:
        check_username(username)
        try:
            check_role(role)
            hashed = passwords.hash_password(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        u = s.console_users.c
        with self.engine.begin() as conn:
            if conn.execute(select(u.username).where(u.username == username)).first():
                raise UserError(f"user {username!r} exists already (change it with passwd)")
            conn.execute(
                s.console_users.insert().values(
                    username=username, password_hash=hashed, role=role, created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
            audit.record(
                conn, at=now, actor=by, role="admin", via=via, action="user_add",
                target=username, detail=f"role {role}",
            )  # fmt: skip
        return User(username, role)

    def set_password(
        self, username: str, password: str, *, by: str, via: str, now: datetime
    ) -> None:
        try:
            hashed = passwords.hash_password(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        change = {"password_hash": hashed}
        self._change(username, change, by=by, via=via, now=now, action="user_passwd", detail="")

    def set_role(self, username: str, role: str, *, by: str, via: str, now: datetime) -> None:
        try:
            check_role(role)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self._change(
            username, {"role": role}, by=by, via=via, now=now, action="user_role",
            detail=f"role {role}",
        )  # fmt: skip

    def _change(
        self,
        username: str, values: dict[str, str], *, by: str, via: str, now: datetime,
        action: str, detail: str,
    ) -> None:  # fmt: skip
        u = s.console_users.c
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(s.console_users)
                .where(u.username == username)
                .values(**values, updated_at=now)
            ).rowcount
            if not changed:
                raise UserError(f"no user {username!r}")
            # A new password or role ends the user's sessions: log in again.
            conn.execute(
                delete(s.console_sessions).where(s.console_sessions.c.username == username)
            )
            audit.record(
                conn, at=now, actor=by, role="admin", via=via, action=action, target=username,
                detail=detail,
            )  # fmt: skip

    def remove(self, username: str, *, by: str, via: str, now: datetime) -> None:
        u = s.console_users.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(s.console_sessions).where(s.console_sessions.c.username == username)
            )
            if not conn.execute(delete(s.console_users).where(u.username == username)).rowcount:
                raise UserError(f"no user {username!r}")
            audit.record(
                conn, at=now, actor=by, role="admin", via=via, action="user_remove",
                target=username,
            )  # fmt: skip

    def list(self) -> list[User]:
        u = s.console_users.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(u.username, u.role).order_by(u.username)).all()
        return [User(name, role) for name, role in rows]

    def authenticate(self, username: str, password: str, now: datetime) -> User | None:
        """The user when the password is right. Costs one argon2 run whether or not the
        user exists; upgrades a hash made with older parameters."""
        u = s.console_users.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(u.password_hash, u.role).where(u.username == username)
            ).first()
        if not passwords.verify(row[0] if row else None, password) or row is None:
            return None
        if passwords.needs_rehash(row[0]):
            with self.engine.begin() as conn:
                conn.execute(
                    update(s.console_users)
                    .where(u.username == username)
                    .values(password_hash=passwords.rehash(password), updated_at=now)
                )
        return User(username, row[1])
