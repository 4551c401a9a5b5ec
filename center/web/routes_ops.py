"""The gateways page (online/offline, last birth and death, outbox depth and age from the
health records, comms tickets) and the operations page (ingest rate, rejected records,
sequence gaps, webhook backlog, event-to-ticket latency)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, func, select

from center.store import queries
from center.store import schema as s
from center.store.db import as_utc
from center.tickets.model import ACTIVE, COMMS, SITE_COMMS
from center.web import charts
from center.web.app import Console

RATE_WINDOW_ROWS = 20_000  # the ingest-rate chart reads at most the newest rows


def gateway_rows(conn: Connection) -> list[dict[str, Any]]:
    lc = s.lifecycle.c
    last: dict[tuple[str, str], datetime | None] = {
        (gw, kind): as_utc(at)
        for gw, kind, at in conn.execute(
            select(lc.gateway_id, lc.kind, func.max(lc.gateway_time)).group_by(
                lc.gateway_id, lc.kind
            )
        )
    }
    t = s.tickets.c
    comms: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        select(t.id, t.site, t.title, t.priority, t.state)
        .where(t.fault_class.in_((COMMS, SITE_COMMS)), t.state.in_(ACTIVE))
        .order_by(t.id)
    ).mappings():
        comms.setdefault(row["site"], []).append(dict(row))
    out = []
    for gw in queries.list_gateways(conn):
        health_body = conn.execute(
            select(lc.body)
            .where(lc.gateway_id == gw["gateway_id"], lc.kind == "health")
            .order_by(lc.id.desc())
            .limit(1)
        ).scalar()
        health = json.loads(health_body) if health_body else {}
        out.append(
            {
                **gw,
                "last_birth": last.get((gw["gateway_id"], "birth")),
                "last_death": last.get((gw["gateway_id"], "death")),
                "last_health": last.get((gw["gateway_id"], "health")),
                "outbox_oldest_age_s": health.get("outbox_oldest_age_s"),
                "health_depth": health.get("outbox_depth"),
                "links": health.get("links", {}),
                "comms_tickets": comms.get(gw["site"], []),
            }
        )
    return out


def ingest_per_minute(conn: Connection, now: datetime, minutes: int = 60) -> list[int]:
    """Records received per minute over the last hour, oldest first; reads only the newest
    rows (by primary key), so the page stays fast on a large table."""
    r = s.records.c
    newest = conn.execute(select(func.max(r.id))).scalar() or 0
    since = now - timedelta(minutes=minutes)
    buckets = [0] * minutes
    rows = conn.execute(
        select(r.received_at).where(r.id > newest - RATE_WINDOW_ROWS, r.received_at >= since)
    )
    for (at,) in rows:
        i = int(((as_utc(at) or now) - since).total_seconds() // 60)
        if 0 <= i < minutes:
            buckets[i] += 1
    return buckets


def webhook_backlog(conn: Connection) -> dict[str, Any]:
    w = s.webhook_outbox.c
    rows = conn.execute(
        select(w.endpoint, func.count(), func.min(w.created_at))
        .where(w.delivered_at.is_(None), w.dead.is_(False))
        .group_by(w.endpoint)
    ).all()
    dead: dict[str, int] = dict(
        conn.execute(
            select(w.endpoint, func.count()).where(w.dead.is_(True)).group_by(w.endpoint)
        ).all()
    )
    return {
        "pending": [
            {"endpoint": e, "count": n, "oldest": as_utc(oldest), "dead": dead.get(e, 0)}
            for e, n, oldest in rows
        ],
        "dead": dead,
    }


def router(console: Console) -> APIRouter:
    r = APIRouter()

    @r.get("/gateways", response_class=HTMLResponse)
    def gateways(request: Request) -> HTMLResponse:
        console.user(request)
        with console.engine.connect() as conn:
            rows = gateway_rows(conn)
        return console.render(request, "gateways.html", gateways=rows, now=console.now())

    @r.get("/operations", response_class=HTMLResponse)
    def operations(request: Request) -> HTMLResponse:
        console.user(request)
        now = console.now()
        with console.engine.connect() as conn:
            per_minute = ingest_per_minute(conn, now)
            stats = queries.stats(conn)
            gaps = queries.list_gaps(conn)
            rejected = queries.list_rejected(conn, 20)
            backlog = webhook_backlog(conn)
        labels = [f"{(now - timedelta(minutes=60 - i)):%H:%M}" for i in range(60)]
        return console.render(
            request,
            "operations.html",
            now=now,
            rate_chart=charts.column_chart(per_minute, labels),
            last_minutes=sum(per_minute[-5:]) / 5,
            stats=stats,
            gaps=gaps,
            rejected=rejected,
            backlog=backlog,
            counters=console.ctx.counters.snapshot(),
            latency=console.ctx.counters.latency_ms(),
            service=console.ctx.status(),
        )

    return r
