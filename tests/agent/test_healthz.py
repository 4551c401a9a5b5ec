"""The agent's /healthz over real HTTP: 200 "ok" while the outbox stores, 503 with the
reason while it cannot (the disk full, or the caps full of trips and alarms)."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agent.metrics import health, serve_metrics
from gateway.outbox import Outbox, OutboxFull, Pending
from tests.support.mosquitto import free_port


def get(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


async def test_healthz_is_503_with_the_reason_while_the_outbox_cannot_store(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_records=1000)
    box.open()
    port = free_port()
    server = asyncio.create_task(
        serve_metrics(f"127.0.0.1:{port}", lambda: "", lambda: health(box))
    )
    try:
        trip = Pending("relay/v1/s/g/event/d", "event", b'{"signal":"trip"}')
        await box.append([trip] * 1000)
        for _ in range(100):
            with contextlib.suppress(OSError):
                if (await asyncio.to_thread(get, port))[0] == 200:
                    break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(get, port) == (200, "ok\n")
        with pytest.raises(OutboxFull):
            await box.append([trip])
        status, body = await asyncio.to_thread(get, port)
        assert status == 503
        assert body.startswith("outbox cannot store since")
        assert "protected records" in body
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        box.close()
