"""A test subscriber that collects every record published under relay/v1/#.

It uses a persistent session (fixed client id, clean_session=False) and reconnects by
itself, so a broker restart loses nothing queued for it at QoS 1. Like the center, it
acknowledges what it collected end to end (center/acks.py), so the agent's outbox drains;
`acknowledge=False` plays a center that stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt

from center import acks
from common import mqtt_client
from gateway import wire


class Collector:
    def __init__(
        self, host: str, port: int, topic_filter: str = "relay/v1/#", acknowledge: bool = True
    ) -> None:
        self.host, self.port, self.topic_filter = host, port, topic_filter
        self.acknowledge = acknowledge
        self.client_id = f"collector-{uuid.uuid4().hex[:8]}"
        self.messages: list[tuple[str, bytes]] = []
        self.records: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with mqtt_client.Client(
                    self.host, self.port, identifier=self.client_id, clean_session=False
                ) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        payload = bytes(message.payload)
                        self.messages.append((str(message.topic), payload))
                        if str(message.topic).startswith("relay/v1/center"):
                            continue
                        self.records.extend(wire.decode_envelope(payload))
                        if self.acknowledge:
                            for ack in acks.collect([(str(message.topic), payload)]):
                                topic = wire.ack_topic(ack.site, ack.gateway_id)
                                await client.publish(topic, acks.encode(ack), qos=1)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.records if r.kind == kind]

    async def wait_for(
        self, predicate: Callable[[Collector], bool], timeout: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                kinds = [r.kind for r in self.records]
                raise AssertionError(f"timed out waiting for {what or predicate}; have {kinds}")
            await asyncio.sleep(0.05)
