"""The secure uplink on a real broker: the shipped Mosquitto TLS config and ACL, with
certificates from the shipped scripts/make-certs.

Proves: a gateway publishes under its own id and the center receives it; a gateway cannot
publish as another (the ACL drops it, and the broker logs it); a certificate from another CA,
a revoked certificate and a missing certificate are refused, with a clear broker log line."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.support.certs import ClientCert, Pki, make_pki, openssl_available
from tests.support.ci import in_ci
from tests.support.mosquitto import mosquitto_binary
from tests.support.tls_mosquitto import TlsMosquitto

DEADLINE_S = 20.0  # generous: a loaded 2-core CI machine
QUIET_S = 1.5  # how long a message that must NOT arrive is given to arrive anyway


def _tools_missing() -> str | None:
    if not openssl_available():
        return "openssl is not installed"
    try:
        mosquitto_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


_missing = _tools_missing()
if _missing and in_ci():
    raise RuntimeError(f"CI=true but {_missing}: run scripts/setup")
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"TLS broker tests: {_missing}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ("center", "gw-a", "gw-b", "gw-revoked"))


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA, issuing a certificate with a perfectly valid-looking CN."""
    return make_pki(tmp_path_factory.mktemp("foreign-pki"), ("gw-a",))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[TlsMosquitto]:
    server = TlsMosquitto(tmp_path / "broker", pki)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(
    broker: TlsMosquitto, pki: Pki, cert: ClientCert | None, identifier: str
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=DEADLINE_S,
        tls_params=aiomqtt.TLSParameters(
            ca_certs=str(pki.ca),
            certfile=str(cert.cert) if cert else None,
            keyfile=str(cert.key) if cert else None,
            cert_reqs=ssl.CERT_REQUIRED,
        ),
    )


@pytest.fixture
async def center(broker: TlsMosquitto, pki: Pki) -> AsyncIterator[aiomqtt.Client]:
    async with client(broker, pki, pki.client("center"), "center-test") as c:
        await c.subscribe("relay/v1/#", qos=1)
        yield c


async def _next_message(c: aiomqtt.Client, timeout: float) -> aiomqtt.Message | None:
    try:
        async with asyncio.timeout(timeout):
            async for message in c.messages:
                return message
    except TimeoutError:
        return None
    return None


async def _wait_for_log(broker: TlsMosquitto, needle: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for line in broker.log_text().splitlines():
            if needle in line:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"no broker log line with {needle!r}:\n{broker.log_text()}")


async def test_gateway_publishes_under_its_own_id_and_the_center_receives_it(
    broker: TlsMosquitto, pki: Pki, center: aiomqtt.Client
) -> None:
    async with client(broker, pki, pki.client("gw-a"), "gw-a") as gw:
        await gw.publish("relay/v1/site/gw-a/event/line1", b'{"v":1}', qos=1)
    message = await _next_message(center, DEADLINE_S)
    assert message is not None, "the center did not receive gw-a's own record"
    assert message.topic.value == "relay/v1/site/gw-a/event/line1"
    assert message.payload == b'{"v":1}'


async def _publish_denied(c: aiomqtt.Client, topic: str) -> None:
    """Publish where the ACL forbids it. Mosquitto answers a denied QoS 1 PUBLISH with a PUBACK
    (MQTT 5 reason 0x87, "not authorized"; aiomqtt does not surface it), and 2.0.11 then
    drops the connection ("Bad socket read/write"), so the call may return or raise."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with c:
            await c.publish(topic, b"forged", qos=1)


async def _only_marker_arrives(
    broker: TlsMosquitto, pki: Pki, center: aiomqtt.Client, gateway: str
) -> None:
    """The gateway publishes a marker under its own id, after its forgeries. Once the
    center has the marker, any forgery would have arrived before it (same broker, same
    subscriber, and the forgeries were handled first); then wait a little more anyway."""
    async with client(broker, pki, pki.client(gateway), gateway) as gw:
        await gw.publish(f"relay/v1/site/{gateway}/event", b"marker", qos=1)
    received = []
    while (message := await _next_message(center, DEADLINE_S)) is not None:
        received.append((message.topic.value, message.payload))
        if message.payload == b"marker":
            break
    assert received == [(f"relay/v1/site/{gateway}/event", b"marker")]
    assert await _next_message(center, QUIET_S) is None


@pytest.fixture
def debug_broker(tmp_path: Path, pki: Pki) -> Iterator[TlsMosquitto]:
    """Mosquitto 2.0 logs denied publishes at debug level only."""
    server = TlsMosquitto(tmp_path / "broker", pki, extra_conf="log_type debug\n")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def debug_center(debug_broker: TlsMosquitto, pki: Pki) -> AsyncIterator[aiomqtt.Client]:
    async with client(debug_broker, pki, pki.client("center"), "center-test") as c:
        await c.subscribe("relay/v1/#", qos=1)
        yield c


async def test_gateway_cannot_publish_as_another(
    debug_broker: TlsMosquitto, pki: Pki, debug_center: aiomqtt.Client
) -> None:
    await _publish_denied(
        client(debug_broker, pki, pki.client("gw-a"), "gw-a"), "relay/v1/site/gw-b/event"
    )
    await _only_marker_arrives(debug_broker, pki, debug_center, "gw-a")
    line = await _wait_for_log(debug_broker, "Denied PUBLISH from gw-a")
    assert "'relay/v1/site/gw-b/event'" in line


@pytest.mark.parametrize(
    "topic",
    [
        "relay/v1/center/state",  # only the center may say it is online
        "relay-rpc/v1/site/gw-b/request",  # only the center may ask a gateway to poll
        "relay-ack/v1/site/gw-b",  # only the center says what it stored
        "relay-ack/v1/site/gw-a",  # not even to itself
        "relay/v1/site/gw-ab/event",  # a prefix of another id is another id
        "relay/v1/gw-a/event",  # its id in the site position: not its own namespace
    ],
)
async def test_gateway_cannot_write_outside_its_namespace(
    broker: TlsMosquitto, pki: Pki, center: aiomqtt.Client, topic: str
) -> None:
    await _publish_denied(client(broker, pki, pki.client("gw-a"), "gw-a"), topic)
    await _only_marker_arrives(broker, pki, center, "gw-a")


async def test_gateway_receives_only_its_own_requests(
    broker: TlsMosquitto, pki: Pki, center: aiomqtt.Client
) -> None:
    async with client(broker, pki, pki.client("gw-a"), "gw-a") as gw:
        await gw.subscribe("relay-rpc/v1/#", qos=1)  # asks for everything; the ACL filters
        await center.publish("relay-rpc/v1/site/gw-b/request", b"for b", qos=1)
        await center.publish("relay-rpc/v1/site/gw-a/request", b"for a", qos=1)
        message = await _next_message(gw, DEADLINE_S)
        assert message is not None
        assert (message.topic.value, message.payload) == (
            "relay-rpc/v1/site/gw-a/request",
            b"for a",
        )


async def test_gateway_receives_only_its_own_acknowledgements(
    broker: TlsMosquitto, pki: Pki, center: aiomqtt.Client
) -> None:
    async with client(broker, pki, pki.client("gw-a"), "gw-a") as gw:
        await gw.subscribe("relay-ack/v1/#", qos=1)  # asks for everything; the ACL filters
        await center.publish("relay-ack/v1/site/gw-b", b"for b", qos=1)
        await center.publish("relay-ack/v1/site/gw-a", b"for a", qos=1)
        message = await _next_message(gw, DEADLINE_S)
        assert message is not None
        assert (message.topic.value, message.payload) == ("relay-ack/v1/site/gw-a", b"for a")


async def _connect_and_publish(c: aiomqtt.Client) -> None:
    async with c:
        await c.publish("relay/v1/site/gw-a/event", b"x", qos=1)


async def _assert_refused(broker: TlsMosquitto, c: aiomqtt.Client, needle: str) -> str:
    """The broker refuses the TLS handshake: it logs `needle` with the peer's address, and
    never logs the client as connected.

    With TLS 1.3 the client sees the refusal only after its CONNECT (aiomqtt then waits
    for a CONNACK that never comes), so the broker's log line is the positive proof and
    the client attempt is cancelled once it is there."""
    attempt = asyncio.create_task(_connect_and_publish(c))
    try:
        line = await _wait_for_log(broker, needle)
        if attempt.done():
            assert attempt.exception() is not None, "the refused client connected"
    finally:
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, OSError):
            await attempt
    # Mosquitto names the peer either in the same line ("Client connection from 127.0.0.1
    # failed: …", when the handshake fails while accepting) or in the connection's
    # "New connection from 127.0.0.1:…" line before it.
    lines = broker.log_text().splitlines()
    before = lines[: lines.index(line)]
    assert "127.0.0.1" in line or any("New connection from 127.0.0.1:" in x for x in before), (
        "\n".join(lines)
    )
    assert not [x for x in lines if f"as {c.identifier} " in x], "the client got in"
    return line


async def test_certificate_from_another_ca_is_refused(
    broker: TlsMosquitto, pki: Pki, foreign_pki: Pki, center: aiomqtt.Client
) -> None:
    intruder = foreign_pki.client("gw-a")
    # The intruder trusts our broker (it has our CA) and claims a real gateway's id, but its
    # own certificate is signed by another CA.
    await _assert_refused(
        broker, client(broker, pki, intruder, "gw-a-intruder"), "certificate verify failed"
    )
    assert await _next_message(center, QUIET_S) is None


async def test_client_without_certificate_is_refused(broker: TlsMosquitto, pki: Pki) -> None:
    await _assert_refused(
        broker, client(broker, pki, None, "anonymous"), "peer did not return a certificate"
    )


async def test_revoked_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    revoked = pki.client("gw-revoked")
    pki.revoke("gw-revoked")
    server = TlsMosquitto(tmp_path / "broker-crl", pki)  # reads the new crl.pem at start
    server.start()
    try:
        await _assert_refused(
            server, client(server, pki, revoked, "gw-revoked"), "certificate verify failed"
        )
        async with client(server, pki, pki.client("gw-b"), "gw-b") as gw:  # others still work
            await gw.publish("relay/v1/site/gw-b/event", b"ok", qos=1)
    finally:
        server.stop()


def test_mqtt5_puback_says_not_authorized(debug_broker: TlsMosquitto, pki: Pki) -> None:
    """What the uplink can learn: under MQTT 5 the PUBACK of a denied publish carries reason
    0x87. (aiomqtt 2.5 drops the reason code, and under MQTT 3.1.1 a denial looks like
    success, so an uplink that deletes on PUBACK must check it; see docs/operations.md.)"""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.reasoncodes import ReasonCode

    gw = pki.client("gw-a")
    acks: dict[int, int] = {}
    done = threading.Event()

    def on_publish(_c: paho.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        acks[mid] = reason.value
        done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-a", protocol=paho.MQTTv5)
    c.tls_set(ca_certs=str(pki.ca), certfile=str(gw.cert), keyfile=str(gw.key))
    c.on_publish = on_publish
    c.connect(debug_broker.host, debug_broker.port)
    c.loop_start()
    try:
        info = c.publish("relay/v1/site/gw-b/event", b"forged", qos=1)
        assert done.wait(DEADLINE_S), "no PUBACK"
        assert acks[info.mid] == 0x87
    finally:
        c.loop_stop()
        c.disconnect()
