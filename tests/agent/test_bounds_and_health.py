"""The agent's stated bounds and health signals, one test each (docs/architecture.md,
"Guarantees"): publishes in flight stay within `broker.max_in_flight`; remote poll
requests beyond `remote.max_concurrent` + `max_queued` are answered `busy`; the outbox
depth and age metrics follow a backlog; the systemd watchdog is fed only while the
outbox writer lives.

The daemon is real (config, outbox, pipeline, uplink, metrics) with the fake relay driver
of the on-demand poll tests; the broker is a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from agent.daemon import AgentDaemon
from gateway.rpc import reply_topic, request_topic
from protocols.observations import PointObservation
from tests.agent.test_control_support import (  # noqa: F401 - fixtures
    TOKEN,
    FakeRelay,
    fake_relays_fixture,
    running,
    short_dir_fixture,
    wait_until,
    write_config,
)
from tests.center.mqtt_support import running_center
from tests.support.collector import Collector
from tests.support.metrics import scrape, value
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt_proxy import MqttProxy


def trips(n: int) -> list[PointObservation]:
    return [PointObservation("line1", "1011", i % 2 == 0) for i in range(n)]


async def test_publishes_in_flight_stay_within_max_in_flight(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    proxy = MqttProxy(mosquitto.host, mosquitto.port)
    port = await proxy.start()
    # One record a publish, so that a backlog wants many publishes at once.
    limits = ("max_in_flight = 3", "max_records_per_message = 1")
    loaded = write_config(short_dir, port, devices=("line1",), broker=limits)
    try:
        async with Collector(mosquitto.host, mosquitto.port) as col, running(loaded, True) as d:
            assert d.uplink is not None
            assert d.pipeline is not None
            await wait_until(lambda: d.outbox.depth == 0, what="the first records sent")
            proxy.hold_acks = True  # the broker stops confirming
            before = proxy.qos1_publishes
            await d.pipeline.deliver(trips(40))
            await wait_until(lambda: proxy.qos1_publishes - before >= 3, what="3 in flight")
            await asyncio.sleep(1.0)  # room for a fourth, which must not come
            assert proxy.qos1_publishes - before == 3
            assert d.outbox.depth >= 40 - 3  # the rest waits in the outbox
            proxy.release()
            await col.wait_for(
                lambda c: len([e for e in c.of_kind("event") if e.address == "1011"]) >= 41,
                what="every trip once the broker confirms again",
            )
    finally:
        await proxy.stop()


async def test_remote_polls_beyond_the_queue_are_answered_busy(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    loaded = write_config(short_dir, mosquitto.port, devices=("line1", "slow"), remote=True,
                          remote_limits=("max_concurrent = 2", "max_queued = 3"))  # fmt: skip
    ids = [f"burst{n}x{time.monotonic_ns()}" for n in range(9)]
    async with running(loaded, True), aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        for request_id in ids:
            await client.subscribe(reply_topic("north", "gw1", request_id), qos=1)
        await asyncio.sleep(0.5)  # let the agent's request subscription follow its birth
        for request_id in ids:  # nine reads of a relay that never answers, at once
            request = {
                "v": 1, "request_id": request_id, "actor": "alice", "token": TOKEN,
                "device": "slow", "what": "identity", "timeout_s": 30,
                "reply_to": reply_topic("north", "gw1", request_id),
            }  # fmt: skip
            await client.publish(request_topic("north", "gw1"), json.dumps(request), qos=1)
        codes: list[str] = []
        async with asyncio.timeout(60):
            async for message in client.messages:
                reply = json.loads(bytes(message.payload))
                codes.append(reply.get("code") or "ok")
                if len(codes) == len(ids):
                    break
        slow_polls = [p for relay in FakeRelay.instances for p in relay.polls if p[0] == "slow"]
    # At most 2 served and 3 queued: the other requests were refused at once, not queued.
    assert codes.count("busy") >= len(ids) - (2 + 3), codes
    assert set(codes) <= {"busy", "timeout"}, codes
    # Those accepted ran out of the agent's time budget, in service or still queued.
    assert len(slow_polls) <= codes.count("timeout") <= 5


async def test_outbox_depth_and_age_metrics_follow_a_backlog(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    metrics_port = free_port()
    loaded = write_config(short_dir, mosquitto.port, devices=("line1",),
                          extra=f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')  # fmt: skip
    mosquitto.stop()  # no broker: records wait

    async def outbox(name: str) -> float:
        # The metrics are served by this very loop: scrape from a thread.
        found = value(await asyncio.to_thread(scrape, metrics_port), f"relay_agent_outbox_{name}")
        assert found is not None
        return found

    async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + 60
        while not await check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)

    async with running(loaded) as daemon:
        assert daemon.pipeline is not None
        await daemon.pipeline.deliver(trips(25))
        depth = daemon.outbox.depth
        assert depth >= 25

        async def depth_shown() -> bool:
            return await outbox("depth") == depth

        await until(depth_shown, "the depth")
        first = await outbox("oldest_age_seconds")

        async def older() -> bool:
            return await outbox("oldest_age_seconds") >= first + 1.0

        await until(older, "the age to grow")
        mosquitto.start()
        # A record leaves the outbox once the center has stored it (end-to-end ack).
        db_url = f"sqlite:///{short_dir / 'center.sqlite'}"
        async with running_center(mosquitto.host, mosquitto.port, db_url, "center-depth"):

            async def drained() -> bool:
                return await outbox("depth") == 0

            await until(drained, "the backlog stored at the center")
            assert await outbox("oldest_age_seconds") == 0


@pytest.fixture
def notify_socket(short_dir: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(short_dir / "notify"))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    fields: list[str] = []
    while True:
        try:
            fields += sock.recv(4096).decode().split("\n")
        except BlockingIOError:
            return fields


async def test_the_watchdog_starves_once_the_outbox_writer_is_gone(
    fake_relays: type[FakeRelay],
    short_dir: Path,
    mosquitto: Mosquitto,
    notify_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    loaded = write_config(short_dir, mosquitto.port, devices=("line1",))
    seen: list[str] = []

    def pinged(count: int) -> Callable[[], bool]:
        def check() -> bool:
            seen.extend(received(notify_socket))
            return seen.count("WATCHDOG=1") >= count

        return check

    async with running(loaded) as daemon:
        await wait_until(pinged(3), what="the watchdog fed")
        stop_writer(daemon)
        await wait_until(lambda: not daemon.outbox.writer_alive, what="the writer gone")
        received(notify_socket)  # what was sent before
        await asyncio.sleep(1.0)  # ten intervals
        assert "WATCHDOG=1" not in received(notify_socket)


def stop_writer(daemon: AgentDaemon) -> None:
    """The outbox writer thread ends, as when it dies; the rest of the outbox (its reader,
    which the uplink uses) stays open. `None` on its queue is what ends its loop."""
    daemon.outbox._queue.put(None)
