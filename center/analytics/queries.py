"""Read side of the analytics for the API, the console and the CLI: ageing scores and a
relay's clock, as JSON-ready documents."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from center.analytics.clock_sites import clock_rows
from center.store import schema as s
from center.store.db import as_utc


def ageing_scores(
    conn: Connection, site: str | None = None, min_risk: float = 0.0, limit: int = 100
) -> list[dict[str, Any]]:
    """Latest scores, riskiest first."""
    a = s.ageing_scores.c
    q = (
        select(s.ageing_scores)
        .where(a.risk >= min_risk)
        .order_by(a.risk.desc(), a.site, a.device_id)
        .limit(limit)
    )
    if site:
        q = q.where(a.site == site)
    out = []
    for row in conn.execute(q).mappings():
        doc = dict(row)
        doc["details"] = json.loads(doc["details"])
        for k in ("scored_at", "commissioned_at"):
            v = as_utc(doc[k])
            doc[k] = v.isoformat() if v else None
        out.append(doc)
    return out


def device_clock(conn: Connection, site: str, device_id: str) -> dict[str, Any] | None:
    """A relay's clock figures, verdict and readings (for its page and chart)."""
    rows = [r for r in clock_rows(conn, site) if r["device_id"] == device_id]
    if not rows:
        return None
    c = s.clock_quality.c
    samples = conn.execute(
        select(c.samples).where(c.site == site, c.device_id == device_id)
    ).scalar_one()
    return {**rows[0], "samples": json.loads(samples)}
