"""The agent keeps every record until the center has stored it: a broker SIGKILLed with
the center away loses its queue, and the center still ends up with every record.

Real parts: Mosquitto with persistence saved only on its default schedule (every 30 min,
so a SIGKILL loses whatever it queued), the agent as a process, the center's service, and
the load generator's IEC 104 outstation as the relay."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from center.config import parse_config
from center.server import CenterService
from simulator.relays.iec104.load import LoadGenerator
from tests.center.mqtt_support import eventually
from tests.e2e.test_gateway_liveness_e2e import relay_and_agent
from tests.support.agent_process import AgentProcess
from tests.support.mosquitto import Mosquitto


class Center:
    """The center's service in this process, stopped and started again on one database."""

    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        self.config = parse_config({
            "center": {"instance": "ack-test", "state_dir": str(tmp_path / "center")},
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": "center-ack",
                     "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
            "api": {"enabled": False},
        })  # fmt: skip
        self.service: CenterService | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.service = await asyncio.to_thread(CenterService, self.config)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.service.run(self._stop))
        service = self.service
        await eventually(lambda: service.mqtt_status["subscribed"], 30, "center subscribed")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 15)
        self._task = None

    def value(self, sql: str) -> Any:
        assert self.service is not None
        with self.service.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()


@contextlib.asynccontextmanager
async def plant(
    tmp_path: Path, broker: Mosquitto
) -> AsyncIterator[tuple[Center, LoadGenerator, AgentProcess]]:
    center = Center(tmp_path, broker)
    await center.start()
    relay, agent = relay_and_agent(tmp_path, broker, broker={"ack_timeout_s": 2.0})
    agent.start()
    try:
        yield center, relay, agent
    finally:
        agent.stop()
        relay.stop()
        await center.stop()


async def test_a_broker_killed_while_the_center_is_down_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    events = "SELECT count(*) FROM records WHERE kind = 'event'"
    async with plant(tmp_path, mosquitto) as (center, relay, agent):
        await relay.wait_for_clients()
        # the interrogation after connect: stored and acknowledged before the outage
        await eventually(lambda: center.value(events) == 20, 60, "interrogation stored")
        await center.stop()  # its session stays at the broker, which queues for it
        result = await relay.run(rate=500, duration_s=4.0)
        assert result.sent >= 1000
        await asyncio.sleep(1.0)  # the agent has sent them all: they sit in the broker
        mosquitto.kill()  # the queue was never saved: the broker forgets it
        mosquitto.start()
        await center.start()
        try:
            await eventually(
                lambda: center.value(events) == 20 + result.sent, 90, "every event stored"
            )
        except AssertionError:
            print(agent.log()[-6000:])
            raise
        # Every record the agent made is there, once, and the outbox drained by the acks.
        seqs = "SELECT count(DISTINCT seq), max(seq) FROM records WHERE gateway_id = 'gw-north-1'"
        assert center.service is not None
        with center.service.engine.connect() as conn:
            distinct, highest = conn.execute(sa.text(seqs)).one()
        assert distinct == highest
        await eventually(lambda: outbox_rows(tmp_path / "state") == 0, 30, "outbox drained")


def outbox_rows(state_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(state_dir / "outbox.sqlite")) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
