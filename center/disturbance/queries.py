"""Reading disturbance records and fault reports (API, tickets, playback) and the periodic
sweep: unfinished transfers that stopped, and retention."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from center.config import DisturbanceConfig
from center.disturbance.intake import report_summary
from center.store import schema as s
from center.store.db import as_utc

_LISTED = [
    c
    for c in s.disturbance_records.c
    if c.name not in ("cfg", "dat", "analysis", "sha256", "cfg_bytes")
]


def _iso(value: Any) -> Any:
    """Times as ISO 8601 UTC (SQLite hands them back naive)."""
    return as_utc(value).isoformat() if isinstance(value, datetime) else value  # type: ignore[union-attr]


def _record_doc(row: Any, analysis: str | None = None) -> dict[str, Any]:
    doc = {k: _iso(v) for k, v in dict(row).items()}
    doc["channels"] = json.loads(doc["channels"])
    if analysis is not None:
        doc["analysis"] = json.loads(analysis)
    return doc


def list_records(
    conn: Connection,
    site: str | None = None,
    device_id: str | None = None,
    ticket_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    d = s.disturbance_records.c
    q = select(*_LISTED, d.analysis).order_by(d.trigger_time.desc(), d.id.desc()).limit(limit)
    if site:
        q = q.where(d.site == site)
    if device_id:
        q = q.where(d.device_id == device_id)
    if ticket_id is not None:
        q = q.where(d.ticket_id == ticket_id)
    out = []
    for row in conn.execute(q).mappings():
        values = dict(row)
        out.append(
            _record_doc({k: v for k, v in values.items() if k != "analysis"}, values["analysis"])
        )
    return out


def get_record(conn: Connection, record_id: int) -> dict[str, Any] | None:
    d = s.disturbance_records.c
    row = conn.execute(select(*_LISTED, d.analysis).where(d.id == record_id)).mappings().first()
    if row is None:
        return None
    values = dict(row)
    return _record_doc({k: v for k, v in values.items() if k != "analysis"}, values["analysis"])


def files(conn: Connection, record_id: int) -> tuple[str, bytes, bytes] | None:
    """(base name, cfg, dat) of a complete record."""
    d = s.disturbance_records.c
    row = conn.execute(
        select(d.site, d.device_id, d.fault_number, d.cfg, d.dat).where(
            d.id == record_id, d.status == "complete"
        )
    ).first()
    if row is None:
        return None
    site, device, fault, cfg, dat = row
    return f"{site}_{device}_{fault}", bytes(cfg), bytes(dat)


def zip_files(name: str, cfg: bytes, dat: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.cfg", cfg)
        z.writestr(f"{name}.dat", dat)
    return buf.getvalue()


def for_ticket(conn: Connection, ticket_id: int) -> dict[str, list[dict[str, Any]]]:
    """What a ticket shows of its incident's records and reports."""
    records = [
        {
            "id": r["id"],
            "device_id": r["device_id"],
            "fault_number": r["fault_number"],
            "trigger_time": r["trigger_time"],
            "summary": r["analysis"]["summary"],
            "analysis": r["analysis"],
        }
        for r in list_records(conn, ticket_id=ticket_id)
    ]
    return {"disturbance_records": records, "fault_reports": reports_for_ticket(conn, ticket_id)}


def reports_for_ticket(conn: Connection, ticket_id: int) -> list[dict[str, Any]]:
    """The relays' own fault reports attached to a ticket, oldest first."""
    f = s.fault_reports.c
    reports = []
    for r in conn.execute(
        select(s.fault_reports).where(f.ticket_id == ticket_id).order_by(f.fault_time)
    ).mappings():
        report = json.loads(r["report"])
        reports.append(
            {
                "id": r["id"],
                "device_id": r["device_id"],
                "fault_time": _iso(r["fault_time"]),
                "summary": report_summary(report),
                **report,
            }
        )
    return reports


def sweep(conn: Connection, config: DisturbanceConfig, now: datetime) -> dict[str, int]:
    """Refuse transfers that stopped (`incomplete`), drop records and reports past retention."""
    d, k, f = s.disturbance_records.c, s.disturbance_chunks.c, s.fault_reports.c
    counts: Counter[str] = Counter()
    stalled = [
        r[0]
        for r in conn.execute(
            select(d.id).where(
                d.status == "receiving",
                d.updated_at < now - timedelta(seconds=config.incomplete_after_s),
            )
        )
    ]
    if stalled:
        conn.execute(delete(s.disturbance_chunks).where(k.record_id.in_(stalled)))
        conn.execute(
            update(s.disturbance_records)
            .where(d.id.in_(stalled))
            .values(status="refused", failure="incomplete: no chunk for too long", updated_at=now)
        )
        counts["disturbance_refused_incomplete"] += len(stalled)
    cutoff = now - timedelta(days=config.retention_days)
    expired = conn.execute(
        delete(s.disturbance_records).where(
            d.status.in_(("complete", "refused")), d.updated_at < cutoff
        )
    ).rowcount
    counts["disturbance_records_expired"] += expired or 0
    reports = conn.execute(delete(s.fault_reports).where(f.received_at < cutoff)).rowcount
    counts["fault_reports_expired"] += reports or 0
    return {name: n for name, n in counts.items() if n}
