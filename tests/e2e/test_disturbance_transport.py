"""A disturbance record from the agent's sink to the center, through the real pipeline,
outbox, uplink, Mosquitto and the center's MQTT intake: trips overtake it, and it survives
an agent restart and a broker outage mid-transfer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import sqlalchemy as sa

from agent.disturbance import comtrade_record
from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from center import acks
from center.server import CenterService
from center.store.queries import get_ticket
from common.tasks import first_failure
from gateway import comtrade, wire
from gateway.outbox import Outbox
from gateway.uplink import Uplink, UplinkSettings
from protocols.observations import PointObservation
from protocols.profile_loader import load_named
from tests.center.mqtt_support import eventually, running_center
from tests.support.collector import Collector
from tests.support.disturbance_synth import Fault, observation
from tests.support.mosquitto import Mosquitto

SITE, GW, DEVICE = "north", "gw1", "line1"
CONTEXT = DeviceContext(SITE, GW, DEVICE, "iec104", load_named("line-protection"))
CHUNK = 1024
# 2 s at 1 kHz: 2,000 samples of 6 analog + 2 digital channels, ~44 KB, ~43 chunks.
LONG = Fault(duration_ms=2000, trigger_time=datetime(2025, 3, 1, 8, 0, 1, 21_000, tzinfo=UTC))


def pipeline(path: Path) -> tuple[Outbox, Pipeline]:
    box = Outbox(path)
    box.open()
    return box, Pipeline(box, {DEVICE: CONTEXT}, chunk_bytes=CHUNK)


def trip(at: datetime) -> PointObservation:
    return PointObservation(DEVICE, "1011", True, device_time=at, cause="spontaneous")


def birth(box: Outbox) -> Any:
    return lambda connection: wire.Birth(
        site=SITE,
        gateway_id=GW,
        session=box.session,
        seq=box.last_seq,
        gateway_time=wire.utcnow(),
        connection=connection,
        agent_version="test",
    )


@contextlib.asynccontextmanager
async def uplink(box: Outbox, broker: Mosquitto) -> AsyncIterator[Uplink]:
    box.bind_loop(asyncio.get_running_loop())
    settings = UplinkSettings(
        site=SITE,
        gateway_id=GW,
        host=broker.host,
        port=broker.port,
        reconnect_min_s=0.1,
        reconnect_max_s=0.3,
    )
    up = Uplink(settings, box, birth(box))
    task = asyncio.create_task(up.run())
    try:
        yield up
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def record_rows(service: CenterService) -> list[dict[str, Any]]:
    with service.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM disturbance_records")).mappings().all()
    return [dict(r) for r in rows]


def positions(records: list[Any]) -> tuple[int, list[int]]:
    """Where the trip event is in arrival order, and where each chunk is."""
    kinds = [r.kind for r in records]
    chunks = [i for i, k in enumerate(kinds) if k == "disturbance_chunk"]
    return kinds.index("event"), chunks


async def test_a_trip_queued_behind_a_record_is_delivered_before_its_chunks(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    box, pipe = pipeline(tmp_path / "outbox.sqlite")
    obs = observation(LONG, device_id=DEVICE)
    await pipe.deliver([obs])
    await pipe.deliver([trip(LONG.trigger_time)])
    assert box.bulk_depth > 10  # the record waits in the bulk lane, the trip in the main one
    async with Collector(mosquitto.host, mosquitto.port) as sub, uplink(box, mosquitto):
        await sub.wait_for(
            lambda c: box.bulk_depth == 0 and box.depth == 0 and len(c.of_kind("event")) == 1,
            what="everything delivered",
        )
    trip_at, chunk_at = positions(sub.records)
    assert trip_at < chunk_at[0]
    # Every chunk arrived once, in order, with the manifest's id.
    [manifest] = sub.of_kind("disturbance")
    chunks = sub.of_kind("disturbance_chunk")
    assert [c.index for c in chunks] == list(range(manifest.chunks))
    assert {(c.session, c.seq) for c in chunks} == {(manifest.session, manifest.seq)}
    box.close()


async def test_a_record_reaches_the_ticket_its_trip_opened_with_its_analysis(
    tmp_path: Path, mosquitto: Mosquitto, db_url: str
) -> None:
    box, pipe = pipeline(tmp_path / "outbox.sqlite")
    await pipe.deliver([trip(LONG.trigger_time)])
    await pipe.deliver([observation(LONG, device_id=DEVICE)])
    async with (
        running_center(mosquitto.host, mosquitto.port, db_url, "center-ticket") as service,
        uplink(box, mosquitto),
    ):
        rows = await eventually(
            lambda: (r := record_rows(service)) and r[0]["ticket_id"] and r,
            what="the record on its ticket",
        )
        with service.engine.connect() as conn:
            doc = get_ticket(conn, rows[0]["ticket_id"])
    box.close()
    assert doc is not None
    assert doc["fault_class"] == "protection_operation"
    [shown] = doc["disturbance_records"]
    assert shown["summary"].startswith("AG fault; IA 3000 A RMS")
    assert [e["entry"] for e in doc["timeline"]][-1] == "disturbance"


class DropAfter:
    """An MQTT client whose connection drops after `n` publishes (as a broker outage looks
    to the forwarder); the publishes before it go to the real broker."""

    def __init__(self, client: aiomqtt.Client, n: int) -> None:
        self.client, self.left = client, n

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        if self.left == 0:
            raise aiomqtt.MqttError("connection lost")
        self.left -= 1
        await self.client.publish(topic, payload, qos=qos)


async def test_a_trip_during_a_transfer_waits_for_at_most_the_chunk_in_flight(
    tmp_path: Path,
) -> None:
    box, pipe = pipeline(tmp_path / "outbox.sqlite")
    box.bind_loop(asyncio.get_running_loop())
    await pipe.deliver([observation(LONG, device_id=DEVICE)])
    published: list[str] = []

    class Client:
        async def publish(self, topic: str, payload: bytes, qos: int) -> None:
            records = wire.decode_envelope(payload)
            published.extend(
                f"chunk{r.index}" if isinstance(r, wire.DisturbanceChunk) else r.kind
                for r in records
            )
            if published[-1] == "chunk3":  # the relay trips while chunk 3 is in flight
                await pipe.deliver([trip(LONG.trigger_time)])
            for ack in acks.collect([(topic, payload)]):  # the center stored it
                await up.forwarder.on_ack(ack)

    up = Uplink(UplinkSettings(site=SITE, gateway_id=GW), box, birth(box))
    forward = asyncio.create_task(up._forward(Client()))  # type: ignore[arg-type]
    await eventually(lambda: box.bulk_depth == 0 and box.depth == 0, what="all forwarded")
    forward.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await forward
    assert published[:6] == ["disturbance", "chunk0", "chunk1", "chunk2", "chunk3", "event"]
    box.close()


async def test_a_transfer_resumes_after_an_agent_restart_and_a_broker_outage(
    tmp_path: Path, mosquitto: Mosquitto, db_url: str
) -> None:
    path = tmp_path / "outbox.sqlite"
    obs = observation(LONG, device_id=DEVICE)
    cfg, dat = comtrade.write(comtrade_record(CONTEXT, obs))
    async with running_center(mosquitto.host, mosquitto.port, db_url, "center-dr") as service:
        # First life of the agent: the connection drops after the manifest and 5 chunks.
        box, pipe = pipeline(path)
        box.bind_loop(asyncio.get_running_loop())
        await pipe.deliver([obs])
        total = box.bulk_depth
        up = Uplink(UplinkSettings(site=SITE, gateway_id=GW), box, birth(box))
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="agent-1") as c:
            await c.subscribe(up.ack_topic, qos=1)  # the center's acknowledgements
            with contextlib.suppress(aiomqtt.MqttError):
                await first_failure([up._forward(DropAfter(c, 6)), up._dispatch(c)])  # type: ignore[arg-type]
        assert 0 < box.bulk_depth < total
        await eventually(
            lambda: (rows := record_rows(service)) and rows[0]["received_chunks"] == 5,
            what="five chunks at the center",
        )
        box.close()  # the agent stops mid-transfer

        # Second life, while the broker is down; it comes back a moment later.
        mosquitto.stop()
        box, pipe = pipeline(path)
        assert box.bulk_depth == total - 5
        async with uplink(box, mosquitto) as up:
            await eventually(lambda: up.stats.last_error, what="the uplink finding no broker")
            mosquitto.start()
            rows = await eventually(
                lambda: (r := record_rows(service)) and r[0]["status"] != "receiving" and r,
                what="the record complete",
            )
        box.close()
    [row] = rows
    assert row["status"] == "complete", row["failure"]
    assert bytes(row["cfg"]) + bytes(row["dat"]) == cfg + dat
    assert hashlib.sha256(cfg + dat).hexdigest() == row["sha256"]
    assert json.loads(row["analysis"])["fault_type"] == "AG"
    assert row["fault_number"] == LONG.fault_number
    assert comtrade.read(cfg, dat).trigger_time == LONG.trigger_time
