"""Read-side queries for the API: tickets, timelines, devices, events, gaps, inventory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from center.disturbance import queries as disturbances
from center.store import schema as s
from center.store.db import as_utc
from center.store.ticket_rows import ticket_document, ticket_from_row


def _iso(value: datetime | None) -> str | None:
    v = as_utc(value)
    return v.isoformat() if v is not None else None


def _members(conn: Connection, ids: list[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {i: set() for i in ids}
    if ids:
        m = s.ticket_members.c
        for tid, subject in conn.execute(
            select(m.ticket_id, m.subject).where(m.ticket_id.in_(ids))
        ):
            out[tid].add(subject)
    return out


@dataclass(frozen=True)
class TicketFilter:
    state: list[str] | None = None
    site: str | None = None
    device_id: str | None = None
    fault_class: str | None = None
    priority: str | None = None
    service_point: str | None = None
    include_muted: bool = True
    limit: int = 100
    offset: int = 0


def list_tickets(conn: Connection, f: TicketFilter) -> list[dict[str, Any]]:
    t = s.tickets.c
    q = select(s.tickets)
    if f.state:
        q = q.where(t.state.in_(f.state))
    if f.site:
        q = q.where(t.site == f.site)
    if f.fault_class:
        q = q.where(t.fault_class == f.fault_class)
    if f.priority:
        q = q.where(t.priority == f.priority)
    if f.service_point:
        q = q.where(t.service_point == f.service_point)
    if not f.include_muted:
        q = q.where(t.muted.is_(False))
    if f.device_id:
        m = s.ticket_members.c
        q = q.where(t.id.in_(select(m.ticket_id).where(m.subject == f.device_id)))
    rows = conn.execute(q.order_by(t.id.desc()).limit(f.limit).offset(f.offset)).mappings().all()
    members = _members(conn, [r["id"] for r in rows])
    return [ticket_document(ticket_from_row(r, members[r["id"]])) for r in rows]


def get_ticket(conn: Connection, ticket_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(s.tickets).where(s.tickets.c.id == ticket_id)).mappings().first()
    if row is None:
        return None
    doc = ticket_document(ticket_from_row(row, _members(conn, [ticket_id])[ticket_id]))
    tl = s.timeline.c
    doc["timeline"] = [
        {
            "at": _iso(r["at"]),
            "recorded_at": _iso(r["recorded_at"]),
            "entry": r["entry"],
            "subject": r["subject"],
            "summary": r["summary"],
            "record": [r["gateway_id"], r["session"], r["seq"]] if r["gateway_id"] else None,
        }
        for r in conn.execute(
            select(s.timeline).where(tl.ticket_id == ticket_id).order_by(tl.at, tl.id)
        ).mappings()
    ]
    doc["children"] = [
        r[0] for r in conn.execute(select(s.tickets.c.id).where(s.tickets.c.parent_id == ticket_id))
    ]
    doc.update(disturbances.for_ticket(conn, ticket_id))
    return doc


def _row(r: Any) -> dict[str, Any]:
    return {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in dict(r).items()}


def list_devices(conn: Connection, site: str | None = None) -> list[dict[str, Any]]:
    d = s.devices.c
    q = select(s.devices).order_by(d.site, d.device_id)
    if site:
        q = q.where(d.site == site)
    devices = [_row(r) for r in conn.execute(q).mappings()]
    m, t = s.ticket_members.c, s.tickets.c
    open_counts: dict[str, int] = dict(
        conn.execute(
            select(m.subject, func.count())
            .join(s.tickets, t.id == m.ticket_id)
            .where(t.state.in_(("open", "acknowledged")))
            .group_by(m.subject)
        ).all()
    )
    for dev in devices:
        dev["active_tickets"] = open_counts.get(dev["device_id"], 0)
    return devices


def list_events(
    conn: Connection,
    *,
    site: str | None = None,
    device_id: str | None = None,
    kind: str | None = None,
    signal: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    r = s.records.c
    q = select(s.records)
    if site:
        q = q.where(r.site == site)
    if device_id:
        q = q.where(r.device_id == device_id)
    if kind:
        q = q.where(r.kind == kind)
    if signal:
        q = q.where(r.signal == signal)
    if since:
        q = q.where(r.event_time >= since)
    if until:
        q = q.where(r.event_time < until)
    rows = conn.execute(q.order_by(r.event_time.desc(), r.id.desc()).limit(limit)).mappings()
    out = []
    for row in rows:
        doc = json.loads(row["body"])
        doc["event_time"] = _iso(row["event_time"])
        doc["received_at"] = _iso(row["received_at"])
        out.append(doc)
    return out


def list_gaps(conn: Connection) -> list[dict[str, Any]]:
    q = s.sequences.c
    out = []
    for row in conn.execute(select(s.sequences).where(q.missing != "[]")).mappings():
        ranges = json.loads(row["missing"])
        out.append(
            {
                "gateway_id": row["gateway_id"],
                "session": row["session"],
                "site": row["site"],
                "high": row["high"],
                "missing": ranges,
                "missing_records": sum(b - a + 1 for a, b in ranges),
            }
        )
    return out


def stats(conn: Connection) -> dict[str, Any]:
    t, w, rj = s.tickets.c, s.webhook_outbox.c, s.rejected_messages.c
    by_state: dict[str, int] = dict(
        conn.execute(select(t.state, func.count()).group_by(t.state)).all()
    )
    rejected: dict[str, int] = dict(
        conn.execute(select(rj.reason, func.count()).group_by(rj.reason)).all()
    )
    pending = conn.execute(
        select(func.count()).where(w.delivered_at.is_(None), w.dead.is_(False))
    ).scalar()
    dead = conn.execute(select(func.count()).where(w.dead.is_(True))).scalar()
    return {
        "tickets_by_state": by_state,
        "records": conn.execute(select(func.count()).select_from(s.records)).scalar(),
        "rejected_messages_by_reason": rejected,
        "webhooks": {"pending": pending, "dead": dead},
        "gateways_online": conn.execute(
            select(func.count()).where(s.gateways.c.online.is_(True))
        ).scalar(),
        "sequence_gaps": len(list_gaps(conn)),
    }


def list_rejected(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    rj = s.rejected_messages.c
    columns = [c for c in s.rejected_messages.c if c.name != "payload"]  # bytes: not JSON
    q = select(*columns).order_by(rj.id.desc()).limit(limit)
    return [_row(r) for r in conn.execute(q).mappings()]


def inventory(conn: Connection) -> list[dict[str, Any]]:
    """Per device: the latest identity and settings hash, and how many reports exist."""
    f, st = s.firmware_reports.c, s.settings_snapshots.c
    fw_counts: dict[str, int] = dict(
        conn.execute(select(f.device_id, func.count()).group_by(f.device_id)).all()
    )
    st_counts: dict[str, int] = dict(
        conn.execute(select(st.device_id, func.count()).group_by(st.device_id)).all()
    )
    out = []
    for dev in list_devices(conn):
        dev["firmware_reports"] = fw_counts.get(dev["device_id"], 0)
        dev["settings_snapshots"] = st_counts.get(dev["device_id"], 0)
        out.append(dev)
    return out


def list_gateways(conn: Connection) -> list[dict[str, Any]]:
    return [
        _row(r)
        for r in conn.execute(select(s.gateways).order_by(s.gateways.c.gateway_id)).mappings()
    ]


def list_windows(conn: Connection) -> list[dict[str, Any]]:
    m = s.maintenance_windows.c
    return [
        _row(r)
        for r in conn.execute(select(s.maintenance_windows).order_by(m.starts_at)).mappings()
    ]


def add_window(conn: Connection, values: dict[str, Any]) -> int:
    pk = conn.execute(s.maintenance_windows.insert().values(values)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def delete_window(conn: Connection, window_id: int) -> bool:
    m = s.maintenance_windows.c
    return conn.execute(delete(s.maintenance_windows).where(m.id == window_id)).rowcount > 0
