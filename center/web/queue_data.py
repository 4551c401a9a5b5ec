"""What the queue page reads: counts of active tickets by priority and state, the values
each filter can take, and one page of tickets (muted children folded under their parent).

Only top-level tickets are paged: a muted child (a device's comms ticket under its site's
comms ticket) is listed under its parent, or on its own when its parent is not listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from center.store import schema as s
from center.store.db import as_utc

STATES = ("open", "acknowledged", "resolved", "closed")
STATE_CHOICES = {
    "active": ("open", "acknowledged"),
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "closed": ("closed",),
    "all": STATES,
}
PRIORITIES = ("P1", "P2", "P3", "P4")
FILTERS = ("state", "priority", "site", "service_point", "fault_class", "device")
_LIST_COLUMNS = [
    s.tickets.c[name]
    for name in (
        "id", "state", "priority", "site", "service_point", "fault_class", "title",
        "occurrences", "reopen_count", "episode", "opened_at", "updated_at", "muted",
        "parent_id", "flapping", "acknowledged_by",
    )
]  # fmt: skip


@dataclass(frozen=True)
class QueueQuery:
    state: str = "active"
    priority: str = ""
    site: str = ""
    service_point: str = ""
    fault_class: str = ""
    device: str = ""
    page: int = 1

    @classmethod
    def from_params(cls, params: Any) -> QueueQuery:
        state = params.get("state") or "active"
        try:
            page = max(int(params.get("page") or 1), 1)
        except ValueError:
            page = 1
        return cls(
            state=state if state in STATE_CHOICES else "active",
            page=page,
            **{k: (params.get(k) or "").strip()[:128] for k in FILTERS if k != "state"},
        )

    def params(self, **change: Any) -> dict[str, str]:
        """The non-default filters as URL parameters (so a filtered view can be shared)."""
        values = {k: getattr(self, k) for k in (*FILTERS, "page")} | change
        out = {k: str(v) for k, v in values.items() if v and v not in {"active", 1}}
        return out


@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    total: int
    pages: int
    counts: dict[str, dict[str, int]]  # priority -> state -> n (active tickets)
    number: int = 1
    options: dict[str, list[str]] = field(default_factory=dict)


def _where(q: QueueQuery, table: Any = s.tickets) -> list[Any]:
    """The filters as conditions on the tickets table (or an alias of it)."""
    t = table.c
    conds: list[Any] = [t.state.in_(STATE_CHOICES[q.state])]
    for name in ("priority", "site", "service_point", "fault_class"):
        if value := getattr(q, name):
            conds.append(t[name] == value)
    if q.device:
        m = s.ticket_members.c
        conds.append(t.id.in_(select(m.ticket_id).where(m.subject == q.device)))
    return conds


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    t = s.tickets.c
    out: dict[str, dict[str, int]] = {p: {"open": 0, "acknowledged": 0} for p in PRIORITIES}
    rows = conn.execute(
        select(t.priority, t.state, func.count())
        .where(t.state.in_(("open", "acknowledged")))
        .group_by(t.priority, t.state)
    )
    for priority, state, n in rows:
        out.setdefault(priority, {"open": 0, "acknowledged": 0})[state] = n
    return out


def options(conn: Connection) -> dict[str, list[str]]:
    t, d = s.tickets.c, s.devices.c

    def distinct(col: Any) -> list[str]:
        return [v for (v,) in conn.execute(select(col).distinct().order_by(col)) if v]

    return {
        "site": distinct(t.site),
        "service_point": distinct(t.service_point),
        "fault_class": distinct(t.fault_class),
        "device": distinct(d.device_id),
        "priority": list(PRIORITIES),
        "state": list(STATE_CHOICES),
    }


def _members(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        m = s.ticket_members.c
        rows = conn.execute(
            select(m.ticket_id, m.subject).where(m.ticket_id.in_(ids)).order_by(m.subject)
        )
        for tid, subject in rows:
            out[tid].append(subject)
    return out


def _doc(row: Any, members: dict[int, list[str]]) -> dict[str, Any]:
    doc = dict(row)
    for k in ("opened_at", "updated_at"):
        doc[k] = as_utc(doc[k])
    doc["devices"] = [x for x in members.get(doc["id"], []) if not x.startswith("@")]
    doc["children"] = []
    return doc


def page(conn: Connection, q: QueueQuery, size: int) -> QueuePage:
    t = s.tickets.c
    conds = _where(q)
    # A muted child is listed under its parent when the parent is listed too.
    parent = s.tickets.alias("parent")
    parent_listed = select(parent.c.id).where(parent.c.id == t.parent_id, *_where(q, parent))
    top = and_(*conds, or_(t.muted.is_(False), t.parent_id.is_(None), ~parent_listed.exists()))
    total = conn.execute(select(func.count()).select_from(s.tickets).where(top)).scalar() or 0
    pages = max((total + size - 1) // size, 1)
    number = min(q.page, pages)
    rows = conn.execute(
        select(*_LIST_COLUMNS)
        .where(top)
        .order_by(t.priority, t.id.desc())
        .limit(size)
        .offset((number - 1) * size)
    ).mappings()
    listed = [dict(r) for r in rows]
    ids = [r["id"] for r in listed]
    children = (
        conn.execute(
            select(*_LIST_COLUMNS)
            .where(t.parent_id.in_(ids), t.muted.is_(True), *conds)
            .order_by(t.id)
        )
        .mappings()
        .all()
        if ids
        else []
    )
    members = _members(conn, ids + [c["id"] for c in children])
    docs = {r["id"]: _doc(r, members) for r in listed}
    for c in children:
        docs[c["parent_id"]]["children"].append(_doc(c, members))
    return QueuePage([docs[i] for i in ids], total, pages, counts(conn), number)
