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
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import product
from typing import Any

from sqlalchemy import Connection, and_, func, select

from center.store import schema as s
from center.store.bulk import insert_rows
from center.store.db import as_utc, is_postgres, pipeline
from center.store.ticket_prefetch import LatestKey, Questions, ask
from center.store.ticket_rows import (
    INSERT_OUTBOX,
    INSERT_TICKET,
    UPDATABLE,
    UPDATE_TICKET,
    condition_from_row,
    condition_row,
    dialect_statements,
    ticket_document,
    ticket_from_row,
)
from center.store.together import Write
from center.tickets.model import ACTIVE, Condition, Signal, Ticket, TimelineEntry
from center.tickets.policy import Window
from center.tickets.unit_of_work import UnitOfWork

_t, _m = s.tickets.c, s.ticket_members.c
# PostgreSQL: a ticket's members come with its row (one round trip, not two).
_MEMBERS = select(func.array_agg(_m.subject)).where(_m.ticket_id == _t.id).scalar_subquery()


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
        self._latest: dict[LatestKey, int | None] = {}  # newest ticket of a member, prefetched
        self._new_members: list[dict[str, Any]] = []  # written before they can be asked for
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
        pg = is_postgres(self.conn)
        query = select(s.tickets, _MEMBERS.label("members_")) if pg else select(s.tickets)
        query = query.where(where)
        if order is not None:
            query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        return self._adopt(self.conn.execute(query).mappings().all())

    def _adopt(self, rows: Sequence[Mapping[Any, Any]]) -> list[Ticket]:
        """The tickets of these rows, each one object: a ticket loaded before is kept as
        it is now. Rows from PostgreSQL carry their members ("members_")."""
        fresh = [r["id"] for r in rows if r["id"] not in self._tickets]
        if rows and "members_" in rows[0]:
            members = {r["id"]: set(r["members_"] or ()) for r in rows}
        else:
            members = self._members(fresh)
        out = []
        for row in rows:
            if row["id"] not in self._tickets:
                self._tickets[row["id"]] = ticket_from_row(row, members[row["id"]])
            out.append(self._tickets[row["id"]])
        return out

    def find(self, where: Any) -> list[Ticket]:
        self._write_members()  # `where` may ask about members
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
        key = (site, subject, fault_class)
        if key in self._latest:  # prefetched, and kept by add_member since
            latest = self._latest[key]
            return self.get(latest) if latest is not None else None
        if any((x["site"], x["subject"], x["fault_class"]) == key for x in self._new_members):
            self._write_members()  # the answer counts them
        m = s.ticket_members.c
        found = self.conn.execute(
            select(func.max(m.ticket_id)).where(
                m.site == site, m.subject == subject, m.fault_class == fault_class
            )
        ).scalar()
        return self.get(int(found)) if found is not None else None

    def children(self, parent_id: int) -> list[Ticket]:
        return self._load(and_(s.tickets.c.parent_id == parent_id, s.tickets.c.state.in_(ACTIVE)))

    def prefetch(self, signals: Sequence[Signal], writes: Sequence[Write] = ()) -> None:
        """Make `writes`, then load at once what the engine asks first about these
        signals (center/store/ticket_prefetch.py): the same as loading each when first
        asked, as nothing writes tickets, members, conditions or windows before `flush`
        but `add` and `add_member`, which keep what they change. One round trip on
        PostgreSQL, where it was one or two per key, per class, per site and per open."""
        asked = {sig.key for sig in signals if sig.mode == "condition"}
        pairs = {(sig.site, sig.fault_class) for sig in signals} - self._active.keys()
        raised = [sig for sig in signals if sig.raised and sig.mode != "context"]
        latest = {(sig.site, sig.subject, sig.fault_class) for sig in raised}
        q = Questions(
            keys=sorted(asked - self._conditions.keys()),
            sites=sorted({p[0] for p in pairs}),
            classes=sorted({p[1] for p in pairs}),
            window_sites=sorted({sig.site for sig in raised} - self._windows.keys()),
            latest=sorted(latest - self._latest.keys()),
        )
        if self._new_members:  # before the newest tickets are asked
            writes = [(dialect_statements(self.conn)["member"], self._new_members), *writes]
            self._new_members = []
        got = ask(self.conn, writes, q)
        found = {row["key"]: row for row in got.conditions}
        for key in q.keys:
            row = found.get(key)
            self._conditions[key] = condition_from_row(row) if row is not None else None
        loaded = self._adopt(got.tickets)
        for pair in product(q.sites, q.classes):
            if pair not in self._active:
                self._active[pair] = [t for t in loaded if (t.site, t.fault_class) == pair]
        for site in q.window_sites:
            self._windows[site] = [self._window(r) for r in got.windows if r["site"] == site]
        if got.latest is not None:
            newest = {
                (r["latest_site"], r["latest_subject"], r["latest_class"]): r["id"]
                for r in got.latest
            }
            self._adopt(got.latest)
            for key3 in q.latest:
                self._latest[key3] = newest.get(key3)

    def _window(self, r: Mapping[Any, Any]) -> Window:
        return Window(
            r["site"],
            r["device_id"],
            as_utc(r["starts_at"]) or self.now,
            as_utc(r["ends_at"]) or self.now,
            r["reason"],
        )

    def windows(self, site: str) -> list[Window]:
        if site not in self._windows:
            rows = self.conn.execute(
                select(s.maintenance_windows).where(s.maintenance_windows.c.site == site)
            ).mappings()
            self._windows[site] = [self._window(r) for r in rows]
        return self._windows[site]

    # --- conditions ------------------------------------------------------------------

    def condition(self, key: str) -> Condition | None:
        if key not in self._conditions:
            row = (
                self.conn.execute(select(s.conditions).where(s.conditions.c.key == key))
                .mappings()
                .first()
            )
            self._conditions[key] = condition_from_row(row) if row is not None else None
        return self._conditions[key]

    def conditions_where(self, where: Any) -> list[Condition]:
        rows = self.conn.execute(select(s.conditions).where(where)).mappings().all()
        out = []
        for row in rows:
            if row["key"] not in self._conditions or self._conditions[row["key"]] is None:
                self._conditions[row["key"]] = condition_from_row(row)
            cond = self._conditions[row["key"]]
            assert cond is not None
            out.append(cond)
        return out

    def save_condition(self, cond: Condition) -> None:
        self._conditions[cond.key] = cond
        self._dirty_conditions.add(cond.key)

    # --- changes ---------------------------------------------------------------------

    def add(self, t: Ticket) -> Ticket:
        values = {name: getattr(t, name) for name in UPDATABLE}
        values["revision"] = 0
        pk = self.conn.execute(INSERT_TICKET, values).inserted_primary_key
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
        key = (t.site, subject, t.fault_class)
        if key in self._latest:  # what the database would now answer
            self._latest[key] = max(self._latest[key] or 0, t.id)
        self._new_members.append(
            {"ticket_id": t.id, "subject": subject, "site": t.site, "fault_class": t.fault_class}
        )

    def _write_members(self) -> None:
        if self._new_members:
            self.conn.execute(dialect_statements(self.conn)["member"], self._new_members)
            self._new_members = []

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
            values = {name: getattr(t, name) for name in UPDATABLE}
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
        rows = []
        for key in self._dirty_conditions:
            cond = self._conditions[key]
            assert cond is not None
            rows.append(condition_row(cond))
        if self._new_members or updates or self._timeline or outbox or rows:
            self._write(updates, outbox, rows)
        self._changes.clear()
        self._timeline.clear()
        self._dirty_conditions.clear()
        self._notify_muted.clear()
        return changed

    def _write(
        self, updates: list[dict[str, Any]], outbox: list[dict[str, Any]], conditions: list[Any]
    ) -> None:
        with pipeline(self.conn):  # nothing here is read back: one round trip
            self._write_members()
            if updates:
                self.conn.execute(UPDATE_TICKET, updates)
            if self._timeline:
                insert_rows(self.conn, s.timeline, self._timeline)
            if outbox:
                self.conn.execute(INSERT_OUTBOX, outbox)
            if conditions:
                self.conn.execute(dialect_statements(self.conn)["condition"], conditions)
