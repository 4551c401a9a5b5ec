"""The agent daemon: wires config, outbox, pipeline, link supervisors and the uplink.

Everything is validated before any port opens (`agent.config.load_config`). Every
long-lived task has one owner, the TaskGroup here; cancelling `run` stops them all, and the
outbox is closed last so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent import __version__
from agent.config import LoadedConfig
from agent.normalize import DeviceContext
from agent.outbox_alarm import OutboxCapAlarm
from agent.pipeline import Pipeline
from agent.supervisor import LinkSupervisor
from common.systemd_notify import SystemdNotifier, watchdog_interval
from gateway import wire
from gateway.outbox import Outbox
from gateway.uplink import MessageHandler, TlsFiles, Uplink, UplinkSettings
from protocols import registry
from protocols.registry import LinkPlan, PlannedDevice

log = logging.getLogger(__name__)


def link_plans(loaded: LoadedConfig) -> list[LinkPlan]:
    """Group enabled devices into links: devices with the same link key share a driver."""
    config = loaded.config
    buses = {b.id: b for b in config.buses}
    grouped: dict[str, list[PlannedDevice]] = {}
    protocol_of: dict[str, str] = {}
    bus_of: dict[str, str | None] = {}
    for device in config.devices:
        if not device.enabled:
            continue
        protocol = str(getattr(device, "protocol"))  # noqa: B009 - every device model has one
        spec = registry.get(protocol)
        key = spec.link_key(device)
        profile = loaded.profiles[device.id]
        grouped.setdefault(key, []).append(
            PlannedDevice(device, profile.section, tuple(p.address for p in profile.points))
        )
        protocol_of[key] = protocol
        bus_of[key] = getattr(device, "bus", None)
    return [
        LinkPlan(
            key=key,
            protocol=protocol_of[key],
            devices=tuple(devices),
            bus=buses.get(bus_of[key] or ""),
            state_dir=config.agent.state_dir,
        )
        for key, devices in grouped.items()
    ]


class AgentDaemon:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        cfg = loaded.config
        self.config = cfg
        self.outbox = Outbox(
            cfg.outbox_path,
            cfg.outbox.synchronous,
            cfg.outbox.max_records,
            max_bytes=cfg.outbox.max_bytes,
        )
        self.contexts = {
            d.id: DeviceContext(
                cfg.agent.site,
                cfg.agent.gateway_id,
                d.id,
                str(getattr(d, "protocol")),  # noqa: B009
                loaded.profiles[d.id],
            )
            for d in cfg.devices
        }
        self.plans = link_plans(loaded)
        self.pipeline: Pipeline | None = None
        self.supervisors: list[LinkSupervisor] = []
        self.uplink: Uplink | None = None
        self.subscriptions: dict[str, MessageHandler] = {}
        self.extra_tasks: list[Callable[[AgentDaemon], asyncio.Future[None] | object]] = []
        # On-demand polls: control socket + remote requests (agent/ondemand/service.py).
        from agent.ondemand.service import install as install_on_demand

        self.ondemand = install_on_demand(self)

    def _uplink_settings(self) -> UplinkSettings:
        cfg = self.config
        b = cfg.broker
        password = b.password_file.read_text().strip() if b.password_file else None
        tls = (
            TlsFiles(
                b.tls.ca_file,
                b.tls.cert_file,
                b.tls.key_file,
                check_hostname=b.tls.check_hostname,
            )
            if b.tls
            else None
        )
        return UplinkSettings(
            site=cfg.agent.site,
            gateway_id=cfg.agent.gateway_id,
            host=b.host,
            port=b.port,
            client_id=b.client_id,
            username=b.username,
            password=password,
            keepalive_s=b.keepalive_s,
            mqtt_version=b.mqtt_version,
            tls=tls,
            max_records_per_message=b.max_records_per_message,
            max_message_bytes=b.max_message_bytes,
            max_in_flight=b.max_in_flight,
            max_unacked_records=b.max_unacked_records,
            ack_timeout_s=b.ack_timeout_s,
            reconnect_min_s=b.reconnect_min_s,
            reconnect_max_s=b.reconnect_max_s,
            health_interval_s=cfg.agent.health_interval_s,
        )

    def birth(self, connection: int) -> wire.Birth:
        assert self.pipeline is not None
        return wire.Birth(
            site=self.config.agent.site,
            gateway_id=self.config.agent.gateway_id,
            session=self.outbox.session,
            seq=self.outbox.last_seq,
            gateway_time=wire.utcnow(),
            connection=connection,
            agent_version=__version__,
            devices=self.pipeline.inventory(),
            outbox_depth=self.outbox.depth,
            health_interval_s=self.config.agent.health_interval_s,
        )

    def health(self, connection: int) -> wire.Health:
        assert self.pipeline is not None
        return wire.Health(
            site=self.config.agent.site,
            gateway_id=self.config.agent.gateway_id,
            session=self.outbox.session,
            seq=self.outbox.last_seq,
            gateway_time=wire.utcnow(),
            connection=connection,
            outbox_depth=self.outbox.depth,
            outbox_oldest_age_s=self.outbox.oldest_age(),
            links={d: bool(s.link_up) for d, s in self.pipeline.status.items()},
            counters={
                **self.pipeline.counters,
                "outbox_bulk_depth": self.outbox.bulk_depth,
                "outbox_bytes": self.outbox.size_bytes,
                "outbox_evicted": self.outbox.evicted,
                "outbox_refused": self.outbox.refused,
                "records_acknowledged": self.uplink.forwarder.acked if self.uplink else 0,
            },
            health_interval_s=self.config.agent.health_interval_s,
        )

    async def _metrics(self, listen: str) -> None:
        from agent.metrics import HELP, agent_samples, health, serve_metrics
        from common.prometheus import render

        page = lambda: render(agent_samples(self), HELP)  # noqa: E731
        await serve_metrics(listen, page, lambda: health(self.outbox))

    async def _watchdog(self, notifier: SystemdNotifier, interval: float) -> None:
        """Feed systemd's watchdog from the event loop, and only while the outbox writer
        lives: a stalled loop or a dead writer gets the daemon restarted."""
        while True:
            if self.outbox.writer_alive:
                notifier.watchdog()
            else:
                log.error("outbox writer is dead; not feeding the watchdog")
            await asyncio.sleep(interval)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        notifier = SystemdNotifier.from_environment()
        self.outbox.open()  # creates the state directory
        try:
            self.outbox.bind_loop(asyncio.get_running_loop())
            self.pipeline = Pipeline(
                self.outbox, self.contexts, max_message_bytes=self.config.broker.max_message_bytes
            )
            self.uplink = Uplink(
                self._uplink_settings(),
                self.outbox,
                self.birth,
                self.health,
                self.subscriptions,
            )
            sup = self.config.supervision
            self.supervisors = [
                LinkSupervisor(
                    plan,
                    registry.get(plan.protocol).make_driver,
                    self.pipeline,
                    sup.backoff_min_s,
                    sup.backoff_max_s,
                )
                for plan in self.plans
            ]
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.uplink.run(), name="uplink")
                near_cap = OutboxCapAlarm(
                    self.outbox, self.pipeline, self.config.agent.site, self.config.agent.gateway_id
                )
                tg.create_task(near_cap.run(), name="outbox near-cap alarm")
                for s in self.supervisors:
                    tg.create_task(s.run(), name=f"link {s.plan.key}")
                if self.config.metrics.listen:
                    tg.create_task(self._metrics(self.config.metrics.listen), name="metrics")
                for extra in self.extra_tasks:
                    started = extra(self)
                    if asyncio.iscoroutine(started):
                        tg.create_task(started)
                log.info(
                    "agent %s at site %s: %d devices on %d links, session %d",
                    self.config.agent.gateway_id,
                    self.config.agent.site,
                    len(self.contexts),
                    len(self.plans),
                    self.outbox.session,
                )
                # Ready once the outbox is open and links are starting: not after the broker
                # connects, since collecting while the broker is down is the point.
                notifier.ready(status=f"{len(self.contexts)} devices, {len(self.plans)} links")
                if (interval := watchdog_interval()) is not None:
                    tg.create_task(self._watchdog(notifier, interval), name="watchdog")
                if ready is not None:
                    ready.set()
        finally:
            notifier.stopping()
            notifier.close()
            self.outbox.close()
