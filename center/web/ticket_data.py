"""What the ticket page reads: the ticket, its timeline joined to the records it came
from (signal, point, raised), the sequence-of-events marks, children and webhook
deliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from center.store import schema as s
from center.store.db import as_utc
from center.store.ticket_rows import ticket_document, ticket_from_row
from center.web.charts import Mark, mark_kind


@dataclass
class TicketView:
    ticket: dict[str, Any]
    timeline: list[dict[str, Any]]
    marks: list[Mark]
    lanes: list[str]
    first_event: datetime | None
    children: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


def _raised(body: str | None, value: str | None) -> bool:
    if body:
        doc = json.loads(body)
        if doc.get("raised") is not None:
            return bool(doc["raised"])
        v = doc.get("value")
        return v not in (False, 0, None, "", "off", "false", "False")
    return value not in (None, "", "off", "False", "false", "0")


def _timeline(conn: Connection, ticket_id: int) -> list[dict[str, Any]]:
    tl, r = s.timeline.c, s.records.c
    joined = s.timeline.outerjoin(
        s.records,
        and_(r.gateway_id == tl.gateway_id, r.session == tl.session, r.seq == tl.seq),
    )
    rows = conn.execute(
        select(
            tl.at, tl.recorded_at, tl.entry, tl.subject, tl.summary, tl.gateway_id,
            r.signal, r.point, r.value, r.body, r.kind,
        )
        .select_from(joined)
        .where(tl.ticket_id == ticket_id)
        .order_by(tl.at, tl.id)
    ).mappings()  # fmt: skip
    out = []
    for row in rows:
        entry = dict(row)
        entry["at"] = as_utc(entry["at"])
        entry["recorded_at"] = as_utc(entry["recorded_at"])
        entry["is_event"] = entry["gateway_id"] is not None and entry["kind"] is not None
        entry["raised"] = _raised(entry.pop("body"), entry["value"]) if entry["is_event"] else None
        out.append(entry)
    return out


def _marks(timeline: list[dict[str, Any]]) -> tuple[list[Mark], list[str], datetime | None]:
    events = [e for e in timeline if e["is_event"] and e["kind"] == "event" and e["subject"]]
    if not events:
        return [], [], None
    first = min(e["at"] for e in events)
    lanes: list[str] = []
    marks = []
    for e in events:
        if e["subject"] not in lanes:
            lanes.append(e["subject"])
        offset = (e["at"] - first).total_seconds() * 1000
        e["offset_ms"] = offset
        state = "raised" if e["raised"] else "cleared"
        marks.append(
            Mark(
                lane=e["subject"],
                offset_ms=offset,
                kind=mark_kind(e["signal"], e["point"]),
                raised=bool(e["raised"]),
                label=(e["point"] or "").replace("_", " "),
                title=f"{e['subject']} {e['point']} {state} at +{offset:,.0f} ms",
            )
        )
    return marks, lanes, first


def ticket_view(conn: Connection, ticket_id: int) -> TicketView | None:
    t = s.tickets.c
    row = conn.execute(select(s.tickets).where(t.id == ticket_id)).mappings().first()
    if row is None:
        return None
    m = s.ticket_members.c
    members = {x for (x,) in conn.execute(select(m.subject).where(m.ticket_id == ticket_id))}
    doc = ticket_document(ticket_from_row(row, members))
    timeline = _timeline(conn, ticket_id)
    marks, lanes, first = _marks(timeline)
    children = [
        dict(r)
        for r in conn.execute(
            select(t.id, t.title, t.state, t.priority, t.muted)
            .where(t.parent_id == ticket_id)
            .order_by(t.id)
        ).mappings()
    ]
    w = s.webhook_outbox.c
    deliveries = [
        {**r, "created_at": as_utc(r["created_at"]), "delivered_at": as_utc(r["delivered_at"])}
        for r in conn.execute(
            select(
                w.endpoint, w.revision, w.attempts, w.created_at, w.delivered_at, w.dead,
                w.last_error,
            )
            .where(w.ticket_id == ticket_id)
            .order_by(w.id.desc())
            .limit(50)
        ).mappings()
    ]  # fmt: skip
    return TicketView(doc, timeline, marks, lanes, first, children, deliveries)
