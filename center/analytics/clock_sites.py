"""Clock quality per site, so that a site without a time source stands out: when most of
its relays' clocks are bad at once, the common cause is the site (no GPS or NTP), not
the relays."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import Connection, select

from center.analytics.clock import stamps_summer_time
from center.analytics.history import DeviceFacts
from center.analytics.incidents import StatsFilter
from center.store import schema as s
from center.store.db import as_utc

STANDS_OUT_SHARE = 0.5


def clock_rows(conn: Connection, site: str | None = None) -> list[dict[str, Any]]:
    c = s.clock_quality.c
    q = select(
        c.site, c.device_id, c.gateway_id, c.verdict, c.bad, c.sample_count, c.p50_ms,
        c.p95_abs_ms, c.drift_ms_per_day, c.timed_events, c.invalid_events,
        c.substituted_events, c.summer_time_events, c.recent_flags, c.last_event_at,
        c.last_sync_at, c.last_sync_valid, c.summary, c.updated_at,
    ).order_by(c.site, c.device_id)  # fmt: skip
    if site:
        q = q.where(c.site == site)
    out = []
    for row in conn.execute(q).mappings():
        doc = dict(row)
        doc["summer_time"] = stamps_summer_time(doc.pop("recent_flags"))
        for k in ("last_event_at", "last_sync_at", "updated_at"):
            v = as_utc(doc[k])
            doc[k] = v.isoformat() if v else None
        out.append(doc)
    return out


def clock_by_site(
    conn: Connection, f: StatsFilter, devices: dict[tuple[str, str], DeviceFacts]
) -> dict[str, Any]:
    sites: dict[str, list[dict[str, Any]]] = {}
    for row in clock_rows(conn, f.site):
        dev = devices.get((row["site"], row["device_id"]))
        if dev is not None and not f.keeps_device(dev):
            continue
        if dev is None and (f.device_level or f.region):
            continue
        sites.setdefault(row["site"], []).append(row)
    out = []
    for site, rows in sorted(sites.items()):
        judged = [r for r in rows if r["verdict"] != "unknown"]
        bad = [r for r in rows if r["bad"]]
        offsets = [abs(r["p50_ms"]) for r in rows if r["p50_ms"] is not None]
        verdicts: dict[str, int] = {}
        for r in rows:
            verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        share = len(bad) / len(judged) if judged else 0.0
        out.append({
            "site": site,
            "relays": len(rows),
            "judged": len(judged),
            "bad": len(bad),
            "bad_share": round(share, 3),
            "verdicts": dict(sorted(verdicts.items())),
            "median_abs_offset_ms": round(statistics.median(offsets), 1) if offsets else None,
            "summer_time": sum(1 for r in rows if r["summer_time"]),
            "stands_out": len(judged) >= 2 and share >= STANDS_OUT_SHARE,
        })  # fmt: skip
    return {
        "sites": out,
        "relays_bad": sum(x["bad"] for x in out),
        "relays_summer_time": sum(x["summer_time"] for x in out),
        "sites_standing_out": [x["site"] for x in out if x["stands_out"]],
    }
