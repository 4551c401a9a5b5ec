"""`relay-center serve`: MQTT ingest, the ticket tick, webhook senders and the REST API, all
in one asyncio loop, each owned by one TaskGroup.

Delivery: the MQTT session is persistent (clean_session=False, fixed client id) and
PUBACKs are sent by hand, only after the batch holding the message is committed. A center
killed at any moment therefore loses nothing: the broker redelivers what was not
acknowledged, and the store keeps each record id once. A database outage stops the
acknowledgements (the broker holds the messages) and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import aiomqtt
import uvicorn
from sqlalchemy.exc import DBAPIError, OperationalError

from center import acks
from center.analytics.ageing_job import AgeingJob
from center.analytics.schedule import AgeingSchedule
from center.api import ApiContext, create_app
from center.clock import Clock, SystemClock
from center.config import CenterConfig
from center.crash_guard import CrashGuard
from center.ingest import Counters, Ingestor, Message
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from center.webhooks import WebhookSender
from common import mqtt_client
from common.systemd_notify import SystemdNotifier, watchdog_interval
from common.tasks import finish_despite_cancel, first_failure
from common.tls_config import client_context
from gateway import wire

log = logging.getLogger(__name__)
# How long a clean stop waits for the batch in hand to be stored and acknowledged.
_FINISH_ON_STOP_S = 10.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals are ours, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _payload(message: aiomqtt.Message) -> bytes:
    p = message.payload
    if isinstance(p, bytes | bytearray):
        return bytes(p)
    return b"" if p is None else str(p).encode()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class CenterService:
    def __init__(self, config: CenterConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.engine = make_engine(
            config.database_url, config.database.sqlite_synchronous, config.database.pool_size
        )
        migrate(self.engine)
        self.counters = Counters()
        self.ticket_engine = TicketEngine(config, self.clock)
        endpoints = [w.name for w in config.webhooks]
        self.ingestor = Ingestor(
            self.engine, self.ticket_engine, self.clock, endpoints, self.counters
        )
        self.crash_guard = CrashGuard(config.state_dir, config.mqtt.client_id)
        self.tickets = TicketService(self.engine, self.ticket_engine, endpoints, self.counters)
        self.ageing = AgeingSchedule(AgeingJob(self.engine, self.ticket_engine, endpoints))
        self.mqtt_status: dict[str, Any] = {
            "connected": False,
            "subscribed": False,
            "connections": 0,
            "last_error": "",
        }
        self.last_tick = 0.0  # loop time of the last successful ticket tick
        self.api_context = ApiContext(config, self.engine, self.tickets, self.counters, self.status)

    def status(self) -> dict[str, Any]:
        return {"instance": self.config.center.instance, "mqtt": dict(self.mqtt_status)}

    # --- MQTT ------------------------------------------------------------------------

    def _state(self, state: str) -> bytes:
        return json.dumps(
            {
                "state": state,
                "instance": self.config.center.instance,
                "at": self.clock.now().isoformat(),
            }
        ).encode()

    def _client(self) -> aiomqtt.Client:
        m = self.config.mqtt
        tls = None
        if m.tls is not None:
            tls = client_context(
                m.tls.ca_file, m.tls.cert_file, m.tls.key_file, check_hostname=m.tls.check_hostname
            )
        password = m.password_file.read_text().strip() if m.password_file else None
        client = mqtt_client.Client(
            m.host,
            m.port,
            identifier=m.client_id,
            username=m.username,
            password=password,
            clean_session=False,  # the broker keeps our queue while we are away
            keepalive=m.keepalive_s,
            will=aiomqtt.Will(wire.CENTER_STATE_TOPIC, self._state("offline"), qos=1, retain=True),
            tls_context=tls,
            timeout=10,
        )
        # aiomqtt has no manual-ack option; its paho client does. A PUBACK must follow
        # our commit, or a crash between the two loses the message.
        client._client.manual_ack_set(True)  # noqa: SLF001 - aiomqtt 2.x's paho client
        return client

    async def run_mqtt(self) -> None:
        m = self.config.mqtt
        delay = m.reconnect_min_s
        while True:
            client = self._client()
            try:
                async with client:
                    self.mqtt_status["connected"] = True
                    self.mqtt_status["connections"] += 1
                    delay = m.reconnect_min_s
                    await client.publish(
                        wire.CENTER_STATE_TOPIC, self._state("online"), qos=1, retain=True
                    )
                    await client.subscribe(m.subscription, qos=1)
                    self.mqtt_status["subscribed"] = True
                    log.info(
                        "broker %s:%d connected, subscribed %s", m.host, m.port, m.subscription
                    )
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                self.mqtt_status["last_error"] = str(exc)
                log.warning("broker %s:%d: %s; retrying in %.1fs", m.host, m.port, exc, delay)
            except asyncio.CancelledError:
                if self.mqtt_status["connected"]:
                    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                        await asyncio.wait_for(
                            client.publish(
                                wire.CENTER_STATE_TOPIC, self._state("offline"), qos=1, retain=True
                            ),
                            2,
                        )
                raise
            finally:
                self.mqtt_status["connected"] = self.mqtt_status["subscribed"] = False
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, m.reconnect_max_s)

    async def _consume(self, client: aiomqtt.Client) -> None:
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        limit = self.config.mqtt.max_batch_messages

        async def pump() -> None:
            async for message in client.messages:
                queue.put_nowait(message)

        async def work() -> None:
            while True:
                batch = [await queue.get()]
                while len(batch) < limit and not queue.empty():
                    batch.append(queue.get_nowait())
                # A clean stop lets the batch in hand finish (stored, acknowledged to the
                # gateways, PUBACKed), or the broker would deliver it again after a restart.
                await finish_despite_cancel(self._take(client, batch), _FINISH_ON_STOP_S)

        await first_failure([pump(), work()])

    async def _take(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        messages = [Message(str(x.topic), _payload(x)) for x in batch]
        await self.store(messages)
        # Committed: now the gateways may delete these records (end to end), and only then
        # the broker's copies (a crash in between re-delivers them; storing is idempotent).
        await self.acknowledge(client, messages)
        for x in batch:  # in order, as MQTT wants PUBACKs
            if x.qos > 0:
                client._client.ack(x.mid, x.qos)  # noqa: SLF001 - manual ack, above

    async def acknowledge(self, client: aiomqtt.Client, batch: list[Message]) -> None:
        """Tell each gateway which of its records are stored (center/acks.py)."""
        for ack in acks.collect([(m.topic, m.payload) for m in batch]):
            await client.publish(wire.ack_topic(ack.site, ack.gateway_id), acks.encode(ack), qos=1)
            self.counters.add("acks_published")

    async def store(self, batch: list[Message]) -> None:
        """Store a batch, minding the messages a previous run died on (center/crash_guard.py):
        those are stored alone, or quarantined once they have killed it often enough."""
        guard = self.crash_guard
        suspects = [m for m in batch if guard.suspect(m)]
        for m in suspects:
            if guard.suspect(m) >= guard.max_strikes:
                log.error("message on %r was in flight at %d deaths; quarantined", m.topic[:200],
                          guard.suspect(m))  # fmt: skip
                error = f"the center died {guard.suspect(m)} times while storing it"
                await self._quarantine(m, error, reason="crash_loop")
                guard.done([m])
            else:
                await self._guarded([m])
        rest = [m for m in batch if m not in suspects]
        if rest:
            await self._guarded(rest)

    async def _guarded(self, batch: list[Message]) -> None:
        self.crash_guard.begin(batch)
        try:
            await self._store(batch)
        except asyncio.CancelledError:
            self.crash_guard.abandon()  # a clean stop, not a death
            raise
        self.crash_guard.done(batch)

    async def _store(self, batch: list[Message]) -> None:
        """Commit a batch; retry database outages forever; isolate a message that cannot
        be stored (a bug) so it cannot wedge the queue."""
        try:
            await self._retrying(batch)
            return
        except Exception:  # a poison message somewhere in the batch
            log.exception("batch of %d messages failed; storing one by one", len(batch))
        for m in batch:
            try:
                await self._retrying([m])
            except Exception as exc:  # keep it for an operator, then move on
                log.exception("message on %r cannot be stored; quarantined", m.topic[:200])
                await self._quarantine(m, repr(exc)[:2000])

    async def _quarantine(self, m: Message, error: str, reason: str = "store_error") -> None:
        """Quarantine a message whose storage failed. Its content cannot fail the write (bytes
        and escaped text); a database outage is retried like any other. Should the write
        still fail otherwise, the payload goes to the log and the message is acknowledged:
        one message must never stop ingest for the fleet."""
        try:
            await self._retrying_call(lambda: self.ingestor.quarantine_message(m, error, reason))
        except Exception:
            self.counters.add("quarantine_write_failed")
            log.exception(
                "could not quarantine the message on %r; its payload (base64): %s",
                m.topic[:200],
                base64.b64encode(m.payload).decode("ascii"),
            )

    async def _retrying(self, batch: list[Message]) -> None:
        await self._retrying_call(lambda: self.ingestor.ingest(batch))

    async def _retrying_call(self, call: Callable[[], object]) -> None:
        delay = 0.5
        while True:
            try:
                await asyncio.to_thread(call)
                return
            except DBAPIError as exc:
                if not _retryable(exc):
                    raise
                self.counters.add("database_retries")
                log.warning("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # --- the rest ----------------------------------------------------------------------

    async def run_ticks(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tickets.tick)
                self.last_tick = asyncio.get_running_loop().time()
            except Exception:  # the next tick retries; never stop the clock
                log.exception("ticket tick failed")
            await asyncio.sleep(self.config.tickets.tick_interval_s)

    async def feed_watchdog(self, notifier: SystemdNotifier, interval: float) -> None:
        """Feed systemd's watchdog from the event loop, and only while ticket ticks (a
        database round trip in a worker thread) keep succeeding: a center whose loop or
        database is stuck is restarted."""
        loop = asyncio.get_running_loop()
        stale_after = 3 * self.config.tickets.tick_interval_s + 60.0
        while True:
            if loop.time() - self.last_tick < stale_after:
                notifier.watchdog()
                connected = "connected" if self.mqtt_status["subscribed"] else "disconnected"
                stored = self.counters.snapshot().get("records_stored", 0)
                notifier.status(f"broker {connected}, {stored} records stored")
            else:
                log.error("no ticket tick for %.0fs; not feeding the watchdog", stale_after)
            await asyncio.sleep(interval)

    async def log_counters(self, every_s: float = 60.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            log.info(
                "counters %s latency %s",
                json.dumps(self.counters.snapshot()),
                json.dumps(self.counters.latency_ms()),
            )

    async def run(self, stop: asyncio.Event) -> None:
        api: _EmbeddedServer | None = None
        if self.config.api.enabled:
            api = _EmbeddedServer(
                uvicorn.Config(
                    create_app(self.api_context),
                    host=self.config.api.host,
                    port=self.config.api.port,
                    lifespan="off",
                    access_log=False,
                    log_config=None,
                )
            )
        notifier = SystemdNotifier.from_environment()
        self.last_tick = asyncio.get_running_loop().time()
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self.run_mqtt()),
                group.create_task(self.run_ticks()),
                group.create_task(self.log_counters()),
                group.create_task(self.ageing.run()),
            ]
            for hook in self.config.webhooks:
                sender = WebhookSender(self.engine, hook, self.clock, self.counters)
                tasks.append(group.create_task(sender.run()))
            api_task = group.create_task(api.serve()) if api else None
            await self._api_listening(api, api_task)
            notifier.ready(status=f"center {self.config.center.instance} serving")
            if (interval := watchdog_interval()) is not None:
                tasks.append(group.create_task(self.feed_watchdog(notifier, interval)))
            await stop.wait()
            log.info("stopping")
            notifier.stopping()
            if api is not None:
                api.should_exit = True
            for task in tasks:
                task.cancel()
            if api_task is not None:
                await api_task
        notifier.close()
        self.engine.dispose()

    @staticmethod
    async def _api_listening(api: _EmbeddedServer | None, task: asyncio.Task[None] | None) -> None:
        """READY only once the API accepts connections (or failed to: the group ends)."""
        while api is not None and task is not None and not api.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # uvicorn has no started event
