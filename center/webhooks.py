"""The webhook connector: ticket changes from the database outbox to an external system.

Every ticket change wrote an outbox row (one per endpoint) in the same transaction as the
change. A `WebhookSender` per endpoint claims due rows, POSTs them, and marks them
delivered on a 2xx; anything else is retried with exponential backoff and jitter until
`max_attempts`, then the row is marked dead (counted, logged, visible in /stats).
At-least-once: a receiver upserts by `X-Relay-Ticket-Id` and ignores a revision older
than the one it has. Rows of one ticket go out in order: a row waits while an earlier
row of its ticket is undelivered.

Signature: `X-Relay-Signature: sha256=HEX`, HMAC-SHA256 with the endpoint's secret over
`{X-Relay-Timestamp}.{body}` (the timestamp guards against replays).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.orm import aliased

from center.clock import Clock
from center.config import WebhookConfig
from center.ingest import Counters
from center.store import schema as s
from center.store.db import is_postgres

log = logging.getLogger(__name__)

LEASE_S = 60.0  # a claimed row is not claimed again for this long (a crashed sender)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (documented in docs/center.md)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class Delivery:
    id: int
    ticket_id: int
    revision: int
    payload: str
    attempts: int

    def body(self) -> bytes:
        return (
            f'{{"delivery_id":{self.id},"ticket_id":{self.ticket_id},'
            f'"revision":{self.revision},"ticket":{self.payload}}}'
        ).encode()


def backoff(cfg: WebhookConfig, attempts: int) -> float:
    base = min(cfg.backoff_max_s, cfg.backoff_min_s * 2 ** max(0, attempts - 1))
    return float(base * (0.8 + 0.4 * random.random()))


class WebhookSender:
    def __init__(
        self,
        engine: Engine,
        cfg: WebhookConfig,
        clock: Clock,
        counters: Counters,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.clock = clock
        self.counters = counters
        self._client = client
        self._secret = cfg.secret_bytes()

    def claim(self, limit: int = 50) -> list[Delivery]:
        """Due rows, oldest first, at most one per ticket; leased so no one else sends them."""
        w = s.webhook_outbox.c
        earlier = aliased(s.webhook_outbox)
        now = self.clock.now()
        blocked = exists().where(
            earlier.c.endpoint == w.endpoint,
            earlier.c.ticket_id == w.ticket_id,
            earlier.c.id < w.id,
            earlier.c.delivered_at.is_(None),
            earlier.c.dead.is_(False),
        )
        q = (
            select(w.id, w.ticket_id, w.revision, w.payload, w.attempts)
            .where(
                w.endpoint == self.cfg.name,
                w.delivered_at.is_(None),
                w.dead.is_(False),
                w.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(w.id)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            if is_postgres(conn):
                q = q.with_for_update(skip_locked=True, of=s.webhook_outbox)
            rows = [Delivery(*r) for r in conn.execute(q)]
            if rows:
                conn.execute(
                    update(s.webhook_outbox)
                    .where(w.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + timedelta(seconds=LEASE_S))
                )
        return rows

    def _finish(self, d: Delivery, ok: bool, error: str | None) -> None:
        w = s.webhook_outbox.c
        now = self.clock.now()
        attempts = d.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "last_error": error}
        if ok:
            values["delivered_at"] = now
        elif attempts >= self.cfg.max_attempts:
            values["dead"] = True
            log.error(
                "webhook %s: giving up on ticket %d revision %d after %d attempts: %s",
                self.cfg.name,
                d.ticket_id,
                d.revision,
                attempts,
                error,
            )
        else:
            values["next_attempt_at"] = now + timedelta(seconds=backoff(self.cfg, attempts))
        with self.engine.begin() as conn:
            conn.execute(update(s.webhook_outbox).where(and_(w.id == d.id)).values(values))
        if ok:
            self.counters.add(f"webhook_{self.cfg.name}_delivered")
        elif values.get("dead"):
            self.counters.add(f"webhook_{self.cfg.name}_dead")
        else:
            self.counters.add(f"webhook_{self.cfg.name}_retries")

    async def send(self, client: httpx.AsyncClient, d: Delivery) -> tuple[bool, str | None]:
        body = d.body()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "relay-center",
            "X-Relay-Timestamp": stamp,
            "X-Relay-Signature": sign(self._secret, stamp, body),
            "X-Relay-Delivery-Id": str(d.id),
            "X-Relay-Ticket-Id": str(d.ticket_id),
            "X-Relay-Ticket-Revision": str(d.revision),
        }
        try:
            response = await client.post(self.cfg.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return True, None
        return False, f"HTTP {response.status_code}: {response.text[:200]}"

    async def run_once(self, client: httpx.AsyncClient) -> int:
        rows = await asyncio.to_thread(self.claim)
        for d in rows:
            ok, error = await self.send(client, d)
            if not ok:
                log.warning(
                    "webhook %s: ticket %d revision %d failed (attempt %d): %s",
                    self.cfg.name,
                    d.ticket_id,
                    d.revision,
                    d.attempts + 1,
                    error,
                )
            await asyncio.to_thread(self._finish, d, ok, error)
        return len(rows)

    async def run(self) -> None:
        """Until cancelled. A database error is logged and retried; it never stops us."""
        client = self._client or httpx.AsyncClient(timeout=self.cfg.timeout_s)
        try:
            while True:
                try:
                    sent = await self.run_once(client)
                except Exception:  # the sender must outlive any database hiccup
                    log.exception("webhook %s: sender pass failed", self.cfg.name)
                    sent = 0
                if not sent:
                    await asyncio.sleep(self.cfg.poll_interval_s)
        finally:
            if self._client is None:
                await client.aclose()


def pending(engine: Engine, endpoint: str) -> int:
    w = s.webhook_outbox.c
    with engine.connect() as conn:
        q = select(w.id).where(w.endpoint == endpoint, w.delivered_at.is_(None), w.dead.is_(False))
        return len(conn.execute(q).all())
