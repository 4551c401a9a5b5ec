"""The agent's own uplink against a real TLS Mosquitto with client certificates and the
shipped per-gateway ACL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from center import acks
from gateway import wire
from gateway.outbox import Outbox, Pending
from gateway.uplink import TlsFiles, Uplink, UplinkSettings
from tests.support.certs import Pki, make_pki
from tests.support.tls_mosquitto import TlsMosquitto


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ("center", "gw-a"))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[TlsMosquitto]:
    server = TlsMosquitto(tmp_path / "broker", pki)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def files(pki: Pki, cn: str) -> TlsFiles:
    cert = pki.client(cn)
    return TlsFiles(pki.ca, cert.cert, cert.key)


@contextlib.asynccontextmanager
async def uplink_as(
    gateway_id: str, broker: TlsMosquitto, pki: Pki, box: Outbox
) -> AsyncIterator[Uplink]:
    box.bind_loop(asyncio.get_running_loop())

    def birth(connection: int) -> wire.Birth:
        return wire.Birth(
            site="north", gateway_id=gateway_id, session=box.session, seq=box.last_seq,
            gateway_time=wire.utcnow(), connection=connection, agent_version="test",
        )  # fmt: skip

    settings = UplinkSettings(
        site="north", gateway_id=gateway_id, host="127.0.0.1", port=broker.port,
        tls=files(pki, "gw-a"), reconnect_min_s=0.2, reconnect_max_s=0.5,
    )  # fmt: skip
    uplink = Uplink(settings, box, birth)
    task = asyncio.create_task(uplink.run())
    try:
        yield uplink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def event(gateway_id: str, n: int) -> Pending:
    record = wire.Event(
        site="north", gateway_id=gateway_id, device_id="line1", session=0, seq=0,
        gateway_time=wire.utcnow(), address=str(n), value=True,
    )  # fmt: skip
    topic = wire.topic("north", gateway_id, "event", "line1")
    return Pending(topic, "event", wire.encode_body(record))


async def center_messages(broker: TlsMosquitto, pki: Pki, out: list[str]) -> None:
    """The center's side: collect, and acknowledge end to end as the center does."""
    cert = pki.client("center")
    params = aiomqtt.TLSParameters(ca_certs=str(pki.ca), certfile=str(cert.cert),
                                   keyfile=str(cert.key))  # fmt: skip
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="center-t",
                              tls_params=params) as c:  # fmt: skip
        await c.subscribe("relay/v1/#", qos=1)
        async for message in c.messages:
            out.append(str(message.topic))
            payload = bytes(message.payload)
            for ack in acks.collect([(str(message.topic), payload)]):
                await c.publish(wire.ack_topic(ack.site, ack.gateway_id), acks.encode(ack), qos=1)


async def test_a_gateway_delivers_over_tls_under_its_own_id(
    tmp_path: Path, broker: TlsMosquitto, pki: Pki
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    seen: list[str] = []
    listener = asyncio.create_task(center_messages(broker, pki, seen))
    try:
        await asyncio.sleep(0.5)
        await box.append([event("gw-a", n) for n in range(10)])
        async with uplink_as("gw-a", broker, pki, box) as uplink:
            for _ in range(300):
                if box.depth == 0 and "relay/v1/north/gw-a/event/line1" in seen:
                    break
                await asyncio.sleep(0.05)
            assert uplink.stats.refused == 0
        assert box.depth == 0
        assert "relay/v1/north/gw-a/birth" in seen
    finally:
        listener.cancel()
        box.close()


async def test_records_refused_by_the_acl_stay_in_the_outbox(
    tmp_path: Path, broker: TlsMosquitto, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        await box.append([event("gw-b", n) for n in range(10)])
        # Configured as gw-b, but the certificate says gw-a: the ACL refuses every publish.
        async with uplink_as("gw-b", broker, pki, box) as uplink:
            for _ in range(300):
                if uplink.stats.refused:
                    break
                await asyncio.sleep(0.05)
            assert uplink.stats.refused > 0
        assert box.depth == 10
        assert any("is the certificate CN the gateway id" in r.message for r in caplog.records)
    finally:
        box.close()
