"""The agent's own view, for `relay-agent status` over the control socket: devices and
their links, the last events, the outbox and the broker session. No device is asked, so
nothing here is audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import BrokerConfig
    from agent.pipeline import Pipeline
    from agent.supervisor import LinkSupervisor
    from gateway.outbox import Outbox
    from gateway.uplink import Uplink
    from protocols.config import DeviceBase


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class AgentStatus:
    """Reads the parts the daemon built; `snapshot()` is the answer to `op: status`."""

    def __init__(
        self,
        *,
        site: str,
        gateway_id: str,
        broker: BrokerConfig,
        devices: Sequence[DeviceBase],
        outbox: Outbox,
        pipeline: Pipeline,
        links: Sequence[LinkSupervisor],
        uplink: Uplink,
    ) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self.broker = broker
        self.devices = devices
        self.outbox = outbox
        self.pipeline = pipeline
        self.links = links
        self.uplink = uplink

    def _devices(self) -> list[dict[str, Any]]:
        links = {dev: sup for sup in self.links for dev in sup.device_ids}
        devices = []
        for device in self.devices:
            st = self.pipeline.status.get(device.id)
            sup = links.get(device.id)
            devices.append(
                {
                    "device": device.id,
                    "protocol": str(getattr(device, "protocol", "?")),
                    "enabled": device.enabled,
                    "link": sup.plan.key if sup else None,
                    "link_running": bool(sup and sup.status.running),
                    "link_restarts": sup.status.restarts if sup else 0,
                    "link_error": sup.status.last_error if sup else "",
                    "link_up": st.link_up if st else None,
                    "link_reason": st.link_reason if st else "",
                    "link_changed": _iso(st.link_changed) if st else None,
                    "last_event": st.last_event if st else None,
                    "last_event_time": _iso(st.last_event_time) if st else None,
                    "events": st.events if st else 0,
                }
            )
        return devices

    def snapshot(self) -> dict[str, Any]:
        stats, outbox = self.uplink.stats, self.outbox
        return {
            "site": self.site,
            "gateway_id": self.gateway_id,
            "session": outbox.session,
            "broker": {
                "host": self.broker.host,
                "port": self.broker.port,
                "connected": stats.connected,
                "connections": stats.connections,
                "records_published": stats.records_published,
                "records_acknowledged": self.uplink.forwarder.acked,
                "last_error": stats.last_error,
            },
            "outbox": {
                "path": str(outbox.path),
                "depth": outbox.depth,
                "bytes": outbox.size_bytes,
                "oldest_age_s": round(outbox.oldest_age(), 3),
                "unavailable": outbox.unavailable,
            },
            "devices": self._devices(),
            "counters": dict(self.pipeline.counters),
        }
