"""The agent daemon: builds the outbox, pipeline, link supervisors, uplink and on-demand
services, hands each one only what it needs, and runs them.

Everything is validated before any port opens (`agent.config.load_config`, and the remote
tokens file here). Every long-lived task has one owner, the TaskGroup here; cancelling
`run` stops them all, and the outbox is closed last so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent import __version__
from agent.config import LoadedConfig
from agent.metrics import AgentMetrics
from agent.normalize import DeviceContext
from agent.ondemand.audit import Auditor
from agent.ondemand.control_socket import ControlServer
from agent.ondemand.remote import RemotePolls, remote_tokens
from agent.ondemand.service import OnDemand
from agent.ondemand.status import AgentStatus
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


@dataclass(frozen=True)
class _Services:
    """What `AgentDaemon.run` starts, built by `AgentDaemon._build`."""

    supervisors: list[LinkSupervisor]
    uplink: Uplink
    near_cap: OutboxCapAlarm
    metrics: AgentMetrics
    control: ControlServer
    ondemand: OnDemand
    remote: RemotePolls | None


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
        # Read now, so a missing or invalid tokens file stops the start before any port opens.
        self.tokens = remote_tokens(cfg.remote)
        # Built by `run` once the outbox is open (the pipeline reads its saved state).
        self.pipeline: Pipeline | None = None
        self.supervisors: list[LinkSupervisor] = []
        self.uplink: Uplink | None = None
        self.ondemand: OnDemand | None = None

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

    def _lifecycle_ids(self, connection: int) -> dict[str, Any]:
        """What a birth and a health record both say of where and when they come from."""
        return {
            "site": self.config.agent.site,
            "gateway_id": self.config.agent.gateway_id,
            "session": self.outbox.session,
            "seq": self.outbox.last_seq,
            "gateway_time": wire.utcnow(),
            "connection": connection,
        }

    def birth(self, connection: int) -> wire.Birth:
        assert self.pipeline is not None
        return wire.Birth(
            **self._lifecycle_ids(connection),
            agent_version=__version__,
            devices=self.pipeline.inventory(),
            outbox_depth=self.outbox.depth,
            health_interval_s=self.config.agent.health_interval_s,
        )

    def health(self, connection: int) -> wire.Health:
        assert self.pipeline is not None
        return wire.Health(
            **self._lifecycle_ids(connection),
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

    async def _watchdog(self, notifier: SystemdNotifier, interval: float) -> None:
        """Feed systemd's watchdog from the event loop, and only while the outbox writer
        lives: a stalled loop or a dead writer gets the daemon restarted."""
        while True:
            if self.outbox.writer_alive:
                notifier.watchdog()
            else:
                log.error("outbox writer is dead; not feeding the watchdog")
            await asyncio.sleep(interval)

    def _build(self) -> _Services:
        """The collaborators, in dependency order, each given only what it uses."""
        cfg, site, gateway_id = self.config, self.config.agent.site, self.config.agent.gateway_id
        pipeline = Pipeline(
            self.outbox, self.contexts, max_message_bytes=cfg.broker.max_message_bytes
        )
        supervisors = [
            LinkSupervisor(
                plan,
                registry.get(plan.protocol).make_driver,
                pipeline,
                cfg.supervision.backoff_min_s,
                cfg.supervision.backoff_max_s,
            )
            for plan in self.plans
        ]
        auditor = Auditor(site, gateway_id, pipeline.append_record)
        remote: RemotePolls | None = None
        subscriptions: dict[str, MessageHandler] = {}
        if self.tokens is not None:
            remote = RemotePolls(
                site,
                gateway_id,
                self.tokens,
                auditor,
                max_concurrent=cfg.remote.max_concurrent,
                max_queued=cfg.remote.max_queued,
            )
            subscriptions[remote.topic] = remote.on_message
        self.pipeline, self.supervisors = pipeline, supervisors
        uplink = Uplink(
            self._uplink_settings(), self.outbox, self.birth, self.health, subscriptions
        )
        self.uplink = uplink
        status = AgentStatus(
            site=site,
            gateway_id=gateway_id,
            broker=cfg.broker,
            devices=cfg.devices,
            outbox=self.outbox,
            pipeline=pipeline,
            links=supervisors,
            uplink=uplink,
        )
        ondemand = OnDemand(
            site=site,
            gateway_id=gateway_id,
            devices=cfg.devices,
            profiles=self.loaded.profiles,
            links=supervisors,
            link_status=pipeline.status,
            auditor=auditor,
            timeout_s=cfg.control.poll_timeout_s,
            status=status.snapshot,
        )
        self.ondemand = ondemand
        return _Services(
            supervisors=supervisors,
            uplink=uplink,
            near_cap=OutboxCapAlarm(self.outbox, pipeline, site, gateway_id),
            metrics=AgentMetrics(self.outbox, pipeline, uplink, supervisors),
            control=ControlServer(cfg.control_socket, ondemand),
            ondemand=ondemand,
            remote=remote,
        )

    async def run(self, ready: asyncio.Event | None = None) -> None:
        notifier = SystemdNotifier.from_environment()
        self.outbox.open()  # creates the state directory
        try:
            self.outbox.bind_loop(asyncio.get_running_loop())
            services = self._build()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(services.uplink.run(), name="uplink")
                tg.create_task(services.near_cap.run(), name="outbox near-cap alarm")
                for s in services.supervisors:
                    tg.create_task(s.run(), name=f"link {s.plan.key}")
                if self.config.metrics.listen:
                    tg.create_task(
                        services.metrics.serve(self.config.metrics.listen), name="metrics"
                    )
                tg.create_task(services.control.serve(), name="control socket")
                if services.remote is not None:
                    tg.create_task(services.remote.run(services.ondemand), name="remote polls")
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
