"""The center's end-to-end acknowledgements: which ids a committed batch acknowledges, and
that the acknowledgement leaves only once the records are stored (both backends)."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import sqlalchemy as sa

from center import acks
from gateway import wire
from tests.center.mqtt_support import eventually, running_center
from tests.center.records import Gateway, message
from tests.support.mosquitto import Mosquitto


def test_a_batch_acknowledges_each_gateways_records_chunks_included() -> None:
    a, b = Gateway("north", "gw-a"), Gateway("south", "gw-b", session=4)
    first = message(*[a.event("line1", f"p{n}") for n in range(3)])  # seq 1-3
    a.event("line1", "lost")  # seq 4 never arrives: two ranges
    second = message(a.event("line1", "p5"), a.event("line1", "p6"))
    other = message(b.event("feeder2", "trip"))
    chunk = wire.DisturbanceChunk(
        site="north", gateway_id="gw-a", device_id="line1", session=1, seq=2,
        gateway_time=wire.utcnow(), index=7, data="AAAA",
    )  # fmt: skip
    births = message(a.birth())
    forged = (first.topic, first.payload.replace(b'"gw-a"', b'"gw-b"'))  # claims gw-b
    malformed = (second.topic, b'{"v": 1, "records": [{"session": 1')
    found = acks.collect(
        [(m.topic, m.payload) for m in (first, second, other, births, message(chunk))]
        + [forged, malformed]
    )
    assert [json.loads(acks.encode(x)) for x in found] == [
        {"v": 1, "site": "north", "gateway_id": "gw-a",
         "ranges": [{"session": 1, "first": 1, "last": 3}, {"session": 1, "first": 5, "last": 6}],
         "chunks": [{"session": 1, "seq": 2, "index": 7}]},
        {"v": 1, "site": "south", "gateway_id": "gw-b",
         "ranges": [{"session": 4, "first": 1, "last": 1}], "chunks": []},
    ]  # fmt: skip


async def test_the_acknowledgement_follows_the_commit(db_url: str, mosquitto: Mosquitto) -> None:
    gw = Gateway("north", "gw-a")
    batch = message(*[gw.event("line1", f"p{n}") for n in range(20)])
    received: list[tuple[wire.Ack, int]] = []
    async with running_center(mosquitto.host, mosquitto.port, db_url, "center-acks") as center:

        def stored() -> int:
            with center.engine.connect() as conn:
                query = "SELECT count(*) FROM records WHERE gateway_id = 'gw-a'"
                return int(conn.execute(sa.text(query)).scalar() or 0)

        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as agent:
            await agent.subscribe(wire.ack_topic("north", "gw-a"), qos=1)
            await agent.publish(batch.topic, batch.payload, qos=1)
            async with asyncio.timeout(30):
                async for m in agent.messages:
                    received.append((wire.decode_ack(bytes(m.payload)), stored()))
                    break
            await agent.publish(batch.topic, batch.payload, qos=1)  # a re-send: a duplicate
            async with asyncio.timeout(30):
                async for m in agent.messages:
                    received.append((wire.decode_ack(bytes(m.payload)), stored()))
                    break
        await eventually(lambda: center.counters.snapshot().get("acks_published") == 2)
    ranges = [wire.AckRange(session=1, first=1, last=20)]
    assert [(ack.ranges, n) for ack, n in received] == [(ranges, 20), (ranges, 20)]
