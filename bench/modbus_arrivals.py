"""What reaches the broker in `compare_thingsboard.py`: each (unit, poll sequence) of
either master, when it first arrived, and what the agent still held in its outbox. The
bench's subscriber also answers as a center would (the agent deletes a record only on the
center's acknowledgement) and answers the ThingsBoard gateway's session-limits request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiomqtt
from thingsboard_peer import TB_RPC, session_limits_reply, telemetry_sequences

from common import mqtt_client
from gateway import wire
from simulator.harness.broker import Mosquitto

SITE, GATEWAY = "bench", "gw-bench"


def sequences(peer: str, body: Any) -> list[tuple[int, int]]:
    """(unit, sequence) pairs in one published message of either master."""
    found = []
    if peer == "agent":
        for record in body.get("records", []):
            if (seq := agent_sequence(record)) is not None:
                found.append(seq)
        return found
    telemetry: list[tuple[int, int]] = telemetry_sequences(body)
    return telemetry


def agent_sequence(record: dict[str, Any]) -> tuple[int, int] | None:
    """(unit, sequence) of the agent record that carries a poll's sequence register: one
    `measurements` record per poll (or, from agents before it, a `measurement` per value)."""
    if record.get("kind") == "measurements":
        value = record.get("values", {}).get("measurement:seq")
    elif record.get("address") == "measurement:seq":
        value = record.get("value")
    else:
        return None
    return (int(record["device_id"][1:]), int(value)) if value is not None else None


def agent_ack(body: Any) -> bytes | None:
    """What the center would send once it stored the records of one agent message: the
    agent deletes a record from its outbox only on this (at most 10,000 wait for one)."""
    ids = {(int(r["session"]), int(r["seq"])) for r in body.get("records", [])
           if r.get("kind") not in wire.LIFECYCLE_KINDS}  # fmt: skip
    if not ids:
        return None
    ack = wire.Ack(site=SITE, gateway_id=GATEWAY, ranges=wire.ranges_of(ids))
    return ack.model_dump_json().encode()


class Collector:
    """First arrival time of every (unit, sequence) at the broker; repeats counted."""

    def __init__(self, broker: Mosquitto, peer: str) -> None:
        self.broker, self.peer = broker, peer
        self.arrived: dict[tuple[int, int], float] = {}
        self.repeats = 0

    async def run(self, ready: asyncio.Event) -> None:
        topic = "relay/v1/#" if self.peer == "agent" else "v1/gateway/telemetry"
        async with mqtt_client.Client(self.broker.host, self.broker.port, identifier="bench-tb-sub",
                                  max_queued_incoming_messages=0) as client:  # fmt: skip
            await client.subscribe(topic, qos=1)
            if self.peer == "thingsboard":
                await client.subscribe(f"{TB_RPC}/request/+", qos=1)
            ready.set()
            async for message in client.messages:
                now = time.time()
                if message.topic.matches(f"{TB_RPC}/request/+"):
                    await self.answer(client, message)
                    continue
                body = json.loads(message.payload)
                if self.peer == "agent" and (ack := agent_ack(body)) is not None:
                    await client.publish(wire.ack_topic(SITE, GATEWAY), ack, qos=1)
                for key in sequences(self.peer, body):
                    if key in self.arrived:
                        self.repeats += 1
                    else:
                        self.arrived[key] = now

    @staticmethod
    async def answer(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        reply = session_limits_reply(json.loads(message.payload))
        if reply is not None:
            number = str(message.topic).rsplit("/", 1)[1]
            await client.publish(f"{TB_RPC}/response/{number}", json.dumps(reply), qos=1)


def outbox_sequences(state_dir: Path) -> set[tuple[int, int]]:
    """Sequences still waiting, durable, in the agent's outbox after it stopped."""
    path = state_dir / "outbox.sqlite"
    if not path.exists():
        return set()
    left = set()
    with contextlib.closing(sqlite3.connect(path)) as db:
        for (body,) in db.execute("SELECT body FROM outbox WHERE kind LIKE 'measurement%'"):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                if (seq := agent_sequence(json.loads(body))) is not None:
                    left.add(seq)
    return left
