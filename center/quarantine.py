"""Where the center keeps what it could not take: refused messages (`rejected_messages`)
and records or messages set apart (`quarantine`).

Writing here must not fail because of what the content holds, or one hostile message
would stop ingest for the whole fleet: content is kept as bytes, every text column gets
`safe_text` (NUL and lone surrogates escaped, cut to the column's length) and every
integer column only values that fit it. A database that is down still fails the write;
the caller retries that like any other outage.

Each row carries a digest of what it holds, and a row whose digest is already here is not
written again: MQTT delivers at least once (a center stopped or killed between its commit
and its PUBACK meets the same message again), and a gateway resends what it has not seen
acknowledged, so one bad message or record must stay one entry, not one per delivery.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from center.ingest_validation import INT64_MAX, INT64_MIN, BadRecord
from center.store import schema as s
from center.store.db import as_utc, insert
from gateway import wire


def safe_text(text: str, limit: int) -> str:
    """Text any database stores: no NUL, valid UTF-8, at most `limit` characters."""
    clean = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return clean[:limit]


def excerpt(payload: bytes, limit: int = 512) -> str:
    return safe_text(payload[:limit].decode("utf-8", errors="replace"), limit)


def digest(*parts: str | bytes) -> str:
    """sha256 over length-prefixed parts: ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _int64(value: int | None) -> int | None:
    return value if value is not None and INT64_MIN <= value <= INT64_MAX else None


def rejected_row(
    topic: str, payload: bytes, reason: str, detail: str, now: datetime
) -> dict[str, Any]:
    return {
        "received_at": now,
        "topic": safe_text(topic, 512),
        "reason": safe_text(reason, 32),
        "detail": safe_text(detail, 1000),
        "size": len(payload),
        "excerpt": excerpt(payload),
        "payload": payload[: wire.MAX_PAYLOAD_BYTES],
        "digest": digest(topic, payload),
    }


def record_rows(topic: str, bad: Sequence[BadRecord], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "received_at": now,
            "scope": "record",
            "reason": safe_text(b.reason, 32),
            "detail": safe_text(b.detail, 2000),
            "topic": safe_text(topic, 512),
            "record_index": b.index,
            "gateway_id": None if b.gateway_id is None else safe_text(b.gateway_id, 64),
            "session": _int64(b.session),
            "seq": _int64(b.seq),
            "size": len(b.content),
            "content": b.content,
            "digest": digest("record", topic, b.content),
        }
        for b in bad
    ]


def message_row(
    topic: str, payload: bytes, reason: str, detail: str, now: datetime
) -> dict[str, Any]:
    return {
        "received_at": now,
        "scope": "message",
        "reason": safe_text(reason, 32),
        "detail": safe_text(detail, 2000),
        "topic": safe_text(topic, 512),
        "record_index": None,
        "gateway_id": None,
        "session": None,
        "seq": None,
        "size": len(payload),
        "content": payload,
        "digest": digest("message", topic, payload),
    }


def put(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Set rows apart, each once (by digest)."""
    if rows:
        conn.execute(insert(s.quarantine, conn).on_conflict_do_nothing(), list(rows))


def put_rejected(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Keep refused messages, each once (by digest)."""
    if rows:
        conn.execute(insert(s.rejected_messages, conn).on_conflict_do_nothing(), list(rows))


# --- reading: the API and `relay-center quarantine` -------------------------------------

_SUMMARY = [c for c in s.quarantine.c if c.name != "content"]


def list_quarantine(
    conn: Connection,
    limit: int = 100,
    reason: str | None = None,
    gateway_id: str | None = None,
) -> list[dict[str, Any]]:
    q = s.quarantine.c
    stmt = select(*_SUMMARY).order_by(q.id.desc()).limit(limit)
    if reason is not None:
        stmt = stmt.where(q.reason == reason)
    if gateway_id is not None:
        stmt = stmt.where(q.gateway_id == gateway_id)
    return [_doc(dict(r)) for r in conn.execute(stmt).mappings()]


def get_quarantined(conn: Connection, item_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(s.quarantine).where(s.quarantine.c.id == item_id)).mappings().first()
    if row is None:
        return None
    doc = _doc(dict(row))
    content: bytes = doc.pop("content")
    try:
        doc["content"] = content.decode("utf-8")
        doc["content_base64"] = None
    except UnicodeDecodeError:  # a message payload that is not even UTF-8
        doc["content"] = None
        doc["content_base64"] = base64.b64encode(content).decode("ascii")
    return doc


def counts_by_reason(conn: Connection) -> dict[str, int]:
    q = s.quarantine.c
    rows = conn.execute(select(q.reason, func.count()).group_by(q.reason)).all()
    return {str(reason): int(n) for reason, n in rows}


def _doc(row: dict[str, Any]) -> dict[str, Any]:
    at = as_utc(row.get("received_at"))
    row["received_at"] = None if at is None else at.isoformat()
    return row
