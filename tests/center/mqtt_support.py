"""Helpers for center tests through a real Mosquitto: a QoS-1 publisher, polling, and
`relay-center serve` in this loop or as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from center.config import parse_config
from center.ingest import Message
from center.server import CenterService
from tests.support.mosquitto import free_port


async def publish_all(
    host: str, port: int, messages: list[Message], client_id: str = "pub"
) -> None:
    """Publish at QoS 1, each awaited to its PUBACK, like the agent's uplink."""
    async with aiomqtt.Client(host, port, identifier=client_id) as client:
        for m in messages:
            await client.publish(m.topic, m.payload, qos=1)


async def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; generous deadline, never a sleep-assert."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


def start_center(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "center.cli", "serve", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def subscribed(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(json.load(r)["mqtt"]["subscribed"])
    except OSError:
        return False


@contextlib.asynccontextmanager
async def running_center(
    host: str, port: int, db_url: str, client_id: str, **sections: Any
) -> AsyncIterator[Any]:
    """`relay-center serve` in this loop (API off), subscribed before it is handed over;
    `sections` adds config sections (e.g. devices=[...])."""
    config = parse_config(
        {
            "mqtt": {"host": host, "port": port, "client_id": client_id},
            "database": {"url": db_url},
            "api": {"enabled": False, "port": free_port()},
            **sections,
        }
    )
    service = await asyncio.to_thread(CenterService, config)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await eventually(lambda: service.mqtt_status["subscribed"], what="center subscribed")
        yield service
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
