"""A Prometheus endpoint for the agent: plain text exposition over a tiny asyncio HTTP
server (no dependency; a gateway should not need a web framework for one page).

    relay_agent_events_total, relay_agent_records_published_total,
    relay_agent_outbox_depth, relay_agent_outbox_oldest_age_seconds,
    relay_agent_link_up{device=…}, relay_agent_device_decode_errors_total{device=…}, …
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from common.prometheus import CONTENT_TYPE, Sample, render
from gateway.outbox import Outbox
from protocols.driver import STANDARD_COUNTERS

if TYPE_CHECKING:
    from agent.pipeline import Pipeline
    from agent.supervisor import LinkSupervisor
    from gateway.uplink import Uplink

log = logging.getLogger(__name__)

HELP = {
    "relay_agent_observations_total": "observations turned into records, by kind",
    "relay_agent_records_published_total": "records sent and PUBACKed by the broker (re-sends too)",
    "relay_agent_messages_published_total": "MQTT messages acknowledged by the broker",
    "relay_agent_records_acknowledged_total": "records the center acknowledged storing",
    "relay_agent_records_unacknowledged": "records sent on this connection, not yet acknowledged",
    "relay_agent_ack_timeouts_total": "times unacknowledged records were sent again",
    "relay_agent_outbox_depth": "records waiting in the outbox",
    "relay_agent_outbox_bytes": "bytes of records held in the outbox (both lanes)",
    "relay_agent_outbox_max_bytes": "the outbox cap in bytes",
    "relay_agent_outbox_max_records": "the outbox cap in records (both lanes)",
    "relay_agent_outbox_unavailable": "1 while the outbox cannot store (full): devices not acked",
    "relay_agent_outbox_refused_total": "records refused because the outbox could not store them",
    "relay_agent_outbox_oldest_age_seconds": "age of the oldest record waiting",
    "relay_agent_outbox_bulk_depth": "disturbance record chunks waiting (sent after events)",
    "relay_agent_outbox_evicted_total": "records evicted by the outbox cap, by kind (lifetime)",
    "relay_agent_broker_connected": "1 when the MQTT session is up",
    "relay_agent_link_up": "1 when the device answers, 0 when not, -1 not yet known",
    "relay_agent_link_restarts_total": "driver restarts per link",
    "relay_agent_device_decode_errors_total": "answers from the device that could not be decoded",
    "relay_agent_device_timeouts_total": "requests the device left unanswered",
    "relay_agent_device_restarts_total": "the device's link restarted, or the device alone "
    "started afresh on a shared bus",
    "relay_agent_driver_counter_total": "every counter a device's driver keeps, by name",
    "relay_agent_bus_counter_total": "counters of a shared serial bus (garbage, bad frames)",
}


class AgentMetrics:
    """The agent's samples, read from the parts the daemon built, served on `listen`."""

    def __init__(
        self,
        outbox: Outbox,
        pipeline: Pipeline,
        uplink: Uplink,
        links: Sequence[LinkSupervisor],
    ) -> None:
        self.outbox = outbox
        self.pipeline = pipeline
        self.uplink = uplink
        self.links = links

    def samples(self) -> list[Sample]:
        samples: list[Sample] = []
        for key, value in sorted(self.pipeline.counters.items()):
            samples.append(("relay_agent_observations_total", {"kind": key}, value))
        stats = self.uplink.stats
        samples.append(("relay_agent_records_published_total", {}, stats.records_published))
        samples.append(("relay_agent_messages_published_total", {}, stats.messages_published))
        samples.append(("relay_agent_broker_connected", {}, 1 if stats.connected else 0))
        forwarder = self.uplink.forwarder
        samples.append(("relay_agent_records_acknowledged_total", {}, forwarder.acked))
        samples.append(("relay_agent_records_unacknowledged", {}, forwarder.unacked))
        samples.append(("relay_agent_ack_timeouts_total", {}, forwarder.resends))
        samples.extend(outbox_samples(self.outbox))
        for device_id, status in sorted(self.pipeline.status.items()):
            up = -1 if status.link_up is None else int(status.link_up)
            samples.append(("relay_agent_link_up", {"device": device_id}, up))
        samples.extend(supervisor_samples(self.links))
        return samples

    def page(self) -> str:
        return render(self.samples(), HELP)

    def problem(self) -> str | None:
        return health(self.outbox)

    async def serve(self, listen: str) -> None:
        await serve_metrics(listen, self.page, self.problem)


def outbox_samples(box: Outbox) -> list[Sample]:
    samples: list[Sample] = []
    samples.append(("relay_agent_outbox_depth", {}, box.depth))
    samples.append(("relay_agent_outbox_oldest_age_seconds", {}, box.oldest_age()))
    samples.append(("relay_agent_outbox_bulk_depth", {}, box.bulk_depth))
    samples.append(("relay_agent_outbox_bytes", {}, box.size_bytes))
    samples.append(("relay_agent_outbox_max_bytes", {}, box.max_bytes))
    samples.append(("relay_agent_outbox_max_records", {}, box.max_records))
    samples.append(("relay_agent_outbox_unavailable", {}, 0 if box.unavailable is None else 1))
    samples.append(("relay_agent_outbox_refused_total", {}, box.refused))
    for kind, n in sorted(box.evicted_by_kind.items()):
        samples.append(("relay_agent_outbox_evicted_total", {"kind": kind}, n))
    return samples


def supervisor_samples(links: Sequence[LinkSupervisor]) -> list[Sample]:
    samples: list[Sample] = []
    for sup in links:
        samples.append(
            ("relay_agent_link_restarts_total", {"link": sup.plan.key}, sup.status.restarts)
        )
        samples.extend(_device_samples(sup))
    return samples


def _device_samples(sup: LinkSupervisor) -> list[Sample]:
    """Per device of one link: the standard counters under their own names (one alert rule
    for every protocol), then every counter its driver keeps, by name. The bus-level
    counters of a shared serial bus (garbage bytes, bad frames) go per link."""
    samples: list[Sample] = []
    link, protocol = sup.plan.key, sup.plan.protocol
    per_device = sup.device_counters()
    for name in STANDARD_COUNTERS:
        for device_id, counters in sorted(per_device.items()):
            labels = {"device": device_id, "link": link, "protocol": protocol}
            samples.append((f"relay_agent_device_{name}_total", labels, counters[name]))
    for device_id, counters in sorted(per_device.items()):
        for counter, value in sorted(counters.items()):
            if counter not in STANDARD_COUNTERS:
                labels = {"device": device_id, "link": link, "counter": counter}
                samples.append(("relay_agent_driver_counter_total", labels, value))
    bus_counters = getattr(sup.status.driver, "bus_counters", None)
    if bus_counters is not None:
        for counter, value in sorted(bus_counters().items()):
            labels = {"link": link, "counter": counter}
            samples.append(("relay_agent_bus_counter_total", labels, value))
    return samples


def health(box: Outbox) -> str | None:
    """Why the agent is unhealthy, or None. An outbox that cannot store is: its devices are
    no longer acknowledged (they keep their events) until it can again."""
    if box.unavailable is not None:
        return f"outbox cannot store since {box.unavailable_since:.0f} (unix): {box.unavailable}"
    if not box.writer_alive:
        return "outbox writer is dead"
    return None


async def serve_metrics(
    listen: str, page: Callable[[], str], problem: Callable[[], str | None] = lambda: None
) -> None:
    """Serve `GET /metrics` and `GET /healthz` (200 "ok", or 503 with `problem()`) on
    host:port until cancelled."""
    host, _, port = listen.rpartition(":")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # The whole request head within 5 s (not 5 s per line: a client sending a
            # header every few seconds would hold the connection forever); asyncio.timeout,
            # since 3.11's wait_for can lose a cancellation that races the read.
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b"/"
            if path == b"/metrics":
                body, status = page().encode(), b"200 OK"
                ctype = CONTENT_TYPE.encode()
            elif path == b"/healthz":
                why = problem()
                status = b"200 OK" if why is None else b"503 Service Unavailable"
                body, ctype = (b"ok\n" if why is None else f"{why}\n".encode()), b"text/plain"
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (status, ctype, len(body), body)
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError) as exc:
            log.debug("metrics request dropped: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host or "127.0.0.1", int(port))
    log.info("metrics on http://%s:%s/metrics", host or "127.0.0.1", port)
    async with server:
        await server.serve_forever()
