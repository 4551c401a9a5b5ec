"""The action audit: every change a person makes (ticket actions, approvals, polls,
maintenance windows, users, logins), with who, in which role, through what, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from center.store import schema as s
from center.store.db import as_utc


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    role: str,
    via: str,
    action: str,
    target: str,
    detail: str = "",
    ticket_id: int | None = None,
) -> None:
    conn.execute(
        s.console_actions.insert().values(
            at=at,
            actor=actor[:64],
            role=role,
            via=via,
            action=action,
            target=target[:160],
            ticket_id=ticket_id,
            detail=detail[:4000],
        )
    )


def recent(conn: Connection, limit: int = 50, ticket_id: int | None = None) -> list[dict[str, Any]]:
    a = s.console_actions.c
    q = select(s.console_actions).order_by(a.id.desc()).limit(limit)
    if ticket_id is not None:
        q = q.where(a.ticket_id == ticket_id)
    return [{**r, "at": as_utc(r["at"])} for r in conn.execute(q).mappings()]
