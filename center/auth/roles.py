"""Roles and what each allows. One ladder, each role allowing what the one below it does:
the console and the REST API both ask `allows(role, permission)`, so a read-only token
and a viewer are refused the same things."""

from __future__ import annotations

from enum import StrEnum
from typing import get_args

from center.config import Role

ROLES: tuple[str, ...] = get_args(Role)  # viewer < operator < engineer < admin


class Permission(StrEnum):
    READ = "read"
    TICKET_ACTION = "ticket_action"  # acknowledge, resolve, close, note
    APPROVE_BASELINE = "approve_baseline"
    REMOTE_POLL = "remote_poll"
    MAINTENANCE = "maintenance"  # maintenance windows
    USERS = "users"


MINIMUM_ROLE: dict[Permission, str] = {
    Permission.READ: "viewer",
    Permission.TICKET_ACTION: "operator",
    Permission.APPROVE_BASELINE: "engineer",
    Permission.REMOTE_POLL: "engineer",
    Permission.MAINTENANCE: "admin",
    Permission.USERS: "admin",
}


def rank(role: str) -> int:
    """Position on the ladder; an unknown role (a hand-edited row) ranks below viewer."""
    return ROLES.index(role) if role in ROLES else -1


def allows(role: str, permission: Permission) -> bool:
    return rank(role) >= rank(MINIMUM_ROLE[permission])


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)} (found: {role!r})")
    return role
