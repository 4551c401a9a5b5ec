"""`Driver` for one IEC 104 relay (one TCP connection, one common address).

The link does the work; the driver adds the inventory (identity and settings from the
points the profile's `[iec104]` section maps, `inventory.py`) and the on-demand reads
engineers ask for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from protocols.driver import ObservationSink
from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.inventory import Iec104Inventory
from protocols.iec104.link import Iec104Link
from protocols.iec104.profile import Iec104ProfileSection
from protocols.observations import IdentityObservation, PointObservation, SettingsObservation
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)

POLL_KINDS = ("status", "measurements", "events")
INVENTORY_KINDS = ("identity", "settings")


class Iec104Driver:
    def __init__(self, plan: LinkPlan) -> None:
        if len(plan.devices) != 1:
            raise ValueError(f"{plan.key}: an IEC 104 link serves one device")
        planned = plan.devices[0]
        if not isinstance(planned.config, Iec104Device):
            raise TypeError(f"{plan.key}: not an IEC 104 device: {type(planned.config).__name__}")
        section = planned.profile_section or Iec104ProfileSection()
        if not isinstance(section, Iec104ProfileSection):
            raise TypeError(f"{plan.key}: profile section is not an [iec104] section")
        self.plan = plan
        self.device: Iec104Device = planned.config
        self.section = section
        self.known_addresses = frozenset(planned.addresses) | section.consumed_addresses()
        self._link: Iec104Link | None = None
        self._inventory: Iec104Inventory | None = None

    @property
    def device_ids(self) -> Sequence[str]:
        return (self.device.id,)

    @property
    def ready(self) -> bool:
        """Connected, and the general interrogation after connecting was confirmed."""
        return self._link is not None and self._link.ready.is_set()

    @property
    def received(self) -> int:
        return self._link.received if self._link is not None else 0

    async def run(self, sink: ObservationSink) -> None:
        inventory = Iec104Inventory(self.device, self.section)
        link = Iec104Link(
            self.device,
            self.known_addresses,
            sink,
            consumed=inventory.consumed,
            on_consumed=inventory.receive,
        )
        self._link, self._inventory = link, inventory
        try:
            if not inventory.maps_anything:
                await link.run()
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(link.run(), name=f"{self.plan.key}:link")
                group.create_task(
                    inventory.run(link.ready, link.interrogate, sink),
                    name=f"{self.plan.key}:inventory",
                )
        except* LinkError as errors:
            raise errors.exceptions[0] from None
        finally:
            self._link = self._inventory = None

    async def poll(self, device_id: str, what: str) -> dict[str, Any]:
        """`status`: a fresh general interrogation, then the current value of every point;
        `measurements`: the last measured values; `events`: the last events received;
        `identity`, `settings`: a fresh interrogation, then what the profile's points say
        (only when the profile's `[iec104]` section maps them)."""
        if device_id != self.device.id:
            raise KeyError(device_id)
        if what in INVENTORY_KINDS:
            return await self._poll_inventory(what)
        if what not in POLL_KINDS:
            raise ValueError(f"cannot poll {what!r}; can poll {', '.join(POLL_KINDS)}")
        link = self._require_link()
        if what == "status":
            await link.interrogate()
            points = {a: o for a, o in link.latest.items() if not o.measurement}
            return {"points": {a: _describe(o) for a, o in sorted(points.items())}}
        if what == "measurements":
            points = {a: o for a, o in link.latest.items() if o.measurement}
            return {"measurements": {a: _describe(o) for a, o in sorted(points.items())}}
        return {"recent": [dict(address=o.address, **_describe(o)) for o in list(link.recent)]}

    async def _poll_inventory(self, what: str) -> dict[str, Any]:
        mapped = self.section.identity is not None if what == "identity" else self.section.settings
        if not mapped:
            raise ValueError(
                f"cannot poll {what!r}: IEC 104 has no {what} ASDUs and the profile's "
                f"[iec104] section maps no points for it"
            )
        link = self._require_link()
        inventory = self._inventory
        assert inventory is not None  # set with the link
        await inventory.refresh(link.interrogate)
        found = inventory.observations(identity=what == "identity", settings=what == "settings")
        for obs in found:
            if isinstance(obs, IdentityObservation):
                return dataclasses.asdict(obs)
            if isinstance(obs, SettingsObservation):
                return {"settings": [dataclasses.asdict(s) for s in obs.settings]}
        raise LinkError(f"{self.device.id}: the relay did not answer every {what} point")

    def _require_link(self) -> Iec104Link:
        link = self._link
        if link is None:
            raise LinkError(f"{self.plan.key}: link not running")
        return link


def _describe(obs: PointObservation) -> dict[str, Any]:
    return {
        "value": obs.value,
        "quality": list(obs.quality),
        "device_time": obs.device_time.isoformat() if obs.device_time else None,
        "device_time_flags": list(obs.device_time_flags),
        "cause": obs.cause,
        "type": obs.details.get("type"),
    }
