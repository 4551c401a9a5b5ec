"""aiomqtt's client, made safe to cancel on Python 3.11: every MQTT client here is this one.

Why: aiomqtt 2.x waits for each PUBACK, SUBACK, CONNACK and the disconnect with
`asyncio.wait_for`. On Python 3.11 `wait_for` loses the waiting task's cancellation when
the awaited future completes in the same turn of the loop (CPython gh-86296; 3.12
rewrote `wait_for` on `asyncio.timeout`): a task stopped just as its PUBACK arrives does
not stop, and runs on. The agent's uplink then keeps forwarding after a stop was asked
for (systemd kills it at TimeoutStopSec), and a test's subscriber never ends. Found as
a test teardown that hung until pytest's 300 s timeout; `tests/common/test_mqtt_client.py`
cancels a publishing task a hundred times; the stock client hung within the first nine.

This client waits with `asyncio.timeout` instead, which never swallows a cancellation
that is not its own, and leaving it while cancelled ends with the cancellation even when
the disconnect fails (the `MqttError` would otherwise replace it, and a reconnect loop
that catches `MqttError` would carry on). aiomqtt is pinned below 3: `_wait_for` is its
private helper, with the same signature in every 2.x.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

import aiomqtt

T = TypeVar("T")


class Client(aiomqtt.Client):
    async def _wait_for(self, fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 - aiomqtt's signature
        if timeout is None:
            timeout = self.timeout
        try:
            async with asyncio.timeout(None if timeout == math.inf else timeout):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError:
            if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
                return  # the cancellation goes on, not the failed disconnect
            raise
