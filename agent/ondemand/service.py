"""On-demand polls inside the daemon: `OnDemand`, the one entry point for the local
control socket (`agent/ondemand/control_socket.py`) and for remote requests from the center
(`agent/ondemand/remote.py`).

Engineers read a relay's identity, recent events, settings or status *through the
running daemon*, so the request shares the daemon's link (a relay often accepts one
104 master; an RS-485 bus tolerates one). `OnDemand`:

- finds the link that serves the device and calls its running driver's `poll`;
- allows one on-demand request per link at a time (the driver's own cyclic work
  keeps running; on a serial bus the driver orders our request before its cyclic polls
  but after event collection, see docs/polling.md);
- bounds every request by a timeout;
- audits every request, whatever its result (`agent/ondemand/audit.py`).

It only ever calls `Driver.poll`, which is read-only by contract: there is no write
path here to misuse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from agent.ondemand.answer import audit_outcome, make_answer, read_kinds
from agent.ondemand.audit import Auditor
from gateway.rpc import PollAnswer, PollFailed, expand_what

if TYPE_CHECKING:
    from agent.daemon import AgentDaemon
    from agent.supervisor import LinkSupervisor

log = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class OnDemand:
    """The daemon's on-demand poll service (local socket and remote requests)."""

    def __init__(self, daemon: AgentDaemon, auditor: Auditor) -> None:
        self.daemon = daemon
        self.auditor = auditor
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def default_timeout_s(self) -> float:
        return self.daemon.config.control.poll_timeout_s

    def _supervisor_for(self, device: str) -> LinkSupervisor:
        configured = {d.id: d for d in self.daemon.config.devices}
        if device not in configured:
            raise PollFailed("unknown_device", f"unknown device {device!r} on this gateway")
        if not configured[device].enabled:
            raise PollFailed("disabled", f"device {device} is disabled in the config")
        for sup in self.daemon.supervisors:
            if device in sup.device_ids:
                return sup
        raise PollFailed("link", f"device {device}: the daemon has not started its link yet")

    async def poll(
        self,
        device: str,
        what: str,
        *,
        actor: str,
        origin: Literal["local", "remote"],
        timeout_s: float | None = None,
    ) -> PollAnswer:
        """Poll and audit. Raises `PollFailed`; returns the answer (see docs/polling.md)."""
        known = any(d.id == device for d in self.daemon.config.devices)
        try:
            answer = await self._poll(device, what, timeout_s or self.default_timeout_s)
        except PollFailed as exc:
            await self.auditor.record(
                actor=actor,
                origin=origin,
                action="poll",
                device=device if known else None,
                what=what,
                result="refused" if exc.code == "refused" else "error",
                error=f"{exc.code}: {exc.message}",
            )
            raise
        result, error = audit_outcome(answer)
        await self.auditor.record(
            actor=actor, origin=origin, action="poll", device=device, what=what,
            result=result, error=error,
        )  # fmt: skip
        return answer

    async def _poll(self, device: str, what: str, timeout_s: float) -> PollAnswer:
        kinds = expand_what(what)
        sup = self._supervisor_for(device)
        lock = self._locks.setdefault(sup.plan.key, asyncio.Lock())
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s), lock:
                driver = sup.status.driver
                if driver is None or not sup.status.running:
                    last = sup.status.last_error
                    raise PollFailed(
                        "link",
                        f"link {sup.plan.key} is not running" + (f" ({last})" if last else ""),
                    )
                results, errors = await read_kinds(driver, sup.plan.protocol, device, kinds)
        except TimeoutError:
            raise PollFailed(
                "timeout", f"device {device} did not answer within {timeout_s:g} s"
            ) from None
        status = self.daemon.pipeline.status.get(device) if self.daemon.pipeline else None
        cfg = self.daemon.config.agent
        return make_answer(
            site=cfg.site,
            gateway_id=cfg.gateway_id,
            device=device,
            what=what,
            started=started,
            link_up=status.link_up if status else None,
            results=results,
            errors=errors,
            profile=self.daemon.loaded.profiles.get(device),
        )

    def status(self) -> dict[str, Any]:
        """What `relay-agent status` shows: the agent's view, no device is asked."""
        d = self.daemon
        pipeline = d.pipeline
        links = {dev: sup for sup in d.supervisors for dev in sup.device_ids}
        devices = []
        for device in d.config.devices:
            st = pipeline.status.get(device.id) if pipeline else None
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
        uplink = d.uplink
        broker = d.config.broker
        return {
            "site": d.config.agent.site,
            "gateway_id": d.config.agent.gateway_id,
            "session": d.outbox.session,
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "connected": bool(uplink and uplink.stats.connected),
                "connections": uplink.stats.connections if uplink else 0,
                "records_published": uplink.stats.records_published if uplink else 0,
                "records_acknowledged": uplink.forwarder.acked if uplink else 0,
                "last_error": uplink.stats.last_error if uplink else "",
            },
            "outbox": {
                "path": str(d.outbox.path),
                "depth": d.outbox.depth,
                "bytes": d.outbox.size_bytes,
                "oldest_age_s": round(d.outbox.oldest_age(), 3),
                "unavailable": d.outbox.unavailable,
            },
            "devices": devices,
            "counters": dict(pipeline.counters) if pipeline else {},
        }


def install(daemon: AgentDaemon) -> OnDemand:
    """Give a daemon its on-demand service: the control socket, and remote requests when
    `[remote] enabled`. Called from `AgentDaemon.__init__`, so a bad tokens file fails
    before any port opens."""
    from agent.ondemand.control_socket import ControlServer
    from agent.ondemand.remote import install_remote

    async def append(record: Any, device_id: str | None) -> None:
        assert daemon.pipeline is not None, "the daemon is not running"
        await daemon.pipeline.append_record(record, device_id)

    cfg = daemon.config
    ondemand = OnDemand(daemon, Auditor(cfg.agent.site, cfg.agent.gateway_id, append))
    daemon.extra_tasks.append(lambda d: ControlServer(d.config.control_socket, ondemand).serve())
    install_remote(daemon, ondemand)
    return ondemand
