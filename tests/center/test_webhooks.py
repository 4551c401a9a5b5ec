"""Webhooks: HMAC-signed, retried with backoff, in order per ticket, against a real local
HTTP receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from center.webhooks import WebhookSender, pending
from tests.center.records import T0, Gateway

SECRET = "webhook-secret-0123456789"


class Receiver:
    """Answers `fail` requests with 500, then 200; keeps what it got."""

    def __init__(self) -> None:
        self.fail = 0
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((dict(self.headers), body))
                code = 500 if receiver.fail > 0 else 200
                receiver.fail -= 1
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def documented_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The scheme as docs/center.md states it, written here from the text, not imported:
    `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_holds(headers: dict[str, str], body: bytes) -> bool:
    expected = documented_signature(SECRET, headers["X-Relay-Timestamp"], body)
    return hmac.compare_digest(expected, headers["X-Relay-Signature"])


def hook_config(url: str, **over: object) -> dict[str, Any]:
    hook = {"name": "itsm", "url": url, "secret": SECRET, "backoff_min_s": 10, "backoff_max_s": 60}
    hook.update(over)
    return {"webhooks": [hook]}


async def test_signed_delivery_with_retries_in_order(make_harness, receiver):
    h = make_harness(hook_config(receiver.url))
    gw = Gateway()
    h.send(gw.event("line1", "trip_phase_a", True, T0))  # revision 1
    h.send(gw.event("line1", "trip_phase_a", False, T0))  # revision 2
    sender = WebhookSender(h.engine, h.config.webhooks[0], h.clock, h.counters)
    receiver.fail = 2
    async with httpx.AsyncClient(timeout=5) as client:
        assert await sender.run_once(client) == 1  # only revision 1: revision 2 waits
        assert await sender.run_once(client) == 0  # backing off
        for _ in range(10):
            h.clock.advance(70)
            await sender.run_once(client)
            if pending(h.engine, "itsm") == 0:
                break
    assert pending(h.engine, "itsm") == 0
    revisions = [int(headers["X-Relay-Ticket-Revision"]) for headers, _ in receiver.got]
    assert revisions == [1, 1, 1, 2]  # two failures, then in order
    for headers, body in receiver.got:
        assert signature_holds(headers, body)
        doc = json.loads(body)
        assert doc["ticket_id"] == int(headers["X-Relay-Ticket-Id"])
        assert doc["ticket"]["revision"] == doc["revision"]
    tampered = receiver.got[-1][1].replace(b"line1", b"line9")
    headers = receiver.got[-1][0]
    assert not signature_holds(headers, tampered)
    assert h.counters.snapshot()["webhook_itsm_retries"] == 2


async def test_gives_up_after_max_attempts(make_harness, receiver):
    h = make_harness(hook_config(receiver.url, max_attempts=3))
    h.send(Gateway().event("line1", "trip_phase_a", True, T0))
    sender = WebhookSender(h.engine, h.config.webhooks[0], h.clock, h.counters)
    receiver.fail = 100
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(5):
            await sender.run_once(client)
            h.clock.advance(120)
    assert len(receiver.got) == 3
    assert h.scalar("SELECT count(*) FROM webhook_outbox WHERE dead") == 1
    assert h.counters.snapshot()["webhook_itsm_dead"] == 1


async def test_unreachable_receiver_is_retried(make_harness):
    h = make_harness(hook_config("http://127.0.0.1:9/nothing-listens"))
    h.send(Gateway().event("line1", "trip_phase_a", True, T0))
    sender = WebhookSender(h.engine, h.config.webhooks[0], h.clock, h.counters)
    async with httpx.AsyncClient(timeout=2) as client:
        await sender.run_once(client)
    assert pending(h.engine, "itsm") == 1
    assert "ConnectError" in h.scalar("SELECT last_error FROM webhook_outbox")
