"""Ticket storage for one transaction: the ticket engine decides, this loads and writes.

`TicketUnitOfWork` is the store's implementation of the engine's `UnitOfWork` protocol
(center.tickets.unit_of_work): the store imports the ticket model, never the reverse.
It wraps one open connection (one transaction). It keeps an identity map of the tickets
it loaded, so a batch of 200 records touching one ticket reads it once and writes it
once; `flush()` writes every changed ticket with revision + 1, its timeline entries, and
one webhook outbox row per endpoint, all in the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, and_, bindparam, func, select, update
from sqlalchemy.engine import RowMapping

from center.store import schema as s
from center.store.bulk import insert_rows
from center.store.db import as_utc, insert
from center.tickets.model import ACTIVE, Condition, Ticket, TimelineEntry
from center.tickets.policy import Window
from center.tickets.unit_of_work import UnitOfWork

_TICKET_COLUMNS = [f.name for f in fields(Ticket) if f.name not in ("members",)]
_TS_FIELDS = {
    "opened_at",
    "updated_at",
    "first_event_at",
    "last_event_at",
    "clear_since",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
}


_UPDATABLE = [name for name in _TICKET_COLUMNS if name != "id"]
# Built once: statements built per call with .values(dict) cost more than the SQL itself.
_INSERT_TICKET = s.tickets.insert()
_UPDATE_TICKET = (
    update(s.tickets)
    .where(s.tickets.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _UPDATABLE})
)
_INSERT_OUTBOX = s.webhook_outbox.insert()
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


def _statements(conn: Connection) -> dict[str, Executable]:
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
    for name in _TICKET_COLUMNS:
        value = getattr(t, name)
        doc[name] = _iso(value) if name in _TS_FIELDS else value
    doc["devices"] = sorted(m for m in t.members if not m.startswith("@"))
    doc["members"] = sorted(t.members)
    if changes is not None:
        doc["changes"] = changes
    return doc


def ticket_from_row(row: RowMapping, members: set[str]) -> Ticket:
    values = {name: row[name] for name in _TICKET_COLUMNS}
    for name in _TS_FIELDS:
        values[name] = as_utc(values[name])
    return Ticket(**values, members=members)


class TicketUnitOfWork(UnitOfWork):
    def __init__(self, conn: Connection, now: datetime, endpoints: list[str]) -> None:
        self.conn = conn
        self.now = now
        self.endpoints = endpoints
        self._tickets: dict[int, Ticket] = {}
        self._active: dict[tuple[str, str], list[Ticket]] = {}
        self._conditions: dict[str, Condition | None] = {}
        self._dirty_conditions: set[str] = set()
        self._windows: dict[str, list[Window]] = {}
        self._changes: dict[int, list[str]] = {}
        self._timeline: list[dict[str, Any]] = []
        self._notify_muted: set[int] = set()
        self.counters: dict[str, int] = {}

    # --- loading ---------------------------------------------------------------------

    def _members(self, ids: list[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {i: set() for i in ids}
        if ids:
            rows = self.conn.execute(
                select(s.ticket_members.c.ticket_id, s.ticket_members.c.subject).where(
                    s.ticket_members.c.ticket_id.in_(ids)
                )
            )
            for tid, subject in rows:
                out[tid].add(subject)
        return out

    def _load(self, where: Any, limit: int | None = None, order: Any = None) -> list[Ticket]:
        query = select(s.tickets).where(where)
        if order is not None:
            query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        rows = self.conn.execute(query).mappings().all()
        fresh = [r["id"] for r in rows if r["id"] not in self._tickets]
        members = self._members(fresh)
        out = []
        for row in rows:
            if row["id"] not in self._tickets:
                self._tickets[row["id"]] = ticket_from_row(row, members[row["id"]])
            out.append(self._tickets[row["id"]])
        return out

    def find(self, where: Any) -> list[Ticket]:
        return self._load(where)

    def get(self, ticket_id: int) -> Ticket | None:
        if ticket_id in self._tickets:
            return self._tickets[ticket_id]
        found = self._load(s.tickets.c.id == ticket_id)
        return found[0] if found else None

    def _active_list(self, site: str, fault_class: str) -> list[Ticket]:
        key = (site, fault_class)
        if key not in self._active:
            self._active[key] = self._load(
                and_(
                    s.tickets.c.site == site,
                    s.tickets.c.fault_class == fault_class,
                    s.tickets.c.state.in_(ACTIVE),
                )
            )
        return [t for t in self._active[key] if t.active]

    def active_tickets(self, site: str, fault_class: str) -> list[Ticket]:
        return self._active_list(site, fault_class)

    def active_ticket_for(self, site: str, subject: str, fault_class: str) -> Ticket | None:
        for t in self._active_list(site, fault_class):
            if subject in t.members:
                return t
        return None

    def latest_ticket_for(self, site: str, subject: str, fault_class: str) -> Ticket | None:
        m = s.ticket_members.c
        latest = self.conn.execute(
            select(func.max(m.ticket_id)).where(
                m.site == site, m.subject == subject, m.fault_class == fault_class
            )
        ).scalar()
        return self.get(int(latest)) if latest is not None else None

    def children(self, parent_id: int) -> list[Ticket]:
        return self._load(and_(s.tickets.c.parent_id == parent_id, s.tickets.c.state.in_(ACTIVE)))

    def windows(self, site: str) -> list[Window]:
        if site not in self._windows:
            rows = self.conn.execute(
                select(s.maintenance_windows).where(s.maintenance_windows.c.site == site)
            ).mappings()
            self._windows[site] = [
                Window(
                    r["site"],
                    r["device_id"],
                    as_utc(r["starts_at"]) or self.now,
                    as_utc(r["ends_at"]) or self.now,
                    r["reason"],
                )
                for r in rows
            ]
        return self._windows[site]

    # --- conditions ------------------------------------------------------------------

    def condition(self, key: str) -> Condition | None:
        if key not in self._conditions:
            row = (
                self.conn.execute(select(s.conditions).where(s.conditions.c.key == key))
                .mappings()
                .first()
            )
            self._conditions[key] = _condition_from_row(row) if row is not None else None
        return self._conditions[key]

    def conditions_where(self, where: Any) -> list[Condition]:
        rows = self.conn.execute(select(s.conditions).where(where)).mappings().all()
        out = []
        for row in rows:
            if row["key"] not in self._conditions or self._conditions[row["key"]] is None:
                self._conditions[row["key"]] = _condition_from_row(row)
            cond = self._conditions[row["key"]]
            assert cond is not None
            out.append(cond)
        return out

    def save_condition(self, cond: Condition) -> None:
        self._conditions[cond.key] = cond
        self._dirty_conditions.add(cond.key)

    # --- changes ---------------------------------------------------------------------

    def add(self, t: Ticket) -> Ticket:
        values = {name: getattr(t, name) for name in _UPDATABLE}
        values["revision"] = 0
        pk = self.conn.execute(_INSERT_TICKET, values).inserted_primary_key
        assert pk is not None
        t.id = int(pk[0])
        self._tickets[t.id] = t
        self._active.setdefault((t.site, t.fault_class), []).append(t)
        members, t.members = t.members, set()
        for subject in members:
            self.add_member(t, subject)
        return t

    def add_member(self, t: Ticket, subject: str) -> None:
        if subject in t.members:
            return
        assert t.id is not None
        t.members.add(subject)
        self.conn.execute(
            _statements(self.conn)["member"],
            {"ticket_id": t.id, "subject": subject, "site": t.site, "fault_class": t.fault_class},
        )

    def changed(self, t: Ticket, change: str, notify_even_if_muted: bool = False) -> None:
        assert t.id is not None
        self._changes.setdefault(t.id, [])
        if change not in self._changes[t.id]:
            self._changes[t.id].append(change)
        if notify_even_if_muted:
            self._notify_muted.add(t.id)

    def note(self, t: Ticket, entry: TimelineEntry) -> None:
        assert t.id is not None
        ref = entry.ref or (None, None, None)
        self._timeline.append(
            {
                "ticket_id": t.id,
                "at": entry.at,
                "recorded_at": self.now,
                "entry": entry.entry,
                "subject": entry.subject,
                "summary": entry.summary,
                "gateway_id": ref[0],
                "session": ref[1],
                "seq": ref[2],
            }
        )
        self.changed(t, entry.entry)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def flush(self) -> list[Ticket]:
        """Write every changed ticket, its timeline and its webhook rows."""
        changed = []
        updates: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        for tid, changes in self._changes.items():
            t = self._tickets[tid]
            t.revision += 1
            t.updated_at = self.now
            values = {name: getattr(t, name) for name in _UPDATABLE}
            values["_id"] = tid
            updates.append(values)
            changed.append(t)
            if not t.muted or tid in self._notify_muted:
                payload = json.dumps(ticket_document(t, changes), separators=(",", ":"))
                outbox.extend(
                    {
                        "endpoint": name,
                        "ticket_id": tid,
                        "revision": t.revision,
                        "payload": payload,
                        "created_at": self.now,
                        "attempts": 0,
                        "next_attempt_at": self.now,
                        "dead": False,
                    }
                    for name in self.endpoints
                )
        if updates:
            self.conn.execute(_UPDATE_TICKET, updates)
        if self._timeline:
            insert_rows(self.conn, s.timeline, self._timeline)
        if outbox:
            self.conn.execute(_INSERT_OUTBOX, outbox)
        rows = []
        for key in self._dirty_conditions:
            cond = self._conditions[key]
            assert cond is not None
            rows.append(_condition_row(cond))
        if rows:
            self.conn.execute(_statements(self.conn)["condition"], rows)
        self._changes.clear()
        self._timeline.clear()
        self._dirty_conditions.clear()
        self._notify_muted.clear()
        return changed


def _condition_row(cond: Condition) -> dict[str, Any]:
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


def _condition_from_row(row: RowMapping) -> Condition:
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
