"""The uplink against a real Mosquitto that stops cleanly, dies or hangs: a clean stop sends
its death record before disconnecting, and an idle uplink notices a dead or frozen broker
by itself and reconnects (a new birth), with nothing to publish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.uplink import Uplink, announced_keepalive
from tests.gateway.test_uplink import running_uplink
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto

# Saved after every change, so the test subscriber's session survives a SIGKILL and it
# receives the birth of a reconnect however the two reconnects race.
SAVE_EVERY_CHANGE = "autosave_on_changes true\nautosave_interval 1\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto", extra_conf=SAVE_EVERY_CHANGE)
    b.start()
    try:
        yield b
    finally:
        if b.proc is not None:
            os.kill(b.proc.pid, signal.SIGCONT)
        b.stop()


@contextlib.asynccontextmanager
async def idle_uplink(outbox: Outbox, broker: Mosquitto, **kw: object) -> AsyncIterator[Uplink]:
    """An uplink with nothing to send: no health records, an empty outbox."""
    async with running_uplink(outbox, broker, **kw) as uplink:
        yield uplink


def births(c: Collector) -> list[int]:
    return [b.connection for b in c.of_kind("birth")]


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - the uplink's stats have no event
            await asyncio.sleep(0.05)


def test_the_announced_keepalive_is_half_the_configured_one() -> None:
    assert announced_keepalive(30) == 15
    assert announced_keepalive(7) == 4
    assert announced_keepalive(5) == 3


async def test_a_clean_stop_publishes_its_death_record_before_disconnecting(
    outbox: Outbox, broker: Mosquitto
) -> None:
    async with Collector(broker.host, broker.port) as sub:
        async with idle_uplink(outbox, broker) as uplink:
            await sub.wait_for(lambda c: births(c) == [1], what="birth")
            assert uplink.stats.connected
        # leaving the block cancelled the uplink: a clean stop
        await sub.wait_for(lambda c: len(c.of_kind("death")) >= 1, timeout=10, what="death")
    deaths = sub.of_kind("death")
    assert [(d.reason, d.connection, d.session) for d in deaths] == [("shutdown", 1, 1)]


async def test_an_idle_uplink_reconnects_after_the_broker_is_killed(
    outbox: Outbox, broker: Mosquitto
) -> None:
    async with Collector(broker.host, broker.port) as sub, idle_uplink(outbox, broker) as uplink:
        await sub.wait_for(lambda c: births(c) == [1], what="first birth")
        broker.kill()
        await until(lambda: not uplink.stats.connected, 10)
        broker.start()  # same port, nothing published meanwhile
        await sub.wait_for(lambda c: 2 in births(c), timeout=30, what="a new birth")
        assert outbox.depth == 0 and uplink.stats.connections == 2


async def test_an_idle_uplink_notices_a_frozen_broker_through_its_keepalive(
    outbox: Outbox, broker: Mosquitto
) -> None:
    assert broker.proc is not None
    frozen = idle_uplink(outbox, broker, keepalive_s=6)
    async with Collector(broker.host, broker.port) as sub, frozen as uplink:
        await sub.wait_for(lambda c: births(c) == [1], what="first birth")
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the socket stays open, no answer
        try:
            await until(lambda: not uplink.stats.connected, 30)
            assert "keep alive" in uplink.stats.last_error.lower()
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        await sub.wait_for(lambda c: max(births(c)) >= 2, timeout=60, what="a new birth")
