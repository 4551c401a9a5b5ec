"""Our aiomqtt client stops when its task is cancelled, whenever the cancellation comes.

The stock aiomqtt 2.x client on Python 3.11 loses a cancellation that arrives in the loop
turn its PUBACK does (`asyncio.wait_for`, CPython gh-86296): with it, the first test
hangs within a few rounds (it did in each of four runs, at rounds 0, 8, 0 and 1).
"""

from __future__ import annotations

import asyncio
import random

import aiomqtt
import pytest

from common.mqtt_client import Client
from tests.support.mosquitto import Mosquitto


async def test_a_publishing_task_stops_whenever_it_is_cancelled(mosquitto: Mosquitto) -> None:
    async def publish_forever(n: int) -> None:
        async with Client(mosquitto.host, mosquitto.port, identifier=f"cancel-{n}") as client:
            while True:
                await client.publish("load/one", b"x", qos=1)

    rounds = random.Random(7)
    for n in range(100):
        task = asyncio.create_task(publish_forever(n))
        await asyncio.sleep(rounds.uniform(0.02, 0.08))
        assert not task.done(), task  # it was publishing, not failing
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done, f"round {n}: the task runs on after its cancellation"
        assert task.cancelled()


async def _failing_disconnect(self: aiomqtt.Client, *exc: object) -> None:
    """Stands for a disconnect that fails (the broker gone mid-DISCONNECT)."""
    raise aiomqtt.MqttError("disconnect failed")


async def test_leaving_while_cancelled_keeps_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiomqtt.Client, "__aexit__", _failing_disconnect)
    client = Client("127.0.0.1", 1)
    # Returns without raising: `async with` then re-raises the CancelledError itself.
    cancelled = asyncio.CancelledError()
    await client.__aexit__(asyncio.CancelledError, cancelled, None)


async def test_a_failed_disconnect_still_fails_when_not_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiomqtt.Client, "__aexit__", _failing_disconnect)
    client = Client("127.0.0.1", 1)
    with pytest.raises(aiomqtt.MqttError, match="disconnect failed"):
        await client.__aexit__(None, None, None)
