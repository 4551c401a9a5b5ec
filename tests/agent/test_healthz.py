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


async def test_a_client_trickling_its_request_head_is_cut_after_five_seconds() -> None:
    """The request head has 5 s in all, not 5 s per line: a client sending a header line
    every second would otherwise hold its connection (and a task) for as long as it likes."""
    port = free_port()
    server = asyncio.create_task(serve_metrics(f"127.0.0.1:{port}", lambda: "", lambda: None))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            await asyncio.sleep(0.05)
        writer.write(b"GET /metrics HTTP/1.0\r\n")
        sent = 0
        with contextlib.suppress(ConnectionError):
            for sent in range(1, 13):  # 12 s of headers, one a second
                await asyncio.sleep(1)
                writer.write(b"X-Slow: %d\r\n" % sent)
                await writer.drain()
                if reader.at_eof() or await _closed(reader):
                    break
        assert sent < 12, "the server kept reading a request head for 12 s"
        writer.close()
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server ended the connection (a read returns EOF at once)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.01):
            return await reader.read(1) == b""
    return False
