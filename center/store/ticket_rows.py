"""Tickets and conditions as rows and back, and the statements that write them: the
pieces `TicketUnitOfWork` (center/store/ticket_repo.py) and the read side share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, update

from center.store import schema as s
from center.store.db import as_utc, insert
from center.tickets.model import Condition, Ticket

TICKET_COLUMNS = [f.name for f in fields(Ticket) if f.name not in ("members",)]
TS_FIELDS = {
    "opened_at",
    "updated_at",
    "first_event_at",
    "last_event_at",
    "clear_since",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
}
UPDATABLE = [name for name in TICKET_COLUMNS if name != "id"]
# Built once: statements built per call with .values(dict) cost more than the SQL itself.
INSERT_TICKET = s.tickets.insert()
UPDATE_TICKET = (
    update(s.tickets)
    .where(s.tickets.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in UPDATABLE})
)
INSERT_OUTBOX = s.webhook_outbox.insert().inline()  # no RETURNING: written in a pipeline
_CONDITION_FIELDS = [
    "site",
    "subject",
    "fault_class",
    "active",
    "changed_at",
    "transitions",
    "flapping",
    "suppressed",
    "severity",
    "summary",
]
_dialect_statements: dict[str, dict[str, Executable]] = {}


def dialect_statements(conn: Connection) -> dict[str, Executable]:
    """The member insert and the condition upsert, in this connection's dialect."""
    name = conn.dialect.name
    if name not in _dialect_statements:
        member = insert(s.ticket_members, conn).on_conflict_do_nothing()
        cond = insert(s.conditions, conn)
        upsert = cond.on_conflict_do_update(
            index_elements=["key"],
            set_={f: getattr(cond.excluded, f) for f in _CONDITION_FIELDS},
        )
        _dialect_statements[name] = {"member": member, "condition": upsert}
    return _dialect_statements[name]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ticket_document(t: Ticket, changes: list[str] | None = None) -> dict[str, Any]:
    """A ticket as JSON-ready data: what the API returns and the webhook sends."""
    doc: dict[str, Any] = {}
    for name in TICKET_COLUMNS:
        value = getattr(t, name)
        doc[name] = _iso(value) if name in TS_FIELDS else value
    doc["devices"] = sorted(m for m in t.members if not m.startswith("@"))
    doc["members"] = sorted(t.members)
    if changes is not None:
        doc["changes"] = changes
    return doc


def ticket_from_row(row: Mapping[Any, Any], members: set[str]) -> Ticket:
    values = {name: row[name] for name in TICKET_COLUMNS}
    for name in TS_FIELDS:
        values[name] = as_utc(values[name])
    return Ticket(**values, members=members)


def condition_row(cond: Condition) -> dict[str, Any]:
    return {
        "key": cond.key,
        "site": cond.site,
        "subject": cond.subject,
        "fault_class": cond.fault_class,
        "active": cond.active,
        "changed_at": cond.changed_at,
        "transitions": json.dumps([t.isoformat() for t in cond.transitions]),
        "flapping": cond.flapping,
        "suppressed": cond.suppressed,
        "severity": cond.severity,
        "summary": cond.summary,
    }


def condition_from_row(row: Mapping[Any, Any]) -> Condition:
    return Condition(
        key=row["key"],
        site=row["site"],
        subject=row["subject"],
        fault_class=row["fault_class"],
        active=row["active"],
        changed_at=as_utc(row["changed_at"]) or datetime.fromisoformat(row["changed_at"]),
        severity=row["severity"],
        summary=row["summary"],
        transitions=[datetime.fromisoformat(x) for x in json.loads(row["transitions"])],
        flapping=row["flapping"],
        suppressed=row["suppressed"],
    )
