"""The MQTT session: connect (TLS optional), birth, last-will death, reconnect with backoff,
and the forwarder (gateway/forwarder.py) that drains the outbox in order and removes a
record only on the center's end-to-end acknowledgement.

A lost connection is noticed without traffic: a watcher fails the session as soon as paho
reports the socket closed (a broker that died) or its keepalive ping unanswered (a broker
that hangs or a network that dropped), and the loop reconnects with backoff. A clean stop
publishes a death record and waits for its PUBACK before the clean DISCONNECT, which makes
the broker discard the will.

Every connection subscribes to the gateway's acknowledgement topic (`wire.ack_topic`)
before it forwards anything, and sends every unacknowledged row again, oldest first: what
a broker lost when it died is sent again, what the center already stored is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiomqtt

from common import mqtt_client
from common.tasks import first_failure
from common.tls_config import client_context
from gateway import wire
from gateway.forwarder import Forwarder, ForwardSettings
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

MessageHandler = Callable[[aiomqtt.Message, "Uplink"], Awaitable[None]]


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path
    check_hostname: bool = True


@dataclass
class UplinkSettings:
    site: str
    gateway_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    mqtt_version: str = "5"  # or "3.1.1": refused publishes then go unnoticed (no reason)
    tls: TlsFiles | None = None
    max_records_per_message: int = 200
    max_message_bytes: int = wire.MAX_PAYLOAD_BYTES
    max_in_flight: int = 8  # aiomqtt warns above 10 pending calls
    max_unacked_records: int = 10_000
    ack_timeout_s: float = 30.0
    ack_timeout_max_s: float = 600.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    health_interval_s: float = 60.0
    linger_s: float = 0.005
    goodbye_timeout_s: float = 2.0  # how long a clean stop waits for the death's PUBACK


@dataclass
class UplinkStats:
    connected: bool = False
    connections: int = 0
    messages_published: int = 0
    records_published: int = 0  # sent and PUBACKed by the broker (re-sends included)
    records_acknowledged: int = 0  # stored by the center, removed from the outbox
    publish_failures: int = 0
    refused: int = 0
    last_error: str = ""
    counters: dict[str, int] = field(default_factory=dict)


class PublishRefused(aiomqtt.MqttError):
    """The broker acknowledged a publish with a failure reason code (e.g. ACL denial)."""


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    return client_context(
        files.ca_file, files.cert_file, files.key_file, check_hostname=files.check_hostname
    )


def announced_keepalive(keepalive_s: int) -> int:
    """The keepalive told to the broker: half the configured one (at least 3 s).

    paho pings after that long without traffic and drops the connection when the ping goes
    unanswered for as long again, so a broker that vanished without closing the connection
    is noticed within `keepalive_s` (plus paho's one-second check). The broker, for its
    part, publishes the will after 1.5 times the announced value of silence."""
    return max(3, math.ceil(keepalive_s / 2))


class Uplink:
    """Owns the broker connection. `run()` never returns on broker failures: it backs off
    and reconnects; cancel it to stop (a clean stop publishes a death record)."""

    def __init__(
        self,
        settings: UplinkSettings,
        outbox: Outbox,
        birth: Callable[[int], wire.Birth],
        health: Callable[[int], wire.Health] | None = None,
        subscriptions: dict[str, MessageHandler] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self._birth = birth
        self._health = health
        self.subscriptions = subscriptions or {}
        self.stats = UplinkStats()
        self.client: aiomqtt.Client | None = None
        self._connection = 0
        self._refusals: list[str] = []
        self._acks: set[asyncio.Future[None]] = set()
        # The forwarding settings, by name, from the uplink's.
        forward = {f.name: getattr(settings, f.name) for f in fields(ForwardSettings)}
        self.forwarder = Forwarder(
            outbox, ForwardSettings(**forward), self._lifecycle_topic(wire.BATCH_KIND)
        )
        self.ack_topic = wire.ack_topic(settings.site, settings.gateway_id)

    # --- topics and lifecycle records ----------------------------------------------------

    def _lifecycle_topic(self, kind: str) -> str:
        return wire.topic(self.settings.site, self.settings.gateway_id, kind)

    def _death(self, connection: int, reason: str) -> bytes:
        record = wire.Death(
            site=self.settings.site,
            gateway_id=self.settings.gateway_id,
            session=self.outbox.session,
            seq=self.outbox.last_seq,
            gateway_time=wire.utcnow(),
            connection=connection,
            reason="shutdown" if reason == "shutdown" else "will",
        )
        return wire.encode_records([record])

    def _client(self, connection: int) -> aiomqtt.Client:
        s = self.settings
        client = mqtt_client.Client(
            s.host,
            s.port,
            identifier=s.client_id or s.gateway_id,
            username=s.username,
            password=s.password,
            keepalive=announced_keepalive(s.keepalive_s),
            # MQTT 5, so that a publish the broker refuses (ACL) says so in its PUBACK.
            protocol=(
                aiomqtt.ProtocolVersion.V5
                if s.mqtt_version == "5"
                else aiomqtt.ProtocolVersion.V311
            ),
            will=aiomqtt.Will(
                self._lifecycle_topic("death"), self._death(connection, "will"), qos=1
            ),
            tls_context=tls_context(s.tls) if s.tls else None,
            timeout=10,
        )
        self._watch_refusals(client)
        return client

    def _watch_refusals(self, client: aiomqtt.Client) -> None:
        """aiomqtt 2.x completes a publish on any PUBACK, even one whose MQTT 5 reason code
        says "not authorized" (0x87). Count those, so a window with a refusal fails and its
        rows stay in the outbox instead of being deleted as delivered."""
        paho = client._client  # noqa: SLF001 - aiomqtt 2.x keeps its paho client here (pinned <3)
        forward: Any = paho.on_publish

        def on_publish(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            if getattr(reason, "is_failure", False):
                self._refusals.append(str(reason))
            forward(c, userdata, mid, reason, properties)

        paho.on_publish = on_publish

    async def publish_direct(self, topic_name: str, payload: bytes) -> bool:
        """Publish one message now, at QoS 1, outside the outbox: for replies that are
        worth sending only while the asker waits. False when no session is up (nothing
        sent); raises `aiomqtt.MqttError` when the publish fails."""
        client = self.client
        if client is None:
            return False
        await client.publish(topic_name, payload, qos=1)
        return True

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        delay = self.settings.reconnect_min_s
        while True:
            self._connection += 1
            client = self._client(self._connection)
            try:
                async with client:
                    self.client = client
                    self.stats.connected = True
                    self.stats.connections += 1
                    delay = self.settings.reconnect_min_s
                    log.info(
                        "broker %s:%d connected (session %d, connection %d)",
                        self.settings.host,
                        self.settings.port,
                        self.outbox.session,
                        self._connection,
                    )
                    try:
                        await self._connected(client)
                    except asyncio.CancelledError:
                        # Still connected here: the clean DISCONNECT of leaving the `async
                        # with` makes the broker discard the will, so the death goes first.
                        await self._say_goodbye(client)
                        raise
            except aiomqtt.MqttError as exc:
                self.stats.last_error = str(exc)
                log.log(
                    logging.ERROR if isinstance(exc, PublishRefused) else logging.WARNING,
                    "broker %s:%d: %s; retrying in %.1fs",
                    self.settings.host,
                    self.settings.port,
                    exc,
                    delay,
                )
            finally:
                self.client = None
                self.stats.connected = False
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.settings.reconnect_max_s)

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """Publish the death record and wait for its PUBACK, before the clean disconnect."""
        self._refusals.clear()
        try:
            await asyncio.wait_for(
                client.publish(
                    self._lifecycle_topic("death"),
                    self._death(self._connection, "shutdown"),
                    qos=1,
                ),
                self.settings.goodbye_timeout_s,
            )
            self._raise_on_refusal("the death record")
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning(
                "no death record (%s); the center will find gateway %s silent once its "
                "health records stop",
                exc or type(exc).__name__,
                self.settings.gateway_id,
            )
            return
        log.info("death record acknowledged (connection %d); disconnecting", self._connection)

    async def _connected(self, client: aiomqtt.Client) -> None:
        self._refusals.clear()
        await client.publish(
            self._lifecycle_topic("birth"),
            wire.encode_records([self._birth(self._connection)]),
            qos=1,
        )
        self._raise_on_refusal("the birth record")
        # Before anything is forwarded: an acknowledgement must find us listening.
        await client.subscribe(self.ack_topic, qos=1)
        for topic_filter in self.subscriptions:
            await client.subscribe(topic_filter, qos=1)
        jobs = [self._forward(client), self._watch_connection(client), self._dispatch(client)]
        if self._health is not None:
            jobs.append(self._heartbeat(client))
        await first_failure(jobs)

    @staticmethod
    async def _watch_connection(client: aiomqtt.Client) -> None:
        """Fail the session as soon as paho reports the connection lost, traffic or not;
        an idle uplink would otherwise learn of a dead broker only at its next publish."""
        # aiomqtt 2.x resolves this future in paho's on_disconnect (pinned <3). Shielded:
        # cancelling this watcher must not cancel the client's own future.
        await asyncio.shield(client._disconnected)  # noqa: SLF001 - see above
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _forward(self, client: aiomqtt.Client) -> None:
        async def publish(topic_name: str, payload: bytes, records: int) -> None:
            try:
                await client.publish(topic_name, payload, qos=1)
            except aiomqtt.MqttError:
                self.stats.publish_failures += 1
                raise
            # A refused publish (ACL) fails the connection: its rows are sent again later.
            self._raise_on_refusal("records (they stay in the outbox)")
            self.stats.messages_published += 1
            self.stats.records_published += records

        self._refusals.clear()
        await self.forwarder.run(publish)

    def _raise_on_refusal(self, what: str) -> None:
        if not self._refusals:
            return
        self.stats.refused += len(self._refusals)
        reason = self._refusals[0]
        self._refusals.clear()
        raise PublishRefused(
            f"broker refused {what}: {reason}; is the certificate CN the gateway id "
            f"{self.settings.gateway_id!r} and does the ACL allow relay/v1/+/%u/#?"
        )

    async def _dispatch(self, client: aiomqtt.Client) -> None:
        try:
            await self._dispatch_messages(client)
        except aiomqtt.MqttError:
            # The iteration only says "disconnected"; paho's own reason (a keepalive
            # unanswered, a closed socket) is what an operator needs: raise that instead.
            await asyncio.shield(client._disconnected)  # noqa: SLF001 - aiomqtt 2.x, pinned <3
            raise

    async def _dispatch_messages(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.matches(self.ack_topic):
                # Not awaited one by one: acknowledgements that arrive together are deleted
                # in one outbox commit (the writer groups what is pending).
                task = asyncio.ensure_future(self._on_ack(message))
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)
                continue
            for topic_filter, handler in self.subscriptions.items():
                if message.topic.matches(topic_filter):
                    try:
                        await handler(message, self)
                    except Exception:  # one bad request never takes the uplink down
                        log.exception("handler for %s failed", message.topic)

    async def _on_ack(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        try:
            ack = wire.decode_ack(payload if isinstance(payload, bytes) else b"")
        except wire.WireError as exc:
            log.warning("acknowledgement ignored: %s", exc)
            return
        if (ack.site, ack.gateway_id) != (self.settings.site, self.settings.gateway_id):
            log.warning("acknowledgement for %s/%s ignored", ack.site, ack.gateway_id)
            return
        try:
            await self.forwarder.on_ack(ack)
        except Exception:  # the outbox closing under it; the record is re-sent and re-acked
            log.exception("acknowledgement not applied")
        self.stats.records_acknowledged = self.forwarder.acked

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        assert self._health is not None
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            await client.publish(
                self._lifecycle_topic("health"),
                wire.encode_records([self._health(self._connection)]),
                qos=1,
            )
