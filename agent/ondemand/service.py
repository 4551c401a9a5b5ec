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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from agent.ondemand.answer import audit_outcome, make_answer, read_kinds
from gateway.rpc import PollAnswer, PollFailed, expand_what

if TYPE_CHECKING:
    from agent.ondemand.audit import Auditor
    from agent.pipeline import DeviceStatus
    from agent.supervisor import LinkSupervisor
    from profiles.model import Profile
    from protocols.config import DeviceBase

log = logging.getLogger(__name__)


class OnDemand:
    """The daemon's on-demand poll service (local socket and remote requests).

    The daemon hands it what a poll needs: the configured devices and their profiles, the
    running links, the pipeline's view of each device's link, the auditor, and the
    default time budget; `status` is the agent's own view (`agent/ondemand/status.py`)."""

    def __init__(
        self,
        *,
        site: str,
        gateway_id: str,
        devices: Sequence[DeviceBase],
        profiles: Mapping[str, Profile],
        links: Sequence[LinkSupervisor],
        link_status: Mapping[str, DeviceStatus],
        auditor: Auditor,
        timeout_s: float,
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self._enabled = {d.id: d.enabled for d in devices}
        self._profiles = profiles
        self._links = links
        self._link_status = link_status
        self._auditor = auditor
        self.default_timeout_s = timeout_s
        self._status = status
        self._locks: dict[str, asyncio.Lock] = {}

    def configured(self, device: str) -> bool:
        """Whether the config names this device (enabled or not)."""
        return device in self._enabled

    def _supervisor_for(self, device: str) -> LinkSupervisor:
        if device not in self._enabled:
            raise PollFailed("unknown_device", f"unknown device {device!r} on this gateway")
        if not self._enabled[device]:
            raise PollFailed("disabled", f"device {device} is disabled in the config")
        for sup in self._links:
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
        known = self.configured(device)
        try:
            answer = await self._poll(device, what, timeout_s or self.default_timeout_s)
        except PollFailed as exc:
            await self._auditor.record(
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
        await self._auditor.record(
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
        status = self._link_status.get(device)
        return make_answer(
            site=self.site,
            gateway_id=self.gateway_id,
            device=device,
            what=what,
            started=started,
            link_up=status.link_up if status else None,
            results=results,
            errors=errors,
            profile=self._profiles.get(device),
        )

    def status(self) -> dict[str, Any]:
        """What `relay-agent status` shows: the agent's view, no device is asked."""
        return self._status()
