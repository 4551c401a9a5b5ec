"""The uplink against a real Mosquitto that stops cleanly, dies or hangs: a clean stop sends
its death record before disconnecting, and an idle uplink notices a dead or frozen broker
by itself and reconnects (a new birth), with nothing to publish: `running_uplink` sends no
health records and its outbox stays empty."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from gateway.outbox import Outbox
from gateway.uplink import announced_keepalive
from tests.gateway.test_uplink import running_uplink
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto


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
    outbox: Outbox, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    async with Collector(broker.host, broker.port) as sub:
        async with running_uplink(outbox, broker) as uplink:
            await sub.wait_for(lambda c: births(c) == [1], what="birth")
            assert uplink.stats.connected
        # leaving the block cancelled the uplink: a clean stop
        await sub.wait_for(lambda c: len(c.of_kind("death")) >= 1, timeout=10, what="death")
    deaths = sub.of_kind("death")
    assert [(d.reason, d.connection, d.session) for d in deaths] == [("shutdown", 1, 1)]


async def test_an_idle_uplink_reconnects_after_the_broker_is_killed(
    outbox: Outbox, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    async with Collector(broker.host, broker.port) as sub, running_uplink(outbox, broker) as uplink:
        await sub.wait_for(lambda c: births(c) == [1], what="first birth")
        broker.kill()
        await until(lambda: not uplink.stats.connected, 10)
        broker.start()  # same port, nothing published meanwhile
        await sub.wait_for(lambda c: 2 in births(c), timeout=30, what="a new birth")
        assert outbox.depth == 0
        assert uplink.stats.connections == 2


async def test_an_idle_uplink_notices_a_frozen_broker_through_its_keepalive(
    outbox: Outbox, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    assert broker.proc is not None
    frozen = running_uplink(outbox, broker, keepalive_s=6)
    async with Collector(broker.host, broker.port) as sub, frozen as uplink:
        await sub.wait_for(lambda c: births(c) == [1], what="first birth")
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the socket stays open, no answer
        try:
            await until(lambda: not uplink.stats.connected, 30)
            assert "keep alive" in uplink.stats.last_error.lower()
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        await sub.wait_for(lambda c: max(births(c)) >= 2, timeout=60, what="a new birth")
